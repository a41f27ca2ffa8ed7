// highproxy's own toxics (syn_drop, slow_accept, http_status, tls_bad_cert), measured on
// the wire, and a highproxy edge in front of a toxiproxy proxy: each fault the lab makes
// through Toxiproxy's API is answered with the edge status it stands for.

import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import http from 'node:http'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import tls from 'node:tls'
import t from 'tap'
import { Toxiproxy, type Proxy } from 'toxiproxy-node-client'
import { startToxiproxy } from '../../src/lab/index.js'
import { tlsOrigin } from '../../src/lab/tls-faults.js'
import type { ErrorBody } from '../../src/page/render.js'
import { get, startProxy } from '../helpers.js'
import { alive, childrenOf, isSynDropChild } from '../leftovers.js'
import { connectOutcome, echoUpstream, exchange, portOf } from '../toxiproxy-support.js'

const echo = await echoUpstream()
t.teardown(() => echo.close())
let requests = 0
const web = http.createServer((_req, res) => { requests++; res.end('hello from the upstream\n') })
await new Promise<void>(resolve => web.listen(0, '127.0.0.1', () => resolve()))
t.teardown(() => { web.closeAllConnections(); web.close() })
const webAddress = `127.0.0.1:${(web.address() as net.AddressInfo).port}`
const secure = await tlsOrigin()
t.teardown(() => secure.close())
const secureAddress = new URL(secure.url).host

const server = await startToxiproxy({ port: 0 })
t.teardown(() => server.close())
const api = new Toxiproxy(server.url)
let serial = 0
async function proxyTo (upstream: string): Promise<{ proxy: Proxy, port: number }> {
  const proxy = await api.createProxy({ name: `e${++serial}`, listen: '127.0.0.1:0', upstream })
  return { proxy, port: portOf(proxy.listen) }
}
const addToxic = (proxy: Proxy, body: Record<string, unknown>): ReturnType<Proxy['addToxic']> => proxy.addToxic(body as any)

t.test('syn_drop: connects time out (no SYN-ACK) while open connections go on; removing it restores the listener', async t => {
  const { proxy, port } = await proxyTo(echo.address)
  const open = net.connect({ host: '127.0.0.1', port })
  open.on('error', () => {})
  t.teardown(() => open.destroy())
  await new Promise(resolve => open.once('connect', resolve))
  const toxic = await addToxic(proxy, { type: 'syn_drop' })
  t.same(toxic.attributes, {})
  const attempt = await connectOutcome(port, 1500)
  t.equal(attempt.outcome, 'timeout', `no handshake within 1.5 s (${attempt.ms.toFixed(0)} ms)`)
  const still = await new Promise<string>(resolve => { open.once('data', d => resolve(d.toString())); open.write('still here') })
  t.equal(still, 'still here', 'a connection opened before goes on')
  await toxic.remove()
  t.equal((await connectOutcome(port, 2000)).outcome, 'connected', 'removed: handshakes complete again, on the same port')
  t.equal((await exchange(port, 'back', 4)).data.toString(), 'back')
})

t.test('slow_accept: a connection is taken, and the upstream dialled, only after `delay`', async t => {
  const { proxy, port } = await proxyTo(echo.address)
  const base = (await exchange(port, 'x', 1)).ms
  await addToxic(proxy, { type: 'slow_accept', attributes: { delay: 700 } })
  const before = echo.connections()
  const pending = exchange(port, 'slow', 4, 5000)
  await new Promise(resolve => setTimeout(resolve, 300))
  t.equal(echo.connections(), before, 'no upstream connection yet at 300 ms')
  const res = await pending
  t.equal(res.data.toString(), 'slow')
  t.ok(res.ms - base >= 700 * 0.9 && res.ms - base <= 700 * 1.1 + 100, `answered ${(res.ms - base).toFixed(0)} ms later (want 700)`)
})

t.test('http_status: the status is answered, the request never reaches the upstream', async t => {
  const { proxy, port } = await proxyTo(webAddress)
  const toxic = await addToxic(proxy, { type: 'http_status', attributes: { status: 503 } })
  t.same(toxic.attributes, { status: 503 })
  const before = requests
  const res = await get(`http://127.0.0.1:${port}/orders`, { fresh: true })
  t.equal(res.status, 503)
  t.match(res.body, /^503 Service Unavailable/)
  t.equal(requests, before, 'the upstream saw no request')
  await toxic.update({ attributes: { status: 429 }, toxicity: 1 } as any)
  t.equal((await get(`http://127.0.0.1:${port}/`, { fresh: true })).status, 429, 'updated status')
  await toxic.update({ toxicity: 0 } as any)
  const passed = await get(`http://127.0.0.1:${port}/`, { fresh: true })
  t.equal(passed.status, 200, 'toxicity 0: forwarded')
  t.equal(requests, before + 1)
})

/** A TLS handshake with the proxy; the error code, or 'ok' and what came back to a GET. */
function handshake (port: number, ca: string | undefined, verify = true): Promise<string> {
  return new Promise(resolve => {
    const socket = tls.connect({ host: '127.0.0.1', port, ca, rejectUnauthorized: verify, servername: 'localhost' }, () => {
      socket.write('GET / HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n')
    })
    let body = ''
    socket.on('data', d => { body += d.toString() })
    socket.on('end', () => resolve(`ok ${body.split('\r\n')[0] ?? ''} ${body.includes('hello over TLS') ? 'from the upstream' : ''}`))
    socket.on('error', (err: NodeJS.ErrnoException) => resolve(String(err.code)))
  })
}

t.test('tls_bad_cert: each reason fails verification for that reason; no toxic, the upstream\'s TLS passes through', async t => {
  const { proxy, port } = await proxyTo(secureAddress)
  t.equal(await handshake(port, secure.ca), 'ok HTTP/1.1 200 OK from the upstream', 'passthrough: the upstream\'s certificate verifies')
  const toxic = await addToxic(proxy, { type: 'tls_bad_cert' })
  t.same(Object.keys(toxic.attributes as object), ['reason'], 'self_signed by default, no CA to trust')
  t.equal(await handshake(port, secure.ca), 'DEPTH_ZERO_SELF_SIGNED_CERT')
  const expired = await toxic.update({ attributes: { reason: 'expired' } } as any)
  const ca = (expired.attributes as { ca: string }).ca
  t.match(ca, /^-----BEGIN CERTIFICATE-----/, 'the CA that issued it, to trust so that only the expiry is wrong')
  t.equal(await handshake(port, ca), 'CERT_HAS_EXPIRED')
  await toxic.update({ attributes: { reason: 'wrong_name' } } as any)
  t.equal(await handshake(port, ca), 'ERR_TLS_CERT_ALTNAME_INVALID')
  t.equal(await handshake(port, undefined, false), 'ok HTTP/1.1 200 OK from the upstream', 'a client that does not verify still gets the upstream, re-encrypted')
  await toxic.remove()
  t.equal(await handshake(port, secure.ca), 'ok HTTP/1.1 200 OK from the upstream', 'removed: passthrough again')
})

t.test('a highproxy edge in front of toxiproxy proxies: 521, 522, 524, 520, 526', async t => {
  const dir = await mkdtemp(join(tmpdir(), 'highproxy-toxiproxy-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const caFile = join(dir, 'ca.pem')
  await writeFile(caFile, secure.ca as string)
  const TIMEOUTS = { connect: '600ms', response: '900ms' }
  const edgeTo = async (port: number, scheme = 'http', extra: Record<string, unknown> = {}): Promise<(path?: string) => Promise<{ status: number, body: ErrorBody | null }>> => {
    const edge = await startProxy({ timeouts: TIMEOUTS, routes: [{ origin: `${scheme}://127.0.0.1:${port}`, ...extra }] })
    t.teardown(() => edge.close())
    return async (path = '/') => {
      const res = await get(`${edge.url}${path}`, { headers: { accept: 'application/json' }, fresh: true })
      let body: ErrorBody | null = null
      try { body = JSON.parse(res.body) as ErrorBody } catch {}
      return { status: res.status, body }
    }
  }

  await t.test('enabled: false → 521', async t => {
    const { proxy, port } = await proxyTo(webAddress)
    const ask = await edgeTo(port)
    t.equal((await ask()).status, 200, 'through the proxy: 200')
    await proxy.update({ enabled: false, listen: proxy.listen, upstream: proxy.upstream })
    const res = await ask()
    t.equal(res.status, 521)
    t.equal(res.body?.error_name, 'web_server_down')
  })

  await t.test('syn_drop → 522', async t => {
    const { proxy, port } = await proxyTo(webAddress)
    const ask = await edgeTo(port)
    await addToxic(proxy, { type: 'syn_drop' })
    const t0 = performance.now()
    const res = await ask()
    t.equal(res.status, 522)
    t.equal(res.body?.error_name, 'connection_timeout')
    t.ok(performance.now() - t0 >= 600, 'after the edge\'s connect timeout')
  })

  await t.test('timeout (0: holds the answer) → 524', async t => {
    const { proxy, port } = await proxyTo(webAddress)
    const ask = await edgeTo(port)
    await addToxic(proxy, { type: 'timeout', attributes: { timeout: 0 } })
    const res = await ask()
    t.equal(res.status, 524)
    t.equal(res.body?.error_name, 'timeout')
  })

  await t.test('reset_peer → 520', async t => {
    const { proxy, port } = await proxyTo(webAddress)
    const ask = await edgeTo(port)
    await addToxic(proxy, { type: 'reset_peer', attributes: { timeout: 0 } })
    const res = await ask()
    t.equal(res.status, 520)
    t.equal(res.body?.error_name, 'unknown_error')
  })

  await t.test('tls_bad_cert → 526; without it the same route verifies: 200', async t => {
    const { proxy, port } = await proxyTo(secureAddress)
    const ask = await edgeTo(port, 'https', { tls: { verify: true, ca_file: caFile, servername: 'localhost' } })
    t.equal((await ask()).status, 200, 'passthrough to the upstream, verified against its CA')
    await addToxic(proxy, { type: 'tls_bad_cert', attributes: { reason: 'self_signed' } })
    const res = await ask('/again')
    t.equal(res.status, 526)
    t.equal(res.body?.error_name, 'invalid_ssl_certificate')
  })
})

t.test('deleting a proxy with syn_drop ends its SYN-dropping helper process and frees the port', async t => {
  const { proxy, port } = await proxyTo(echo.address)
  await addToxic(proxy, { type: 'syn_drop' })
  const helpers = childrenOf(process.pid).filter(h => isSynDropChild(h) && h.args.endsWith(` ${port}`))
  t.ok(helpers.length >= 1, 'a helper holds the full accept queue')
  await proxy.remove()
  t.same(helpers.filter(h => alive(h.pid)), [], 'the helper is gone')
  t.equal((await connectOutcome(port, 2000)).outcome, 'refused', 'nothing listens on the port')
})
