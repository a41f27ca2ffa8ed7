// The one writer of edge-made answers (page/write.ts) over each thing a client can have:
// a raw socket (the bytes exactly), Node's ServerResponse, an HTTP/2 stream, and the
// edge's own sink. Real servers and clients on loopback.

import { once } from 'node:events'
import http from 'node:http'
import http2 from 'node:http2'
import net, { type AddressInfo } from 'node:net'
import t from 'tap'
import { ResponseSink } from '../../src/edge/sink.js'
import { rawHead, switchingHead } from '../../src/page/raw-response.js'
import { writeToResponse, writeToSink, writeToSocket, writeToStream } from '../../src/page/write.js'

const HEADERS = ['cf-ray', '0123456789abcdef-HPX', 'server', 'highproxy', 'content-type', 'text/plain; charset=utf-8']

const portOf = (server: net.Server | http2.Http2Server): number => (server.address() as AddressInfo).port

/** Everything a raw client reads from `port` until the edge closes, after sending `send`. */
async function readAll (port: number, send = ''): Promise<string> {
  const socket = net.connect(port, '127.0.0.1')
  let got = ''
  socket.on('data', (d: Buffer) => { got += d.toString('latin1') })
  if (send !== '') socket.write(send)
  await once(socket, 'close')
  return got
}

t.test('a raw socket: status line, headers, content-length, connection: close, the body; then the connection ends', async t => {
  const server = net.createServer(socket => writeToSocket(socket, 503, [...HEADERS, 'retry-after', '5'], 'héllo\n'))
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => server.close())
  t.equal(await readAll(portOf(server)),
    'HTTP/1.1 503 Service Unavailable\r\ncf-ray: 0123456789abcdef-HPX\r\nserver: highproxy\r\ncontent-type: text/plain; charset=utf-8\r\n' +
    'retry-after: 5\r\ncontent-length: 7\r\nconnection: close\r\n\r\n' + Buffer.from('héllo\n').toString('latin1'),
    'content-length counts bytes, not characters')
})

t.test('raw heads: a body that ends at close has no length; a 101 keeps its connection for the tunnel', async t => {
  t.equal(rawHead(502, ['a', 'b'], null, 'Bad Gateway'), 'HTTP/1.1 502 Bad Gateway\r\na: b\r\nconnection: close\r\n\r\n')
  t.equal(switchingHead(101, ['cf-ray', 'r-HPX', 'upgrade', 'websocket', 'sec-websocket-accept', 'x']),
    'HTTP/1.1 101 Switching Protocols\r\ncf-ray: r-HPX\r\nupgrade: websocket\r\nsec-websocket-accept: x\r\nconnection: upgrade\r\n\r\n')
})

t.test("Node's ServerResponse: the status, the headers as given, the body; a HEAD gets none", async t => {
  const server = http.createServer((req, res) => writeToResponse(res, 400, [...HEADERS, 'content-length', '4'], 'bad\n', req.method === 'HEAD'))
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => server.close())
  const port = portOf(server)
  const got = await readAll(port, 'GET / HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n')
  t.match(got, /^HTTP\/1\.1 400 Bad Request\r\n/)
  t.match(got, /\r\ncf-ray: 0123456789abcdef-HPX\r\nserver: highproxy\r\ncontent-type: text\/plain; charset=utf-8\r\ncontent-length: 4\r\n/)
  t.ok(got.endsWith('\r\n\r\nbad\n'))
  const head = await readAll(port, 'HEAD / HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n')
  t.match(head, /content-length: 4\r\n/)
  t.ok(head.endsWith('\r\n\r\n'), 'no body after the head')
})

t.test('an HTTP/2 stream: one HEADERS with :status, repeated names as one list, the body, the stream ends', async t => {
  const server = http2.createServer()
  server.on('stream', stream => writeToStream(stream, 405, [...HEADERS, 'set-cookie', 'a=1', 'set-cookie', 'b=2'], 'no\n'))
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => server.close())
  const session = http2.connect(`http://127.0.0.1:${portOf(server)}`)
  t.teardown(() => session.close())
  const req = session.request({ ':method': 'CONNECT', ':authority': 'example.test:443' })
  const [head] = await once(req, 'response') as [http2.IncomingHttpHeaders]
  let body = ''
  req.on('data', (d: Buffer) => { body += d.toString() })
  await once(req, 'end')
  t.equal(head[':status'], 405)
  t.equal(head['cf-ray'], '0123456789abcdef-HPX')
  t.same(head['set-cookie'], ['a=1', 'b=2'])
  t.equal(body, 'no\n')
})

t.test("the edge's sink: a string page, a kept copy's bytes, and HEAD, over a real response", async t => {
  const server = http.createServer((req, res) => {
    const sink = new ResponseSink(res, null)
    const head = req.method === 'HEAD'
    if (req.url === '/page') writeToSink(sink, 522, 'Connection Timed Out', [...HEADERS, 'content-length', '5'], 'page\n', head)
    else writeToSink(sink, 200, 'OK', ['content-length', '4'], Buffer.from('copy'), head)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => server.close())
  const port = portOf(server)
  const page = await readAll(port, 'GET /page HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n')
  t.match(page, /^HTTP\/1\.1 522 Connection Timed Out\r\n/, "the edge's reason phrase, not Node's")
  t.ok(page.endsWith('\r\n\r\npage\n'))
  const copy = await readAll(port, 'GET /copy HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n')
  t.match(copy, /^HTTP\/1\.1 200 OK\r\n/)
  t.ok(copy.endsWith('\r\n\r\ncopy'))
  const head = await readAll(port, 'HEAD /page HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n')
  t.match(head, /^HTTP\/1\.1 522 Connection Timed Out\r\n/)
  t.ok(head.endsWith('\r\n\r\n'), 'HEAD: the headers only')
})
