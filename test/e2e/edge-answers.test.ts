// The one writer of edge-made answers, seen from the wire: the HTTP/2 408 of
// timeouts.client_request is the edge's own answer like any refusal of a request it read
// (the negotiated page, the route's headers, its status_rewrite), and each refusal status
// carries the same Proxy-Status type whichever way it is answered: 408 over HTTP/1.1
// (Node's parser, a short plain answer) and over HTTP/2 (the page), 405 for CONNECT over
// both. Real TLS, Node's own clients, loopback only.

import http2 from 'node:http2'
import net from 'node:net'
import t from 'tap'
import { Token, parseList } from 'structured-headers'
import { healthyOrigin } from '../../src/lab/healthy-origin.js'
import { startProxy } from '../helpers.js'
import { parseAnswer, raw } from '../raw-client.js'
import { makePki } from '../tls-support.js'

const pki = await makePki()
t.teardown(() => pki.remove())
const cert = await pki.issue('edge', ['localhost'])
const origin = await healthyOrigin()
t.teardown(() => origin.close())

const route = { origin: origin.url, response_headers: { 'x-route': 'on' }, status_rewrite: { 408: 400 } }
const timeouts = { client_headers: '1s', client_request: '1s' }
const h2proxy = await startProxy({ routes: [route], listen: { tls: { cert: cert.certFile, key: cert.keyFile } }, timeouts })
t.teardown(() => h2proxy.close())
const h1proxy = await startProxy({ routes: [route], timeouts })
t.teardown(() => h1proxy.close())

/** Our member's `error` in a Proxy-Status value. */
function errorOf (value: unknown): string {
  const error = parseList(String(value))[0]?.[1].get('error')
  return error instanceof Token ? error.toString() : `no error token in ${String(value)}`
}

interface Reply { status: number, headers: http2.IncomingHttpHeaders, body: string }

/** One HTTP/2 stream; `feed` writes its body (none: the stream ends with its headers). */
function send (headers: http2.OutgoingHttpHeaders, feed?: (req: http2.ClientHttp2Stream) => void): Promise<Reply> {
  const session = http2.connect(h2proxy.url, { ca: pki.ca.cert, servername: 'localhost' })
  session.on('error', () => {})
  return new Promise<Reply>((resolve, reject) => {
    const req = session.request(headers, { endStream: feed === undefined })
    let status = 0
    let head: http2.IncomingHttpHeaders = {}
    let body = ''
    req.on('response', h => { head = h; status = Number(h[':status']) })
    req.on('data', (d: Buffer) => { body += d.toString() })
    req.on('end', () => resolve({ status, headers: head, body }))
    req.on('error', reject)
    feed?.(req)
  }).finally(() => session.close())
}

/** A body trickled one byte every 200 ms: past the 1 s client_request. */
const trickle = (req: http2.ClientHttp2Stream): void => {
  const timer = setInterval(() => { if (!req.closed && !req.writableEnded) req.write('b') }, 200)
  req.once('close', () => clearInterval(timer))
}

/** HTTP/1.1 parts written with gaps, and the answer until the connection closes. */
function slowly (port: number, parts: string[], gapMs: number): Promise<string> {
  return new Promise(resolve => {
    let text = ''
    const socket = net.connect({ host: '127.0.0.1', port }, async () => {
      for (const part of parts) {
        if (socket.destroyed) break
        socket.write(part)
        await new Promise(resolve => setTimeout(resolve, gapMs))
      }
    })
    socket.on('data', (d: Buffer) => { text += d.toString('latin1') })
    socket.on('error', () => {})
    socket.on('close', () => resolve(text))
  })
}

t.test("HTTP/2's 408 is the edge's page: negotiated, with the route's headers, and status_rewrite on the status line", async t => {
  const reply = await send({ ':method': 'POST', ':path': '/echo', 'content-length': '100', accept: 'application/json' }, trickle)
  t.equal(reply.status, 400, 'status_rewrite 408 → 400 on the wire')
  t.match(String(reply.headers['content-type']), /^application\/json/, 'the representation the client asked for')
  const page = JSON.parse(reply.body) as { status: number, error_name: string, ray_id: string }
  t.equal(page.status, 408, 'the body keeps the edge status')
  t.equal(page.error_name, 'request_timeout')
  t.equal(reply.headers['x-route'], 'on', "the route's response headers")
  t.equal(reply.headers['cf-ray'], `${page.ray_id}-HPX`)
  t.equal(errorOf(reply.headers['proxy-status']), 'http_request_error')
  const line = await h2proxy.waitForLog(l => l.msg === 'access' && l.ray_id === page.ray_id)
  t.equal(line.status, 408, 'the access line says what the edge decided')
  t.equal(line.refused, 'ERR_HTTP_REQUEST_TIMEOUT')

  const html = await send({ ':method': 'POST', ':path': '/echo', 'content-length': '100' }, trickle)
  t.match(String(html.headers['content-type']), /^text\/html/, 'a browser gets the HTML page')
})

t.test('408 over HTTP/1.1 and over HTTP/2: the same Proxy-Status type', async t => {
  const h1 = parseAnswer(await slowly(h1proxy.port, ['POST /echo HTTP/1.1\r\nhost: a.test\r\ncontent-length: 10\r\n\r\n', 'a', 'b', 'c', 'd', 'e', 'f', 'g'], 300), true)
  t.equal(h1.status, 408)
  const h2 = await send({ ':method': 'POST', ':path': '/echo', 'content-length': '100' }, trickle)
  t.equal(h2.status, 400, '(rewritten by the route)')
  t.equal(errorOf(h1.headers['proxy-status']), 'http_request_error')
  t.equal(errorOf(h2.headers['proxy-status']), errorOf(h1.headers['proxy-status']))
})

t.test('CONNECT over HTTP/1.1 and over HTTP/2: 405, declined by policy on both', async t => {
  const h1 = await raw(h1proxy.port, 'CONNECT evil.test:443 HTTP/1.1\r\nhost: evil.test:443\r\n\r\n')
  t.equal(h1.status, 405)
  const h2 = await send({ ':method': 'CONNECT', ':authority': 'evil.test:443' })
  t.equal(h2.status, 405)
  t.equal(errorOf(h1.headers['proxy-status']), 'http_request_denied')
  t.equal(errorOf(h2.headers['proxy-status']), 'http_request_denied')
  t.equal(h2.headers.allow, h1.headers.allow)
})
