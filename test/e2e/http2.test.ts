// HTTP/2 to clients, with the same edge semantics as HTTP/1.1: a 521 and a 522 look the
// same over plain HTTP/1.1, HTTP/1.1 over TLS and HTTP/2 (status, headers, body); bodies
// stream both ways; a stream the client cancels cancels its origin request (499); a
// client resetting streams in a loop (rapid reset) loses its connection and nobody else
// notices; connection-specific headers never cross.

import http2 from 'node:http2'
import net from 'node:net'
import t from 'tap'
import { refusedOrigin, synDropOrigin } from '../../src/lab/faults.js'
import { healthyOrigin } from '../../src/lab/healthy-origin.js'
import { startProxy } from '../helpers.js'
import { curl, h2request, makePki, type Answer } from '../tls-support.js'

const pki = await makePki()
t.teardown(() => pki.remove())
const cert = await pki.issue('edge', ['localhost'])
const tls = { cert: cert.certFile, key: cert.keyFile }

const refused = await refusedOrigin()
const dropping = await synDropOrigin()
t.teardown(() => dropping.close())
const healthy = await healthyOrigin()
t.teardown(() => healthy.close())

/** Sockets of the silent origin that hold a request. */
const silentSockets = new Set<net.Socket>()
const allSilent = new Set<net.Socket>()
const silent = net.createServer(socket => {
  allSilent.add(socket)
  socket.once('data', () => silentSockets.add(socket))
  socket.on('close', () => { silentSockets.delete(socket); allSilent.delete(socket) })
  socket.on('error', () => {})
})
await new Promise<void>(resolve => silent.listen(0, '127.0.0.1', resolve))
t.teardown(() => { for (const s of allSilent) s.destroy(); silent.close() })
const silentUrl = `http://127.0.0.1:${(silent.address() as net.AddressInfo).port}`

const routes = [
  { path: '/dead', origin: refused.url },
  { path: '/drowning', origin: dropping.url, connect_timeout: '300ms' },
  { path: '/never', origin: silentUrl },
  { path: '/', origin: healthy.url }
]
const plain = await startProxy({ routes })
const secure = await startProxy({ routes, listen: { tls, http2: { max_concurrent_streams: 7, max_client_resets: 20 } } })
t.teardown(async () => { await plain.close(); await secure.close() })

const trust = ['--cacert', pki.caFile, '--resolve', `localhost:${secure.port}:127.0.0.1`]
const base = `https://localhost:${secure.port}`

/**
 * The origin's condition counts what each proxy saw ("its last 3 connects were refused"):
 * the two proxies compared here see different numbers of requests, so the counts go.
 */
const uncounted = (text: string): string => text
  .replace(/its last (\d+ connects were|connect was)/g, 'its last N connects were')
  .replace(/\d+ of its last (\d+ )?connects?/g, 'N of its last N connects')

/** What must be equal across protocols: the per-request values (ray, times, Date, the condition's counts) and HTTP/1.1's connection headers left out. */
function comparable (a: Answer): { status: number, headers: Record<string, string>, body: string } {
  const ray = String(a.headers['cf-ray']).slice(0, 16)
  const headers: Record<string, string> = {}
  // content-length follows the counts' digits; the bodies are compared whole instead.
  for (const [k, v] of Object.entries(a.headers)) if (!['date', 'cf-ray', 'connection', 'keep-alive', 'content-length'].includes(k)) headers[k] = uncounted(v)
  const body = uncounted(a.body.replaceAll(ray, 'RAY').replace(/\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d+)?Z?( UTC)?/g, 'TIME'))
  return { status: a.status, headers, body }
}

for (const [path, status] of [['/dead', 521], ['/drowning', 522]] as const) {
  t.test(`${status} over HTTP/2 is the ${status} of HTTP/1.1: status, headers, body`, async t => {
    for (const accept of ['text/html', 'application/json', 'text/markdown']) {
      const url = `${path}/x?y=1`
      const h1 = await curl(['--http1.1', '-H', `accept: ${accept}`, '-H', `host: localhost:${secure.port}`, `${plain.url}${url}`])
      const h1tls = await curl(['--http1.1', '-H', `accept: ${accept}`, ...trust, `${base}${url}`])
      const h2 = await curl(['--http2', '-H', `accept: ${accept}`, ...trust, `${base}${url}`])
      const node = await h2request(secure.url, pki.ca.cert, { ':path': url, ':authority': `localhost:${secure.port}`, accept }, undefined, 'localhost')
      t.equal(h1.version, 'HTTP/1.1')
      t.equal(h2.version, 'HTTP/2')
      t.equal(h1.status, status, accept)
      t.match(h1.headers['retry-after'], '120')
      t.match(h1.headers['proxy-status'], /^HPX; ?error=connection_(refused|timeout)/)
      const want = comparable(h1)
      t.same(comparable(h1tls), want, `${accept}: HTTP/1.1 over TLS`)
      t.same(comparable(h2), want, `${accept}: HTTP/2 (curl)`)
      t.same(comparable(node), want, `${accept}: HTTP/2 (node:http2)`)
      t.notOk('connection' in h2.headers || 'keep-alive' in h2.headers, 'no connection-specific header on an HTTP/2 answer')
      const ray = String(h2.headers['cf-ray']).slice(0, 16)
      const failure = await secure.waitForLog(l => l.msg === 'origin failure' && l.ray_id === ray)
      t.equal(failure.client.protocol, 'HTTP/2', 'the failure line says which protocol the client spoke')
      t.equal(failure.edge_status, status)
      const access = await secure.waitForLog(l => l.msg === 'access' && l.ray_id === ray)
      t.equal(access.status, status)
      t.equal(access.client.protocol, 'HTTP/2')
    }
  })
}

t.test('bodies stream both ways over HTTP/2', async t => {
  const session = http2.connect(secure.url, { ca: pki.ca.cert, servername: 'localhost' })
  t.teardown(() => session.close())
  const req = session.request({ ':method': 'POST', ':path': '/pipe', 'content-type': 'application/octet-stream' })
  const echoed: string[] = []
  const first = new Promise<void>(resolve => req.once('data', (d: Buffer) => { echoed.push(d.toString()); resolve() }))
  req.write('first half;')
  // The origin echoed the first half while the request is still open: nothing was buffered whole.
  await first
  t.same(echoed, ['first half;'])
  req.on('data', (d: Buffer) => echoed.push(d.toString()))
  const ended = new Promise<void>(resolve => req.once('end', resolve))
  req.end('second half')
  await ended
  t.equal(echoed.join(''), 'first half;second half')
})

t.test('a stream the client cancels cancels its origin request: 499', async t => {
  const session = http2.connect(secure.url, { ca: pki.ca.cert, servername: 'localhost' })
  t.teardown(() => session.close())
  const before = silentSockets.size
  const req = session.request({ ':path': '/never/wait' })
  req.on('error', () => {})
  await t.resolves(waitFor(() => silentSockets.size > before), 'the origin has the request')
  req.close(http2.constants.NGHTTP2_CANCEL)
  const access = await secure.waitForLog(l => l.msg === 'access' && l.path === '/never/wait')
  t.equal(access.status, 499)
  t.equal(access.client.protocol, 'HTTP/2')
  await t.resolves(waitFor(() => silentSockets.size === before), 'the origin connection was closed')
  const ok = await h2request(secure.url, pki.ca.cert, { ':path': '/' }, undefined, 'localhost')
  t.equal(ok.status, 200, 'the session goes on')
})

t.test('the session announces max_concurrent_streams', async t => {
  const session = http2.connect(secure.url, { ca: pki.ca.cert, servername: 'localhost' })
  t.teardown(() => session.close())
  const settings = await new Promise<http2.Settings>(resolve => session.once('remoteSettings', resolve))
  t.equal(settings.maxConcurrentStreams, 7)
  t.equal(settings.maxHeaderListSize, 16384, 'the request header limit of HTTP/1.1, as SETTINGS_MAX_HEADER_LIST_SIZE')
})

t.test('connection-specific headers of the origin never reach an HTTP/2 client', async t => {
  // /echo answers with connection: keep-alive and keep-alive: timeout=3.
  const res = await h2request(secure.url, pki.ca.cert, { ':path': '/echo', ':authority': 'shop.example' }, undefined, 'localhost')
  t.equal(res.status, 200)
  t.notOk('connection' in res.headers)
  t.notOk('keep-alive' in res.headers)
  const echo = JSON.parse(res.body) as { headers: Record<string, string> }
  t.equal(echo.headers['x-forwarded-proto'], 'https')
  t.equal(echo.headers['x-forwarded-host'], 'shop.example', ':authority routes and forwards like Host')
})

t.test('rapid reset: the flooding connection gets GOAWAY ENHANCE_YOUR_CALM, the process stays up', async t => {
  const session = http2.connect(secure.url, { ca: pki.ca.cert, servername: 'localhost' })
  session.on('error', () => {})
  let cut = false
  const goaway = new Promise<number>(resolve => session.once('goaway', code => { cut = true; resolve(code) }))
  const closed = new Promise<void>(resolve => session.once('close', resolve))
  let sent = 0
  // Open a stream and reset it as soon as its HEADERS are out, as the attack does; five
  // at a time (the client keeps to max_concurrent_streams: a reset stream frees its slot).
  const one = (): void => {
    if (cut || session.closed || session.destroyed || sent >= 2000) return
    const s = session.request({ ':path': '/never/flood' })
    s.on('error', () => {})
    resetOnceSent(s, () => { sent++ })
    s.once('close', one)
  }
  for (let i = 0; i < 5; i++) one()
  t.equal(await goaway, http2.constants.NGHTTP2_ENHANCE_YOUR_CALM)
  await closed
  // What the edge worked on: one access line per stream it saw.
  const served = secure.logs.filter(l => l.msg === 'access' && l.path === '/never/flood').length
  t.ok(served > 20 && served < 100, `cut after ${served} streams, past the budget (20) and long before Node's own limit (1,000)`)
  const line = await secure.waitForLog(l => l.msg === 'http2 connection cut')
  t.equal(line.error.code, 'HPX_ERR_RESET_FLOOD')
  t.equal(line.client.address, '127.0.0.1')
  const ok = await h2request(secure.url, pki.ca.cert, { ':path': '/' }, undefined, 'localhost')
  t.equal(ok.status, 200, 'a new connection is served')
  const h1 = await curl(['--http1.1', ...trust, `${base}/`])
  t.equal(h1.status, 200)
})

t.test('a few cancelled streams are not a flood', async t => {
  const session = http2.connect(secure.url, { ca: pki.ca.cert, servername: 'localhost' })
  t.teardown(() => session.close())
  for (let i = 0; i < 10; i++) {
    await new Promise<void>(resolve => {
      const s = session.request({ ':path': '/never/few' })
      s.on('error', () => {})
      resetOnceSent(s)
      s.once('close', resolve)
    })
  }
  const res = await new Promise<number>((resolve, reject) => {
    const r = session.request({ ':path': '/' })
    r.on('response', h => { resolve(Number(h[':status'])); r.resume() })
    r.on('error', reject)
  })
  t.equal(res, 200, 'the same session still serves requests')
})

/** RST_STREAM right after the stream's HEADERS went out ('ready' comes only while the session connects). */
function resetOnceSent (s: http2.ClientHttp2Stream, onReset = (): void => {}): void {
  const cancel = (): void => {
    if (s.closed) return
    s.close(http2.constants.NGHTTP2_CANCEL)
    onReset()
  }
  if (s.pending) s.once('ready', cancel)
  else setImmediate(cancel)
}

async function waitFor (condition: () => boolean, ms = 5000): Promise<void> {
  const until = Date.now() + ms
  while (!condition()) {
    if (Date.now() > until) throw new Error('condition not met')
    await new Promise(resolve => setTimeout(resolve, 10))
  }
}

t.test('HEAD over HTTP/2 gets the edge\'s own answers too (Node ends a HEAD stream\'s writable side on arrival)', async t => {
  const session = http2.connect(secure.url, { ca: pki.ca.cert, servername: 'localhost' })
  t.teardown(() => session.close())
  for (const [path, status] of [['/dead/head', 521], ['/never/../x', 400]] as const) {
    const got = await new Promise<{ status: number, ray: string }>((resolve, reject) => {
      const req = session.request({ ':method': 'HEAD', ':path': path })
      req.on('response', h => { resolve({ status: Number(h[':status']), ray: String(h['cf-ray']) }); req.resume() })
      req.on('error', reject)
      setTimeout(() => reject(new Error(`no answer to HEAD ${path}`)), 3000).unref()
    })
    t.equal(got.status, status, `HEAD ${path}`)
    const line = await secure.waitForLog(l => l.msg === 'access' && l.ray_id === got.ray.slice(0, 16))
    t.equal(line.status, status)
  }
})
