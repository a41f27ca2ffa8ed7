// The client-side limits of HTTP/1.1, held over HTTP/2 too (Node's HTTP/2 server
// enforces none of them itself): a header list past max_request_header_size (431), too
// many headers (431), a body that grows past max_body_size while the client is still
// sending it (413, then RST_STREAM NO_ERROR so it stops), a body trickled past
// client_request (408, origin request cancelled), a connection that sends no request
// within client_headers (GOAWAY, and the 408 access line HTTP/1.1 gets), CONNECT (405),
// and a connection idle past listen.http2.idle_timeout (GOAWAY). Real TLS, Node's own
// HTTP/2 client, loopback only.

import http2 from 'node:http2'
import t from 'tap'
import { startProxy, type LogLine } from '../helpers.js'
import { scriptedOrigin, type OriginRequest } from '../origins.js'
import { stallWatch } from '../timing.js'
import { makePki } from '../tls-support.js'

const pki = await makePki()
t.teardown(() => pki.remove())
const cert = await pki.issue('edge', ['localhost'])

/** Every request the origin saw whole (headers, and its Content-Length body). */
const seen: OriginRequest[] = []
const origin = await scriptedOrigin((req, socket) => {
  seen.push(req)
  // A chunked upload is left to stream: only the edge's limit ends it.
  if (req.headers['transfer-encoding'] === 'chunked') return
  socket.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok')
})
t.teardown(() => origin.close())

const proxy = await startProxy({
  routes: [{ origin: origin.url }],
  listen: { tls: { cert: cert.certFile, key: cert.keyFile }, http2: { idle_timeout: '30s' } },
  limits: { max_request_header_size: 2048, max_header_count: 20, max_body_size: 1024 },
  timeouts: { client_headers: '1s', client_request: '1s' }
})
t.teardown(() => proxy.close())

function connect (): http2.ClientHttp2Session {
  const session = http2.connect(proxy.url, { ca: pki.ca.cert, servername: 'localhost' })
  session.on('error', () => {})
  return session
}

interface Reply { status: number, headers: http2.IncomingHttpHeaders, body: string }

/** One stream on `session`; `feed` writes its body (none: the stream ends with its headers). */
function send (session: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders,
  feed?: (req: http2.ClientHttp2Stream) => void): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = session.request(headers, { endStream: feed === undefined })
    let status = 0
    let head: http2.IncomingHttpHeaders = {}
    let body = ''
    req.on('response', h => { head = h; status = Number(h[':status']) })
    req.on('data', (d: Buffer) => { body += d.toString() })
    req.on('end', () => resolve({ status, headers: head, body }))
    req.on('error', reject)
    feed?.(req)
  })
}

async function waitUntil (ok: () => boolean, ms = 3000): Promise<void> {
  const until = performance.now() + ms
  while (!ok() && performance.now() < until) await new Promise(resolve => setTimeout(resolve, 10))
}

const accessOf = (reply: Reply) => (l: LogLine): boolean => l.msg === 'access' && l.ray_id === String(reply.headers['cf-ray']).slice(0, 16)

t.test('431: a header list past max_request_header_size, or too many headers, never reaches the origin', async t => {
  const session = connect()
  t.teardown(() => session.close())
  const before = seen.length
  // Node's HTTP/2 server announces the limit in SETTINGS but lets header lists of up to 64 KiB through.
  const big = await send(session, { ':path': '/big', 'x-big': 'b'.repeat(5000) })
  t.equal(big.status, 431, '5,000 bytes of headers > 2,048')
  t.match(big.body, /431/)
  const bigLine = await proxy.waitForLog(accessOf(big))
  t.equal(bigLine.refused, 'header_list_too_large')
  t.equal(bigLine.client.protocol, 'HTTP/2')

  const many: http2.OutgoingHttpHeaders = { ':path': '/many' }
  for (let i = 0; i < 25; i++) many[`x-h${i}`] = 'v'
  const crowded = await send(session, many)
  t.equal(crowded.status, 431, '25 headers > max_header_count 20')
  t.equal((await proxy.waitForLog(accessOf(crowded))).refused, 'too_many_headers')

  // Just under the size limit (the list counts 32 bytes per field, pseudo-headers included).
  const fits = await send(session, { ':path': '/fits', 'x-pad': 'p'.repeat(1500) })
  t.equal(fits.status, 200, 'a header list within the limit is served on the same connection')
  t.same(seen.slice(before).map(r => r.url), ['/fits'], 'the origin saw only the request within the limits')
})

t.test('client_request: a body trickled past the limit gets 408, and the origin never gets it whole', async t => {
  const session = connect()
  t.teardown(() => session.close())
  const stall = stallWatch()
  const t0 = performance.now()
  let timer: NodeJS.Timeout | undefined
  const slow = await send(session, { ':method': 'POST', ':path': '/slow-body', 'content-length': '100' }, req => {
    // One byte every 200 ms: 20 s for the whole body, client_request is 1 s.
    timer = setInterval(() => { if (!req.closed && !req.writableEnded) req.write('b') }, 200)
    req.once('close', () => clearInterval(timer))
  })
  clearInterval(timer)
  const ms = performance.now() - t0
  const late = stall()
  t.equal(slow.status, 408)
  t.ok(ms >= 900, `the trickler was allowed its 1 s (${ms.toFixed(0)} ms)`)
  t.ok(ms < 2500 + late, `and answered soon after (${ms.toFixed(0)} ms, loop stall ${late.toFixed(0)} ms)`)
  t.ok(String(slow.headers['cf-ray']).length > 16, 'with a ray id')
  const line = await proxy.waitForLog(accessOf(slow))
  t.equal(line.status, 408)
  t.equal(line.refused, 'ERR_HTTP_REQUEST_TIMEOUT', 'the same reason HTTP/1.1 logs')
  t.equal(line.client.protocol, 'HTTP/2')
  t.notOk(seen.some(r => r.url === '/slow-body'), 'the trickled body never completed at the origin')

  const quick = await send(session, { ':method': 'POST', ':path': '/quick-body', 'content-length': '5' }, req => req.end('hello'))
  t.equal(quick.status, 200, 'a body sent at once on the same connection is served')
  t.ok(seen.some(r => r.url === '/quick-body'))
})

t.test('413: a body growing past max_body_size while it streams; the client is told to stop', async t => {
  const session = connect()
  t.teardown(() => session.close())
  let closeCode = -1
  const reply = await send(session, { ':method': 'POST', ':path': '/upload' }, req => {
    // No content-length: the limit is only met while the body streams. 512 bytes every 20 ms, for ever.
    const timer = setInterval(() => { if (!req.closed && !req.writableEnded) req.write('u'.repeat(512)) }, 20)
    req.once('close', () => { clearInterval(timer); closeCode = req.rstCode ?? -1 })
  })
  t.equal(reply.status, 413)
  await waitUntil(() => closeCode !== -1)
  t.equal(closeCode, http2.constants.NGHTTP2_NO_ERROR, 'RST_STREAM NO_ERROR after the complete answer (RFC 9113 §8.1)')
  t.equal((await proxy.waitForLog(accessOf(reply))).status, 413)
  t.equal((await send(session, { ':path': '/after-413' })).status, 200, 'the session goes on')
})

t.test('client_headers: a connection that sends no request is sent away with the 408 access line', async t => {
  const stall = stallWatch()
  const before = proxy.logs.filter(l => l.msg === 'access' && l.status === 408 && l.method === '').length
  const t0 = performance.now()
  const session = connect()
  const goaway = new Promise<number>(resolve => session.once('goaway', resolve))
  await new Promise<void>(resolve => session.once('close', resolve))
  const ms = performance.now() - t0
  const late = stall()
  t.equal(await goaway, http2.constants.NGHTTP2_NO_ERROR, 'GOAWAY first, so the client knows')
  t.ok(ms >= 900 && ms < 2500 + late, `closed after client_headers 1 s (${ms.toFixed(0)} ms, loop stall ${late.toFixed(0)} ms)`)
  const lines = proxy.logs.filter(l => l.msg === 'access' && l.status === 408 && l.method === '')
  t.equal(lines.length, before + 1, 'one access line')
  t.equal(lines.at(-1)?.refused, 'ERR_HTTP_REQUEST_TIMEOUT')
  t.equal(lines.at(-1)?.client.protocol, 'HTTP/2')

  // A connection that asked in time is not cut when the limit passes.
  const busy = connect()
  t.teardown(() => busy.close())
  t.equal((await send(busy, { ':path': '/first' })).status, 200)
  await new Promise(resolve => setTimeout(resolve, 1300))
  t.notOk(busy.closed || busy.destroyed, 'still open past client_headers')
  t.equal((await send(busy, { ':path': '/second' })).status, 200)
})

t.test('CONNECT over HTTP/2: 405 with Allow, as over HTTP/1.1', async t => {
  const session = connect()
  t.teardown(() => session.close())
  const before = seen.length
  const reply = await send(session, { ':method': 'CONNECT', ':authority': 'evil.test:443' })
  t.equal(reply.status, 405)
  t.match(reply.headers.allow, /GET/)
  t.match(reply.body, /^405 Method Not Allowed/)
  const line = await proxy.waitForLog(accessOf(reply))
  t.equal(line.refused, 'connect_method')
  t.equal(line.host, 'evil.test:443')
  t.equal(seen.length, before, 'no origin saw it')
  t.equal((await send(session, { ':path': '/after' })).status, 200, 'the session goes on')
})

t.test('listen.http2.idle_timeout: a connection without frames gets GOAWAY and is closed', async t => {
  const idle = await startProxy({
    routes: [{ origin: origin.url }],
    listen: { tls: { cert: cert.certFile, key: cert.keyFile }, http2: { idle_timeout: '600ms' } }
  })
  t.teardown(() => idle.close())
  const session = http2.connect(idle.url, { ca: pki.ca.cert, servername: 'localhost' })
  session.on('error', () => {})
  const goaway = new Promise<number>(resolve => session.once('goaway', resolve))
  const closed = new Promise<void>(resolve => session.once('close', resolve))
  const stall = stallWatch()
  const reply = await new Promise<number>((resolve, reject) => {
    const req = session.request({ ':path': '/then-quiet' })
    req.on('response', h => { resolve(Number(h[':status'])); req.resume() })
    req.on('error', reject)
  })
  t.equal(reply, 200)
  const t0 = performance.now()
  t.equal(await goaway, http2.constants.NGHTTP2_NO_ERROR)
  await closed
  const ms = performance.now() - t0
  const late = stall()
  t.ok(ms >= 300 && ms < 2000 + late, `closed ${ms.toFixed(0)} ms after its last frame (idle_timeout 600 ms, loop stall ${late.toFixed(0)} ms)`)
})
