// What one attempt decides and records, alone: an Attempt run by hand on a real
// Exchange (a loopback HTTP server's request, its ServerResponse as the sink), against
// real loopback origins, with no proxy loop around it. Its outcome is what the loop reads:
// how far it got, whether request bytes left, whether the status went out, its timings,
// and the origin's in-flight count, which must come back to 0 however it ended.

import http from 'node:http'
import net from 'node:net'
import { Writable } from 'node:stream'
import t, { type Test } from 'tap'
import { Client } from 'undici'
import { resolve, validate } from '../../src/config/load.js'
import { Attempt } from '../../src/edge/attempt.js'
import { ClientConnection } from '../../src/edge/client-connection.js'
import { clientFacts } from '../../src/edge/client-ip.js'
import { linkOf } from '../../src/edge/client-link.js'
import { Exchange } from '../../src/edge/exchange.js'
import { splitTarget } from '../../src/edge/router.js'
import { EdgeRuntime } from '../../src/edge/runtime.js'
import { ResponseSink, SocketSink } from '../../src/edge/sink.js'
import { refusedOrigin } from '../../src/lab/faults.js'
import { createLogger } from '../../src/log/log.js'
import type { PoolMember } from '../../src/origin/pool.js'
import { classify } from '../../src/status/classify.js'
import { dialErrorIn } from '../../src/status/errors.js'
import { scriptedOrigin } from '../origins.js'

const quiet = createLogger('silent', 'json', new Writable({ write (_c, _e, cb) { cb() } }))
const ignore = { run: () => {}, abandon: () => {} }

/**
 * A loopback server whose every request (and upgrade) is one Exchange with one Attempt at
 * the only origin of `pool`; `attempts` resolves them in arrival order, once each is over.
 */
async function harness (t: Test, pool: Record<string, unknown>): Promise<{ url: string, port: number, member: PoolMember, next: () => Promise<Attempt> }> {
  const config = resolve(validate({ pools: [{ name: 'web', ...pool }], routes: [{ pool: 'web' }] }), false)
  const edge = new EdgeRuntime(config.edge, quiet, {})
  const route = edge.state.routes[0] as NonNullable<(typeof edge.state.routes)[0]>
  const member = route.pool.members[0] as PoolMember
  const done: Attempt[] = []
  const waiting: Array<(a: Attempt) => void> = []
  const settled = (a: Attempt): void => { const w = waiting.shift(); if (w === undefined) done.push(a); else w(a) }
  const start = (req: http.IncomingMessage, sink: ResponseSink | SocketSink, head: Buffer | null): Attempt => {
    const connection = ClientConnection.of(req.socket, true, 8, ignore)
    const exchange = new Exchange('0123456789abcdef', req, sink, clientFacts(req, null, linkOf(req.socket)), connection, splitTarget(req.url ?? '/'), null)
    if (head !== null) {
      exchange.upgradeRequested('websocket', head)
      exchange.forwardUpgrade()
    }
    const attempt = new Attempt(exchange.routed(route), member, 1)
    exchange.attempting(attempt)
    return attempt
  }
  const server = http.createServer((req, res) => {
    void start(req, new ResponseSink(res, null), null).run().then(a => {
      // A failed attempt answers nobody: the proxy loop would; here the harness does.
      if (!a.ok && !res.headersSent) res.writeHead(599).end()
      settled(a)
    })
  })
  server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
    void start(req, new SocketSink(socket), head).run().then(a => {
      if (!a.ok) socket.destroy()
      settled(a)
    })
  })
  await new Promise<void>(resolve => server.listen({ host: '127.0.0.1', port: 0 }, resolve))
  t.teardown(() => { edge.close(); server.closeAllConnections(); server.close() })
  const port = (server.address() as net.AddressInfo).port
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    member,
    next: () => { const a = done.shift(); return a !== undefined ? Promise.resolve(a) : new Promise(resolve => waiting.push(resolve)) }
  }
}

const ok = (body: string): string => `HTTP/1.1 200 OK\r\ncontent-length: ${body.length}\r\nconnection: keep-alive\r\n\r\n${body}`

t.test('a refused origin: the attempt ends while dialling, nothing sent, nothing answered', async t => {
  const dead = await refusedOrigin()
  const h = await harness(t, { origins: [dead.url] })
  const client = new Client(h.url)
  t.teardown(() => client.close())
  const res = await client.request({ path: '/', method: 'GET' })
  await res.body.text()
  const a = await h.next()
  t.match(a, { ok: false, phase: 'connect', requestSent: false, headersSent: false, fresh: false, originStatus: 0, connectedMs: null, sentMs: null, ttfbMs: null })
  t.not(dialErrorIn(a.error), null, 'its error is a dial error (what makes it safe to try elsewhere)')
  t.equal(classify(a.error, a.phase).status, 521)
  t.equal(h.member.inFlight, 0, 'the origin\'s in-flight count is back to 0')
})

t.test('an answering origin: phases in order, timings from arrival, and the idle connection reused next time', async t => {
  let inFlightWhileAsked = -1
  let h: Awaited<ReturnType<typeof harness>> | null = null
  const origin = await scriptedOrigin((req, socket) => {
    inFlightWhileAsked = (h as NonNullable<typeof h>).member.inFlight
    socket.write(ok(`answer ${req.url}`))
  })
  h = await harness(t, { origins: [origin.url] })
  const client = new Client(h.url)
  t.teardown(async () => { await client.close(); await origin.close() })

  const first = await client.request({ path: '/a', method: 'GET' })
  t.equal(await first.body.text(), 'answer /a')
  const a = await h.next()
  t.match(a, { ok: true, error: null, phase: 'body', requestSent: true, headersSent: true, fresh: true, originStatus: 200 })
  t.equal(inFlightWhileAsked, 1, 'in flight once while the origin held it')
  t.equal(h.member.inFlight, 0, 'and not after')
  const { connectedMs, sentMs, ttfbMs } = a
  t.ok(connectedMs !== null && sentMs !== null && ttfbMs !== null && connectedMs <= sentMs && sentMs <= ttfbMs,
    `connected ${String(connectedMs)} ≤ sent ${String(sentMs)} ≤ first byte ${String(ttfbMs)} ms`)

  const second = await client.request({ path: '/b', method: 'GET' })
  t.equal(await second.body.text(), 'answer /b')
  const b = await h.next()
  t.match(b, { ok: true, fresh: false }, 'the same client connection\'s idle origin connection: not dialled, no dial timings of its own')
  t.equal(origin.connections(), 1)
})

t.test('an origin that says nothing: a response timeout, after the request was sent', async t => {
  const origin = await scriptedOrigin(() => {})
  const h = await harness(t, { origins: [origin.url], response_timeout: '200ms' })
  const client = new Client(h.url)
  t.teardown(async () => { await client.close(); await origin.close() })
  const res = await client.request({ path: '/', method: 'GET' })
  t.equal(res.statusCode, 599)
  await res.body.text()
  const a = await h.next()
  t.match(a, { ok: false, phase: 'response', requestSent: true, headersSent: false, fresh: true, originStatus: 0, ttfbMs: null })
  t.equal((a.error as { code?: string }).code, 'HPX_ERR_RESPONSE_TIMEOUT')
  t.equal(classify(a.error, a.phase).status, 524)
  t.equal(h.member.inFlight, 0)
})

t.test('an origin that closes after its headers: the status never went out, so the edge may still answer', async t => {
  const origin = await scriptedOrigin((_req, socket) => {
    socket.write('HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n')
    setTimeout(() => socket.destroy(), 20)
  })
  const h = await harness(t, { origins: [origin.url] })
  const client = new Client(h.url)
  t.teardown(async () => { await client.close(); await origin.close() })
  const res = await client.request({ path: '/', method: 'GET' })
  t.equal(res.statusCode, 599, 'the harness answered: the attempt had not')
  await res.body.text()
  const a = await h.next()
  t.match(a, { ok: false, phase: 'response', requestSent: true, headersSent: false, originStatus: 200 })
  t.equal(classify(a.error, a.phase).status, 520)
  t.equal(h.member.inFlight, 0)
})

t.test('an upgrade: in flight once, from the attempt until its tunnel closes', async t => {
  const origin = await scriptedOrigin((_req, socket) => {
    socket.write('HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\n')
    socket.on('data', (d: Buffer) => { if (d.toString().startsWith('ping')) socket.write('pong') })
  })
  const h = await harness(t, { origins: [origin.url] })
  t.teardown(() => origin.close())
  const socket = net.connect(h.port, '127.0.0.1')
  socket.write('GET /ws HTTP/1.1\r\nhost: example.test\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\n')
  let got = ''
  const pong = new Promise<void>(resolve => socket.on('data', (d: Buffer) => {
    got += d.toString('latin1')
    if (got.includes('\r\n\r\n') && !got.includes('pong')) socket.write('ping')
    if (got.includes('pong')) resolve()
  }))
  const a = await h.next()
  t.match(a, { ok: true, headersSent: true, originStatus: 101, requestSent: true })
  await pong
  t.match(got, /^HTTP\/1\.1 101 /, 'the client got the 101, then the origin\'s bytes')
  t.equal(h.member.inFlight, 1, 'the attempt is over, its tunnel still counts: once')
  const closed = new Promise(resolve => socket.once('close', resolve))
  socket.destroy()
  await closed
  // The tunnel's close runs on the edge's side of the socket: wait for it (up to 5 s).
  for (let i = 0; i < 500 && h.member.inFlight !== 0; i++) await new Promise(resolve => setTimeout(resolve, 10))
  t.equal(h.member.inFlight, 0, 'and back to 0 when the tunnel closed')
})
