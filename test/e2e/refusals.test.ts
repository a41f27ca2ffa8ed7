// Every way the edge refuses a request, on the wire and in the log: each answer carries
// a ray id, and the access line with that ray id says the status the client got.

import net from 'node:net'
import t from 'tap'
import { refusedOrigin } from '../../src/lab/faults.js'
import { healthyOrigin } from '../../src/lab/healthy-origin.js'
import { startProxy, type TestProxy } from '../helpers.js'
import { raw } from '../raw-client.js'

const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))

/** Writes `parts` with `gapMs` between them; the answer as it came, until the connection closes. */
function slowly (port: number, parts: string[], gapMs: number): Promise<string> {
  return new Promise(resolve => {
    let text = ''
    const socket = net.connect({ host: '127.0.0.1', port }, async () => {
      for (const part of parts) {
        if (socket.destroyed) break
        socket.write(part)
        await sleep(gapMs)
      }
    })
    socket.on('data', d => { text += d.toString('latin1') })
    socket.on('error', () => {})
    socket.on('close', () => resolve(text))
  })
}

interface Case { name: string, status: number, send: (p: TestProxy) => Promise<string> }

const GET = (target: string, extra = ''): string => `GET ${target} HTTP/1.1\r\nhost: a.test\r\n${extra}connection: close\r\n\r\n`
const text = (p: TestProxy, data: string): Promise<string> => raw(p.port, data).then(a => a.text)

const CASES: Case[] = [
  { name: 'smuggling: Content-Length with Transfer-Encoding', status: 400, send: p => text(p, 'POST / HTTP/1.1\r\nhost: a.test\r\ncontent-length: 4\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n') },
  { name: 'dot segment', status: 400, send: p => text(p, GET('/a/../b')) },
  { name: 'invalid Host', status: 400, send: p => text(p, 'GET / HTTP/1.1\r\nhost: a b\r\nconnection: close\r\n\r\n') },
  { name: 'no Host', status: 400, send: p => text(p, 'GET / HTTP/1.1\r\nconnection: close\r\n\r\n') },
  { name: 'two Hosts', status: 400, send: p => text(p, 'GET / HTTP/1.1\r\nhost: a.test\r\nhost: b.test\r\nconnection: close\r\n\r\n') },
  { name: 'a path that is not UTF-8', status: 400, send: p => text(p, GET('/x%ff')) },
  { name: 'no route', status: 404, send: p => text(p, 'GET /x HTTP/1.1\r\nhost: nowhere.test\r\nconnection: close\r\n\r\n') },
  { name: 'CONNECT', status: 405, send: p => text(p, 'CONNECT evil.test:443 HTTP/1.1\r\nhost: evil.test:443\r\n\r\n') },
  { name: 'headers too slow', status: 408, send: p => slowly(p.port, ['GET / HTTP/1.1\r\n', 'host: a.test\r\n', 'x-a: 1\r\n', 'x-b: 2\r\n', 'x-c: 3\r\n'], 200) },
  // Bodies go to a live origin (b.test), so the edge is still reading them when it refuses.
  { name: 'body too slow', status: 408, send: p => slowly(p.port, ['POST /echo HTTP/1.1\r\nhost: b.test\r\ncontent-length: 10\r\n\r\n', 'a', 'b', 'c', 'd', 'e', 'f'], 200) },
  { name: 'declared body too large', status: 413, send: p => text(p, 'POST / HTTP/1.1\r\nhost: a.test\r\ncontent-length: 2000\r\nconnection: close\r\n\r\n') },
  { name: 'chunked body grows too large', status: 413, send: p => text(p, `POST /echo HTTP/1.1\r\nhost: b.test\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n7d0\r\n${'x'.repeat(2000)}\r\n0\r\n\r\n`) },
  { name: 'URL too long', status: 414, send: p => text(p, GET(`/${'x'.repeat(300)}`)) },
  { name: 'Expect: foo', status: 417, send: p => text(p, GET('/', 'expect: foo\r\n')) },
  { name: 'too many headers', status: 431, send: p => text(p, GET('/', Array.from({ length: 30 }, (_, i) => `x-h${i}: 1\r\n`).join(''))) },
  { name: 'header block too large', status: 431, send: p => text(p, GET('/', `x-big: ${'y'.repeat(3000)}\r\n`)) }
]

t.test('each refusal: a ray id on the wire, and its access line says the same status', async t => {
  const refused = await refusedOrigin()
  const live = await healthyOrigin()
  t.teardown(() => live.close())
  const proxy = await startProxy({
    routes: [{ host: 'a.test', origin: refused.url }, { host: 'b.test', origin: live.url }],
    limits: { max_body_size: 1000, max_url_length: 200, max_header_count: 20, max_request_header_size: 2048 },
    timeouts: { client_headers: '500ms', client_request: '700ms' }
  })
  t.teardown(() => proxy.close())
  for (const c of CASES) {
    const answer = await c.send(proxy)
    const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1])
    t.equal(status, c.status, `${c.name}: ${c.status} on the wire`)
    const ray = /cf-ray: ([0-9a-f]{16})-HPX/i.exec(answer)?.[1]
    t.ok(ray !== undefined, `${c.name}: with a ray id`)
    const access = await proxy.waitForLog(l => l.msg === 'access' && l.ray_id === ray, 3000).catch(() => null)
    t.equal(access?.status, c.status, `${c.name}: the access line says ${c.status}`)
    t.ok(typeof access?.refused === 'string', `${c.name}: and which rule refused it (${String(access?.refused)})`)
  }
})

t.test('connection limits answer with a ray id and an access line too', async t => {
  const refused = await refusedOrigin()
  const proxy = await startProxy({ origin: refused.url, limits: { max_connections: 1 } })
  t.teardown(() => proxy.close())
  const holder = net.connect({ host: '127.0.0.1', port: proxy.port })
  await new Promise(resolve => holder.once('connect', resolve))
  t.teardown(() => holder.destroy())
  const answer = await raw(proxy.port, GET('/'))
  t.equal(answer.status, 503)
  const ray = String(answer.headers['cf-ray']).slice(0, 16)
  t.match(ray, /^[0-9a-f]{16}$/)
  t.match(await proxy.waitForLog(l => l.msg === 'access' && l.ray_id === ray), { status: 503, refused: 'max_connections' })
})
