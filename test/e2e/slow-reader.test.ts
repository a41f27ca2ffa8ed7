// Issue 28, item 3, scaled down: an HTTP/2 client that opens streams for a large object
// and never reads (a flow-control window of 0) holds at most its share of an origin's
// connections (connections.max_per_client, by default a quarter of max_per_origin), so
// a visitor from another address is served at once beside it; and after
// timeouts.client_write its streams are reset, the origin requests cancelled, and the
// stall logged as the client's (499, HPX_ERR_CLIENT_WRITE_TIMEOUT), never the origin's.
// Real TLS, Node's own HTTP/2 client, two loopback addresses for two clients.

import http2 from 'node:http2'
import tls from 'node:tls'
import t from 'tap'
import { startProxy, type LogLine } from '../helpers.js'
import { scriptedOrigin } from '../origins.js'
import { makePki } from '../tls-support.js'

const pki = await makePki()
t.teardown(() => pki.remove())
const cert = await pki.issue('edge', ['localhost'])

const BIG = 4 * 1024 * 1024
// Past what loopback's socket buffers hold, so an HTTP/1.1 client that reads nothing stalls the edge.
const HUGE = 64 * 1024 * 1024
const origin = await scriptedOrigin((req, socket) => {
  if (req.url.startsWith('/huge')) {
    socket.write(`HTTP/1.1 200 OK\r\ncontent-length: ${HUGE}\r\n\r\n`)
    const chunk = Buffer.alloc(1024 * 1024, 121)
    let sent = 0
    const pump = (): void => {
      while (sent < HUGE && !socket.destroyed) {
        sent += chunk.length
        if (!socket.write(chunk)) { socket.once('drain', pump); return }
      }
    }
    pump()
  } else if (req.url.startsWith('/big')) {
    socket.write(`HTTP/1.1 200 OK\r\ncontent-length: ${BIG}\r\n\r\n`)
    socket.write(Buffer.alloc(BIG, 120))
  } else {
    socket.write('HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nsmall')
  }
})
t.teardown(() => origin.close())

const proxy = await startProxy({
  routes: [{ origin: origin.url }],
  listen: { tls: { cert: cert.certFile, key: cert.keyFile } },
  // A share of 4 / 4 = 1 connection per client address.
  connections: { max_per_origin: 4 },
  timeouts: { client_write: '1500ms', connect: '3s', body_idle: '30s' }
})
t.teardown(() => proxy.close())

function connect (localAddress: string, settings: http2.Settings = {}): http2.ClientHttp2Session {
  const options: http2.SecureClientSessionOptions & { localAddress: string } = { ca: pki.ca.cert, servername: 'localhost', localAddress, settings }
  const session = http2.connect(proxy.url, options)
  session.on('error', () => {})
  return session
}

interface Stream { status: Promise<number>, ray: Promise<string>, closed: Promise<number>, body: () => string }

/** A stream whose response headers and close (with its RST_STREAM code) are watched; its body is read only if `read`. */
function open (session: http2.ClientHttp2Session, path: string, read: boolean): Stream {
  const req = session.request({ ':path': path })
  req.on('error', () => {})
  let body = ''
  if (read) req.on('data', (d: Buffer) => { body += d.toString() })
  else req.pause()
  const head = new Promise<http2.IncomingHttpHeaders>(resolve => req.once('response', resolve))
  return {
    status: head.then(h => Number(h[':status'])),
    ray: head.then(h => String(h['cf-ray']).slice(0, 16)),
    closed: new Promise(resolve => req.once('close', () => resolve(req.rstCode ?? -1))),
    body: () => body
  }
}

const accessFor = (ray: string) => (l: LogLine): boolean => l.msg === 'access' && l.ray_id === ray

t.test('a client that does not read holds only its share, is cut after client_write, and the stall is logged as its own', async t => {
  // Window 0: the edge can send headers, never a byte of body.
  const slow = connect('127.0.0.1', { initialWindowSize: 0 })
  t.teardown(() => slow.destroy())
  const streams = [0, 1, 2, 3].map(i => open(slow, `/big/${i}`, false))
  // Its first stream rides its one connection; the second waits for it; the rest are refused at once.
  const statuses = await Promise.all(streams.slice(2).map(s => s.status))
  t.same(statuses, [503, 503], 'past its share and the share\'s queue: 503 at once')
  for (const s of streams.slice(2)) {
    const ray = await s.ray
    const failure = await proxy.waitForLog(l => l.msg === 'origin failure' && l.ray_id === ray)
    t.equal(failure.error.code, 'HPX_ERR_CLIENT_SHARE', 'and a failure line naming the client\'s share')
  }
  t.equal(await streams[0]?.status, 200, 'the first stream got its headers')

  // Another visitor, from another address, is served at once beside it.
  const other = connect('127.0.0.2')
  t.teardown(() => other.close())
  const t0 = performance.now()
  const small = open(other, '/small', true)
  t.equal(await small.status, 200, 'another client is served')
  await small.closed
  const ms = performance.now() - t0
  t.equal(small.body(), 'small')
  t.ok(ms < 1000, `at once (${ms.toFixed(0)} ms), not after the slow client's streams`)
  t.ok(origin.open() <= 2, `the slow client holds one origin connection, the other client one at most (${origin.open()} open)`)

  // client_write: the stalled stream is reset, and its origin request cancelled.
  const code = await streams[0]?.closed
  t.not(code, http2.constants.NGHTTP2_NO_ERROR, `the stalled stream was reset (RST_STREAM ${String(code)})`)
  const ray = await (streams[0] as Stream).ray
  const line = await proxy.waitForLog(accessFor(ray))
  t.equal(line.status, 499, 'its access line says 499: the client\'s failure')
  const warn = await proxy.waitForLog(l => l.msg === 'client write timeout' && l.ray_id === ray)
  t.equal(warn.error.code, 'HPX_ERR_CLIENT_WRITE_TIMEOUT')
  t.equal(warn.client.ip, '127.0.0.1', 'naming the client')
  // The waiting stream took the freed slot, and is cut the same way in turn.
  t.equal(await streams[1]?.status, 200, 'the waiting stream got the slot its own client freed')
  await streams[1]?.closed
  t.equal((await proxy.waitForLog(accessFor(await (streams[1] as Stream).ray))).status, 499)
  // Never the origin's failure: no failure line for the stalled streams, and the origin serves on.
  t.notOk(proxy.logs.some(l => l.msg === 'origin failure' && (l.ray_id === ray || l.error?.code === 'HPX_ERR_BODY_IDLE')), 'no origin failure for a stall that was the client\'s')
  // The 503 pages could not be delivered either (window 0): cut after client_write too, each with its line.
  for (const s of streams.slice(2)) {
    const refused = await proxy.waitForLog(accessFor(await s.ray))
    t.equal(refused.edge_status, 503, 'a 503 page to a client that read none of it')
    t.equal(refused.status, 499, 'logged 499 once client_write cut it')
  }
  const after = open(other, '/small', true)
  t.equal(await after.status, 200, 'the origin was not marked down')
})

t.test('HTTP/1.1 too: a client that stops reading is cut after client_write, logged 499 as its own', async t => {
  const socket = tls.connect({ host: '127.0.0.1', port: proxy.port, ALPNProtocols: ['http/1.1'], ca: pki.ca.cert, servername: 'localhost' })
  socket.on('error', () => {})
  let head = ''
  await new Promise<void>(resolve => socket.once('secureConnect', () => resolve()))
  socket.write('GET /huge HTTP/1.1\r\nhost: localhost\r\n\r\n')
  // Read the head, then nothing more.
  await new Promise<void>(resolve => socket.once('data', (d: Buffer) => { head = d.toString('latin1'); socket.pause(); resolve() }))
  const ray = /cf-ray: ([0-9a-f]{16})/i.exec(head)?.[1] as string
  t.match(head, /^HTTP\/1\.1 200/, 'the response began')
  t.equal((await proxy.waitForLog(accessFor(ray), 15000)).status, 499, 'the access line says 499')
  // A paused socket notices nothing: reading again, it finds the connection cut short.
  let got = 0
  socket.on('data', (d: Buffer) => { got += d.length })
  socket.resume()
  await new Promise<void>(resolve => socket.once('close', () => resolve()))
  t.ok(got < HUGE, `the edge closed the connection before the whole body (${got} of ${HUGE} bytes)`)
  t.equal((await proxy.waitForLog(l => l.msg === 'client write timeout' && l.ray_id === ray)).client.protocol, 'HTTP/1.1')
  t.notOk(proxy.logs.some(l => l.msg === 'origin failure' && l.ray_id === ray), 'no origin failure line')
})
