// An HTTP/2 request body ends only when the client says so, and a client that stops
// sending mid-body never takes the process or a stream with it: a stream reset with
// NO_ERROR before the end of its body is a cancelled upload (the origin never gets a
// complete, shorter request); a stream reset while its body waits for a slow dial is
// over (499) before client_request could answer it; a body burst past max_body_size gets
// 413 and the stream closes, buffered bytes and all. Real TLS, Node's HTTP/2 client.

import { once } from 'node:events'
import http2 from 'node:http2'
import net from 'node:net'
import tls from 'node:tls'
import t from 'tap'
import { startProxy, type LogLine } from '../helpers.js'
import { makePki } from '../tls-support.js'

const pki = await makePki()
t.teardown(() => pki.remove())
const cert = await pki.issue('edge', ['localhost'])

/** A TCP origin that records what it receives and never answers. */
let received = ''
const sockets = new Set<net.Socket>()
const recorder = net.createServer(socket => {
  sockets.add(socket)
  socket.on('data', (d: Buffer) => { received += d.toString('latin1') })
  socket.on('close', () => sockets.delete(socket))
  socket.on('error', () => {})
})
await new Promise<void>(resolve => recorder.listen(0, '127.0.0.1', resolve))
t.teardown(() => { for (const s of sockets) s.destroy(); recorder.close() })
const recorderPort = (recorder.address() as net.AddressInfo).port

const proxy = await startProxy({
  routes: [
    { path: '/record', origin: `http://127.0.0.1:${recorderPort}` },
    // An https origin that accepts and never says a word: the dial waits in its TLS phase.
    { path: '/stall', origin: `https://127.0.0.1:${recorderPort}` },
    { path: '/', origin: `http://127.0.0.1:${recorderPort}` }
  ],
  listen: { tls: { cert: cert.certFile, key: cert.keyFile } },
  limits: { max_body_size: 1024 },
  timeouts: { client_headers: '1s', client_request: '1s' }
})

const session = http2.connect(proxy.url, { ca: pki.ca.cert, servername: 'localhost' })
session.on('error', () => {})
// The client's session goes first: the proxy's close waits for its HTTP/2 sessions to end
// (on Node 24 it waits for an open one for ever).
t.teardown(async () => {
  session.destroy()
  await proxy.close()
})

async function waitUntil (ok: () => boolean, ms = 3000): Promise<boolean> {
  const until = performance.now() + ms
  while (!ok() && performance.now() < until) await new Promise(resolve => setTimeout(resolve, 10))
  return ok()
}

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00', 'latin1') // + empty SETTINGS
const FRAME = { DATA: 0, HEADERS: 1, RST_STREAM: 3 }
const END_HEADERS = 4

function frame (type: number, flags: number, stream: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(9)
  head.writeUIntBE(payload.length, 0, 3)
  head[3] = type
  head[4] = flags
  head.writeUInt32BE(stream, 5)
  return Buffer.concat([head, payload])
}

/** HPACK literals without indexing, names and values short (< 127 bytes), no Huffman. */
function literalHeaders (pairs: Array<[string, string]>): Buffer {
  return Buffer.concat(pairs.flatMap(([name, value]) => [Buffer.from([0, name.length]), Buffer.from(name), Buffer.from([value.length]), Buffer.from(value)]))
}

const accessFor = (path: string) => (l: LogLine): boolean => l.msg === 'access' && l.path === path

t.test('a stream reset with NO_ERROR mid-body is a cancelled upload, not a shorter one', async t => {
  // Raw frames: Node's client ends its side (END_STREAM) before a NO_ERROR reset, which
  // is a complete body; a client that resets without it has not finished.
  const socket = tls.connect({ host: '127.0.0.1', port: proxy.port, ALPNProtocols: ['h2'], ca: pki.ca.cert, servername: 'localhost' })
  t.teardown(() => socket.destroy())
  socket.on('error', () => {})
  await once(socket, 'secureConnect')
  const head = literalHeaders([[':method', 'POST'], [':scheme', 'https'], [':authority', 'localhost'], [':path', '/record/raw-upload']])
  socket.write(Buffer.concat([PREFACE, frame(FRAME.HEADERS, END_HEADERS, 1, head), frame(FRAME.DATA, 0, 1, Buffer.from('partial-body'))]))
  t.ok(await waitUntil(() => received.includes('partial-body')), 'the origin has the first bytes')
  socket.write(frame(FRAME.RST_STREAM, 0, 1, Buffer.alloc(4))) // error code 0: NO_ERROR
  const line = await proxy.waitForLog(accessFor('/record/raw-upload'))
  t.equal(line.status, 499)
  await new Promise(resolve => setTimeout(resolve, 100))
  t.notOk(received.includes('\r\n0\r\n\r\n'), 'the origin never saw the chunked body end')
  t.notOk(proxy.logs.some(l => l.msg === 'origin failure' && l.ray_id === line.ray_id), 'a client leaving is not an origin failure')
})

t.test('a stream reset while its body waits for a slow dial: 499, and client_request finds nothing to answer', async t => {
  const req = session.request({ ':method': 'POST', ':path': '/stall/upload' }, { endStream: false })
  req.on('error', () => {})
  // Unread while the dial waits: the bytes stay buffered in the stream.
  req.write(Buffer.alloc(30_000, 97))
  await new Promise(resolve => setTimeout(resolve, 200))
  req.close(http2.constants.NGHTTP2_NO_ERROR)
  const line = await proxy.waitForLog(accessFor('/stall/upload'))
  t.equal(line.status, 499)
  // Past client_request (1 s): its timer must find the exchange over, not answer a closed stream.
  await new Promise(resolve => setTimeout(resolve, 1100))
  const again = await new Promise<number>((resolve, reject) => {
    const r = session.request({ ':method': 'POST', ':path': '/record/again' })
    r.on('response', h => { resolve(Number(h[':status'])); r.close() })
    r.on('error', reject)
    r.end(Buffer.alloc(2000, 98))
  })
  t.equal(again, 413, 'the process is up and the session serves: the next upload gets its answer')
  t.equal(proxy.logs.filter(accessFor('/stall/upload')).length, 1, 'one access line')
})

t.test('a burst past max_body_size: 413, and the stream closes with its buffered bytes', async t => {
  const req = session.request({ ':method': 'POST', ':path': '/record/burst' }, { endStream: false })
  req.on('error', () => {})
  let status = 0
  req.on('response', h => { status = Number(h[':status']) })
  req.resume()
  const closed = new Promise<number>(resolve => req.once('close', () => resolve(req.rstCode ?? -1)))
  // 60 KB at once, within the stream's flow-control window, and the stream left open.
  req.write(Buffer.alloc(60_000, 99))
  t.equal(await closed, http2.constants.NGHTTP2_NO_ERROR, 'RST_STREAM NO_ERROR after the answer')
  t.equal(status, 413)
  const line = await proxy.waitForLog(accessFor('/record/burst'), 2000)
  t.equal(line.status, 413, 'its access line is written while the session stays open')
  t.notOk(session.closed || session.destroyed)
})
