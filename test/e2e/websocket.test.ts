// WebSocket upgrades through the proxy, and a failed upgrade answered like any request.

import { createHash } from 'node:crypto'
import http from 'node:http'
import net from 'node:net'
import t from 'tap'
import { refusedOrigin, synDropOrigin } from '../../src/lab/faults.js'
import { startProxy } from '../helpers.js'

const KEY = 'dGhlIHNhbXBsZSBub25jZQ=='
const ACCEPT = createHash('sha1').update(KEY + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64')

/** A WebSocket origin that completes the handshake and echoes every byte. */
async function echoOrigin (): Promise<{ url: string, close: () => Promise<void> }> {
  const server = http.createServer((_req, res) => res.end('not a websocket\n'))
  const sockets = new Set<net.Socket>()
  server.on('upgrade', (req, socket: net.Socket) => {
    sockets.add(socket)
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: ${createHash('sha1').update(String(req.headers['sec-websocket-key']) + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64')}\r\nx-origin-saw-ray: ${String(req.headers['cf-ray'])}\r\n\r\n`)
    socket.pipe(socket)
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    close: () => new Promise(resolve => { for (const s of sockets) s.destroy(); server.close(() => resolve()) })
  }
}

/** Sends an upgrade request; resolves with the response head and the open socket. */
function handshake (port: number, path = '/chat'): Promise<{ head: string, socket: net.Socket, rest: Buffer }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port }, () => {
      socket.write(`GET ${path} HTTP/1.1\r\nhost: chat.test\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-key: ${KEY}\r\nsec-websocket-version: 13\r\naccept: application/json\r\n\r\n`)
    })
    let buf = Buffer.alloc(0)
    const onData = (d: Buffer): void => {
      buf = Buffer.concat([buf, d])
      const end = buf.indexOf('\r\n\r\n')
      if (end === -1) return
      socket.off('data', onData)
      resolve({ head: buf.subarray(0, end).toString(), socket, rest: buf.subarray(end + 4) })
    }
    socket.on('data', onData)
    socket.on('error', reject)
  })
}

t.test('an upgrade is proxied and bytes flow both ways', async t => {
  const origin = await echoOrigin()
  const proxy = await startProxy({ origin: origin.url })
  t.teardown(async () => { await proxy.close(); await origin.close() })
  const { head, socket } = await handshake(proxy.port)
  t.match(head, /^HTTP\/1.1 101/)
  t.match(head, new RegExp(`sec-websocket-accept: ${ACCEPT.replace(/[+/]/g, '\\$&')}`, 'i'))
  t.match(head, /cf-ray: [0-9a-f]{16}-HPX/)
  t.match(head, /x-origin-saw-ray: [0-9a-f]{16}-HPX/, 'the origin saw the ray id')
  const echoed = await new Promise<string>(resolve => {
    socket.once('data', d => resolve(d.toString()))
    socket.write('hello through the edge')
  })
  t.equal(echoed, 'hello through the edge')
  socket.destroy()
  const access = await proxy.waitForLog(l => l.msg === 'access' && l.status === 101)
  t.equal(access.path, '/chat')
})

t.test('a refused upgrade gets 521, a timed-out one 522', async t => {
  const refused = await refusedOrigin()
  const dropping = await synDropOrigin()
  const proxy = await startProxy({
    routes: [{ path: '/dead', origin: refused.url }, { path: '/drowning', origin: dropping.url, connect_timeout: '300ms' }]
  })
  t.teardown(async () => { await proxy.close(); await dropping.close() })
  const a = await handshake(proxy.port, '/dead')
  t.match(a.head, /^HTTP\/1.1 521 /)
  t.match(a.head, /retry-after: 120/i)
  t.match(a.head, /content-type: application\/json/i)
  a.socket.destroy()
  const start = performance.now()
  const b = await handshake(proxy.port, '/drowning')
  t.match(b.head, /^HTTP\/1.1 522 /)
  t.ok(performance.now() - start >= 300)
  b.socket.destroy()
  const failures = proxy.logs.filter(l => l.msg === 'origin failure').map(l => l.edge_status)
  t.same(failures, [521, 522])
})

/** Reads a raw answer on an upgrade socket until the connection closes. */
function untilClosed (socket: net.Socket, withinMs = 3000): Promise<{ text: string, closed: boolean }> {
  return new Promise(resolve => {
    let text = ''
    const timer = setTimeout(() => resolve({ text, closed: false }), withinMs)
    socket.on('data', d => { text += d.toString() })
    socket.on('close', () => { clearTimeout(timer); resolve({ text, closed: true }) })
  })
}

t.test('an origin that answers an upgrade with a plain response: relayed, the connection closed, the slot freed', async t => {
  const plain = http.createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/plain' }).end('no upgrade here\n'))
  await new Promise<void>(resolve => plain.listen(0, '127.0.0.1', resolve))
  const url = `http://127.0.0.1:${(plain.address() as net.AddressInfo).port}`
  const proxy = await startProxy({ origin: url, limits: { max_connections: 5 } })
  t.teardown(async () => { await proxy.close(); await new Promise(resolve => plain.close(resolve)) })
  for (let i = 0; i < 12; i++) {
    const { head, socket, rest } = await handshake(proxy.port)
    const after = await untilClosed(socket)
    t.match(head, /^HTTP\/1.1 200 /, `upgrade ${i}: the origin's 200 is relayed`)
    t.ok(after.closed, `upgrade ${i}: and the connection is closed`)
    if (i === 0) t.match(rest.toString() + after.text, 'no upgrade here', 'with its body')
  }
  await proxy.waitForLog(() => proxy.logs.filter(l => l.msg === 'access').length >= 12)
  const access = proxy.logs.filter(l => l.msg === 'access')
  t.equal(access.length, 12, 'one access line each')
  t.ok(access.every(l => l.status === 200), 'each says 200')
  // 12 upgrades through a limit of 5 connections: every slot was freed.
  const normal = await new Promise<number>(resolve => http.get(`${proxy.url}/`, { agent: false }, res => { res.resume(); resolve(res.statusCode ?? 0) }))
  t.equal(normal, 200, 'and a normal request still gets in')
})

t.test('Upgrade protocols the route does not allow (h2c) are dropped: proxied as plain HTTP', async t => {
  const seen: http.IncomingHttpHeaders[] = []
  const origin = http.createServer((req, res) => { seen.push(req.headers); res.end('plain answer\n') })
  origin.on('upgrade', (_req, socket: net.Socket) => { socket.end('HTTP/1.1 101 Switching Protocols\r\nupgrade: h2c\r\nconnection: upgrade\r\n\r\n') })
  await new Promise<void>(resolve => origin.listen(0, '127.0.0.1', resolve))
  const url = `http://127.0.0.1:${(origin.address() as net.AddressInfo).port}`
  const proxy = await startProxy({ routes: [{ path: '/custom', origin: url, upgrades: ['websocket', 'x-custom'] }, { origin: url }] })
  t.teardown(async () => { await proxy.close(); await new Promise(resolve => origin.close(resolve)) })
  const socket = net.connect({ host: '127.0.0.1', port: proxy.port })
  await new Promise(resolve => socket.once('connect', resolve))
  socket.write('GET / HTTP/1.1\r\nhost: h2c.test\r\nconnection: Upgrade, HTTP2-Settings\r\nupgrade: h2c\r\nhttp2-settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n')
  const answer = await untilClosed(socket)
  t.match(answer.text, /^HTTP\/1.1 200 /, 'a plain 200, never a 101')
  t.match(answer.text, 'plain answer')
  t.equal(seen.at(-1)?.upgrade, undefined, 'the origin never saw the Upgrade header')
  t.equal(seen.at(-1)?.['http2-settings'], undefined, 'nor HTTP2-Settings')
  const withBody = net.connect({ host: '127.0.0.1', port: proxy.port })
  await new Promise(resolve => withBody.once('connect', resolve))
  withBody.write('POST / HTTP/1.1\r\nhost: h2c.test\r\nconnection: upgrade\r\nupgrade: h2c\r\ncontent-length: 4\r\n\r\nbody')
  t.match((await untilClosed(withBody)).text, /^HTTP\/1.1 400 /, 'one with a body is refused: its body is no longer framed by the parser')
  t.equal((await proxy.waitForLog(l => l.msg === 'access' && l.status === 400)).refused, 'upgrade_with_body')
})

t.test('upgrades count as in flight, follow status_rewrite and log a failure line when the pool is down', async t => {
  const refused = await refusedOrigin()
  const proxy = await startProxy({
    pools: [{ name: 'dead', origins: [refused.url], health: { failures: 1, cooldown: '10s' } }],
    routes: [{ path: '/ws', pool: 'dead', status_rewrite: { 521: 502 } }]
  })
  t.teardown(() => proxy.close())
  const first = await handshake(proxy.port, '/ws')
  t.match(first.head, /^HTTP\/1.1 502 /, 'status_rewrite applies to upgrades')
  first.socket.destroy()
  const second = await handshake(proxy.port, '/ws')
  t.match(second.head, /^HTTP\/1.1 502 /, 'the pool is down now: answered at once, rewritten')
  second.socket.destroy()
  const failures = proxy.logs.filter(l => l.msg === 'origin failure')
  t.match(failures, [{ edge_status: 521 }, { edge_status: 521, error: { code: 'HPX_ERR_POOL_DOWN' } }], 'the pool-down upgrade has its failure line too')
})

t.test('a WebSocket counts in flight for least_in_flight while it is open', async t => {
  const a = await echoOrigin()
  const b = await echoOrigin()
  const proxy = await startProxy({
    pools: [{ name: 'ws', origins: [a.url, b.url], policy: 'least_in_flight' }],
    routes: [{ pool: 'ws' }]
  })
  t.teardown(async () => { await proxy.close(); await a.close(); await b.close() })
  const first = await handshake(proxy.port)
  const second = await handshake(proxy.port)
  const origins = [first.head, second.head].map(h => /x-origin-saw-ray/.test(h))
  t.same(origins, [true, true])
  // While the first tunnel is open, the second upgrade went to the other origin.
  t.equal(new Set([first, second].map(x => x.head.match(/x-origin-saw-ray: ([0-9a-f]{16})/)?.[1])).size, 2)
  first.socket.destroy()
  second.socket.destroy()
})
