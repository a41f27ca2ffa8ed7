// TLS termination for clients: ALPN offers h2 and http/1.1 on one port, SNI picks the
// certificate by the names each one carries, sessions resume, TLS 1.2 is the floor, the
// origin hears X-Forwarded-Proto: https, and the access line names the client's TLS.
// Real clients only: curl, Node's TLS and HTTP/2 clients; certificates made now.

import { createHash } from 'node:crypto'
import http from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import tlsClient from 'node:tls'
import t from 'tap'
import { Value } from '@sinclair/typebox/value'
import { AccessRecordSchema, LogpushRecordSchema } from '../../src/log/log-schema.js'
import { accessFor, startProxy } from '../helpers.js'
import { curl, h2request, handshake, makePki } from '../tls-support.js'

const pki = await makePki()
t.teardown(() => pki.remove())
const main = await pki.issue('main', ['localhost', 'shop.example'])
const second = await pki.issue('second', ['api.example'])
const wild = await pki.issue('wild', ['*.cdn.example'])

/** An origin that answers with what it received: method, path, headers, body. */
const seen: Array<{ method: string, url: string, headers: http.IncomingHttpHeaders }> = []
const origin = http.createServer((req, res) => {
  seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers })
  const chunks: Buffer[] = []
  req.on('data', (d: Buffer) => chunks.push(d))
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'text/plain', 'x-origin': 'yes' })
    res.end(`${req.method ?? ''} ${req.url ?? ''} ${Buffer.concat(chunks).toString()}`)
  })
})
await new Promise<void>(resolve => origin.listen(0, '127.0.0.1', resolve))
t.teardown(() => new Promise<void>(resolve => origin.close(() => resolve())))
const originUrl = `http://127.0.0.1:${(origin.address() as AddressInfo).port}`

const tlsConfig = {
  cert: main.certFile,
  key: main.keyFile,
  sni: [{ cert: second.certFile, key: second.keyFile }, { cert: wild.certFile, key: wild.keyFile }]
}
const proxy = await startProxy({ origin: originUrl, listen: { tls: tlsConfig } })
t.teardown(() => proxy.close())
const resolveTo = (name: string): string[] => ['--cacert', pki.caFile, '--resolve', `${name}:${proxy.port}:127.0.0.1`]

t.test('ALPN: curl --http2 gets HTTP/2, curl --http1.1 gets HTTP/1.1, on the same port', async t => {
  const h2 = await curl(['--http2', ...resolveTo('shop.example'), `https://shop.example:${proxy.port}/a?b=1`])
  t.equal(h2.version, 'HTTP/2')
  t.equal(h2.status, 200)
  t.equal(h2.body, 'GET /a?b=1 ')
  const h1 = await curl(['--http1.1', ...resolveTo('shop.example'), `https://shop.example:${proxy.port}/c`])
  t.equal(h1.version, 'HTTP/1.1')
  t.equal(h1.status, 200)
  t.equal(h1.body, 'GET /c ')
  for (const [alpn, expected] of [[['h2'], 'h2'], [['http/1.1'], 'http/1.1'], [['h2', 'http/1.1'], 'h2']] as const) {
    const hs = await handshake(proxy.port, { ca: pki.ca.cert, servername: 'localhost', ALPNProtocols: [...alpn] })
    t.equal(hs.alpn, expected, `client offers ${alpn.join(',')}: ${expected}`)
  }
  const lines = proxy.logs.filter(l => l.msg === 'access' && (l.path === '/a' || l.path === '/c'))
  t.same(lines.map(l => l.client.protocol), ['HTTP/2', 'HTTP/1.1'])
  for (const l of lines) {
    t.ok(Value.Check(AccessRecordSchema, l), 'the access line has its schema\'s shape')
    t.match(l.client.tls_protocol, /^TLSv1\.[23]$/)
    t.type(l.client.tls_cipher, 'string')
    t.equal(l.host, `shop.example:${proxy.port}`, ':authority is the host, as Host is')
  }
})

t.test('SNI picks the certificate by its own names; no SNI gets the default', async t => {
  const cases: Array<[string | undefined, string]> = [
    ['api.example', second.fingerprint],
    ['img.cdn.example', wild.fingerprint],
    ['IMG.CDN.EXAMPLE', wild.fingerprint],
    ['shop.example', main.fingerprint],
    ['unknown.example', main.fingerprint],
    [undefined, main.fingerprint]
  ]
  for (const [servername, fingerprint] of cases) {
    // servername '' sends no SNI at all.
    const hs = await handshake(proxy.port, { ca: pki.ca.cert, servername: servername ?? '', rejectUnauthorized: false, ALPNProtocols: ['h2'] })
    t.equal(hs.fingerprint, fingerprint, `SNI ${servername ?? '(none)'}`)
    t.equal(hs.alpn, 'h2', 'ALPN holds with every certificate')
  }
  // curl verifies the chain and the name: only the right certificate passes.
  const api = await curl(['--http2', ...resolveTo('api.example'), `https://api.example:${proxy.port}/sni`])
  t.equal(api.status, 200)
  t.equal(api.version, 'HTTP/2')
  const cdn = await curl(['--http1.1', ...resolveTo('x.cdn.example'), `https://x.cdn.example:${proxy.port}/sni`])
  t.equal(cdn.status, 200)
})

t.test('the origin hears X-Forwarded-Proto: https, and never a pseudo-header', async t => {
  seen.length = 0
  const res = await h2request(proxy.url, pki.ca.cert, { ':path': '/fwd?q=1', ':authority': 'shop.example', 'x-forwarded-proto': 'http' }, undefined, 'localhost')
  t.equal(res.status, 200)
  const got = seen[0]
  t.equal(got?.url, '/fwd?q=1')
  t.equal(got?.headers['x-forwarded-proto'], 'https', 'the edge\'s scheme, not the client\'s claim')
  t.equal(got?.headers['x-forwarded-host'], 'shop.example')
  t.notOk(Object.keys(got?.headers ?? {}).some(k => k.startsWith(':')), 'no pseudo-header reaches an HTTP/1.1 origin')
})

t.test('sessions resume, and TLS 1.1 is refused', async t => {
  for (const version of ['TLSv1.2', 'TLSv1.3'] as const) {
    const first = await handshake(proxy.port, { ca: pki.ca.cert, servername: 'localhost', minVersion: version, maxVersion: version })
    t.equal(first.protocol, version)
    t.notOk(first.reused)
    const again = await handshake(proxy.port, { ca: pki.ca.cert, servername: 'localhost', minVersion: version, maxVersion: version, session: first.session })
    t.ok(again.reused, `${version}: the second handshake resumed the first session`)
  }
  // SECLEVEL=0 lets this client offer TLS 1.1 at all: the refusal is the server's alert.
  await t.rejects(handshake(proxy.port, { ca: pki.ca.cert, servername: 'localhost', minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' }),
    { message: /alert protocol version/ })
})

t.test('Logpush shape: ClientSSLProtocol, ClientSSLCipher, HTTP/2 and https', async t => {
  const cf = await startProxy({ origin: originUrl, listen: { tls: tlsConfig }, log: { fields: 'cloudflare' } })
  t.teardown(() => cf.close())
  const res = await h2request(cf.url, pki.ca.cert, { ':path': '/logpush' }, undefined, 'localhost')
  const ray = String(res.headers['cf-ray']).slice(0, 16)
  const line = await cf.waitForLog(l => l.msg === 'access' && l.RayID === ray)
  t.equal(line.ClientRequestProtocol, 'HTTP/2')
  t.equal(line.ClientRequestScheme, 'https')
  t.equal(line.ClientSSLProtocol, 'TLSv1.3')
  t.equal(line.ClientSSLCipher, 'TLS_AES_256_GCM_SHA384')
  const plain = await startProxy({ origin: originUrl, log: { fields: 'cloudflare' } })
  t.teardown(() => plain.close())
  await curl([`${plain.url}/plain`])
  const p = await plain.waitForLog(l => l.msg === 'access' && l.ClientRequestPath === '/plain')
  t.equal(p.ClientSSLProtocol, 'none')
  t.equal(p.ClientSSLCipher, 'NONE')
  t.ok(Value.Check(LogpushRecordSchema, { ...p, EdgeStartTimestamp: 0n, EdgeEndTimestamp: 0n }), 'the Logpush line has its schema\'s shape')
})

t.test('Strict-Transport-Security on every TLS answer when configured, proxied or the edge\'s own', async t => {
  const hsts = await startProxy({
    routes: [{ path: '/gone', origin: 'http://127.0.0.1:9' }, { path: '/', origin: originUrl }],
    listen: { tls: { ...tlsConfig, hsts: 'max-age=63072000; includeSubDomains' } }
  })
  t.teardown(() => hsts.close())
  const ok = await h2request(hsts.url, pki.ca.cert, { ':path': '/' }, undefined, 'localhost')
  t.equal(ok.headers['strict-transport-security'], 'max-age=63072000; includeSubDomains')
  const down = await curl(['--http1.1', ...['--cacert', pki.caFile, '--resolve', `localhost:${hsts.port}:127.0.0.1`], `https://localhost:${hsts.port}/gone`])
  t.equal(down.status, 521)
  t.equal(down.headers['strict-transport-security'], 'max-age=63072000; includeSubDomains')
  const plainAnswer = await h2request(proxy.url, pki.ca.cert, { ':path': '/' }, undefined, 'localhost')
  t.equal(plainAnswer.headers['strict-transport-security'], undefined, 'none unless configured')
  const access = await hsts.waitForLog(accessFor(String(ok.headers['cf-ray']).slice(0, 16)))
  t.equal(access.status, 200)
})

t.test('a WebSocket upgrade over TLS (HTTP/1.1 by ALPN) is proxied and bytes flow both ways', async t => {
  const ws = http.createServer((_req, res) => res.end('not a websocket\n'))
  const sockets = new Set<Socket>()
  ws.on('upgrade', (req, socket: Socket) => {
    sockets.add(socket)
    const accept = createHash('sha1').update(String(req.headers['sec-websocket-key']) + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64')
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: ${accept}\r\nx-saw-proto: ${String(req.headers['x-forwarded-proto'])}\r\n\r\n`)
    socket.pipe(socket)
  })
  await new Promise<void>(resolve => ws.listen(0, '127.0.0.1', resolve))
  const wsProxy = await startProxy({ origin: `http://127.0.0.1:${(ws.address() as AddressInfo).port}`, listen: { tls: tlsConfig } })
  t.teardown(async () => { await wsProxy.close(); for (const s of sockets) s.destroy(); ws.close() })
  const socket = tlsClient.connect({ host: '127.0.0.1', port: wsProxy.port, ca: pki.ca.cert, servername: 'localhost', ALPNProtocols: ['http/1.1'] })
  await new Promise<void>((resolve, reject) => { socket.once('secureConnect', resolve); socket.once('error', reject) })
  socket.write('GET /chat HTTP/1.1\r\nhost: localhost\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n\r\n')
  const head = await new Promise<string>(resolve => {
    let buf = ''
    const onData = (d: Buffer): void => {
      buf += d.toString()
      if (!buf.includes('\r\n\r\n')) return
      socket.off('data', onData)
      resolve(buf)
    }
    socket.on('data', onData)
  })
  t.match(head, /^HTTP\/1.1 101/)
  t.match(head, /x-saw-proto: https/, 'the origin heard X-Forwarded-Proto: https')
  const echoed = await new Promise<string>(resolve => {
    socket.once('data', d => resolve(d.toString()))
    socket.write('hello over TLS')
  })
  t.equal(echoed, 'hello over TLS')
  socket.destroy()
  const access = await wsProxy.waitForLog(l => l.msg === 'access' && l.status === 101)
  t.equal(access.client.protocol, 'HTTP/1.1')
  t.match(access.client.tls_protocol, /^TLSv1\.[23]$/)
})
