// Traces: a real OTLP/HTTP receiver process (otlp-receiver.mjs) decodes what the edge
// exports with OpenTelemetry's own protobuf definitions, and the spans are checked against
// the access line, the failure line, the page and what the origin received.

import { createHash } from 'node:crypto'
import { once } from 'node:events'
import http from 'node:http'
import { createRequire } from 'node:module'
import net from 'node:net'
import type { AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { refusedOrigin, synDropOrigin } from '../../src/lab/faults.js'
import { tlsOrigin } from '../../src/lab/tls-faults.js'
import { createMetrics } from '../../src/admin/metrics.js'
import { accessFor, failureFor, get, rayOf, startProxy, type Got, type TestProxy } from '../helpers.js'
import { oneOfTwo, shown, timed, type Timed } from '../timing.js'
import { CLIENT, SERVER, ofTrace, startReceiver, type ReceivedSpan, type Receiver } from '../otlp.js'
import { start } from '../cli-process.js'
import { h2request, makePki } from '../tls-support.js'

/** An origin that answers with the traceparent it received, and WebSocket upgrades. */
async function traceOrigin (): Promise<{ url: string, arrived: (path: string) => Promise<void>, close: () => Promise<void> }> {
  const server = http.createServer((req, res) => {
    server.emit(`arrived ${String(req.url)}`)
    // /slow: the answer comes after a while (a client may leave first).
    if (req.url === '/slow') { const timer = setTimeout(() => res.end('late'), 2000); res.once('close', () => clearTimeout(timer)); return }
    res.setHeader('content-type', 'application/json')
    res.end(JSON.stringify({ traceparent: req.headers.traceparent ?? null, tracestate: req.headers.tracestate ?? null }))
  })
  server.on('upgrade', (req, socket: net.Socket) => {
    const accept = createHash('sha1').update(String(req.headers['sec-websocket-key']) + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64')
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: ${accept}\r\nx-origin-traceparent: ${String(req.headers.traceparent)}\r\n\r\n`)
    socket.on('data', d => socket.write(d))
    // A WebSocket server closes when its client does.
    socket.on('end', () => socket.end())
    socket.on('error', () => {})
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    /** Resolves when a request for this path next reaches the origin. */
    arrived: async path => { await once(server, `arrived ${path}`) },
    close: () => new Promise(resolve => { server.closeAllConnections(); server.close(() => resolve()) })
  }
}

const receiver = await startReceiver()
t.teardown(() => receiver.close())
const origin = await traceOrigin()
t.teardown(() => origin.close())

const tracing = (r: Receiver, extra: Record<string, unknown> = {}): Record<string, unknown> =>
  ({ enabled: true, endpoint: r.url, ...extra })

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-0[01]$/

async function proxyWith (t: Test, raw: Record<string, unknown>): Promise<TestProxy> {
  const proxy = await startProxy(raw)
  t.teardown(() => proxy.close())
  return proxy
}

/** The server span of a trace and its client spans, in attempt order, once all arrived. */
async function traceOf (r: Receiver, traceId: string, clients: number): Promise<{ server: ReceivedSpan, attempts: ReceivedSpan[] }> {
  const spans = ofTrace(await r.waitFor(all => {
    const mine = ofTrace(all, traceId)
    return mine.some(s => s.kind === SERVER) && mine.filter(s => s.kind === CLIENT).length >= clients
  }), traceId)
  const server = spans.find(s => s.kind === SERVER) as ReceivedSpan
  const attempts = spans.filter(s => s.kind === CLIENT).sort((a, b) => Number(a.attributes['highproxy.attempt']) - Number(b.attributes['highproxy.attempt']))
  return { server, attempts }
}

t.test('a healthy request without a traceparent starts a trace: server span, client span, the origin sees its traceparent', async t => {
  const proxy = await proxyWith(t, { tracing: tracing(receiver), routes: [{ name: 'web', origin: origin.url }] })
  const res = await get(`${proxy.url}/hello/world?secret=1`, { headers: { 'user-agent': 'trace-test/1' } })
  t.equal(res.status, 200)
  const sent = JSON.parse(res.body) as { traceparent: string }
  const [, traceId, parentId] = TRACEPARENT.exec(sent.traceparent) ?? []
  t.ok(traceId, `the origin got a traceparent: ${sent.traceparent}`)
  const access = await proxy.waitForLog(accessFor(rayOf(res)))
  await proxy.tracing?.flush()
  const { server, attempts } = await traceOf(receiver, traceId as string, 1)
  const client = attempts[0] as ReceivedSpan
  t.equal(server.name, 'GET web', 'named {method} {route name}, never the raw path')
  t.equal(server.parentSpanId, '', 'a root span')
  t.equal(client.parentSpanId, server.spanId, 'the client span is the server span\'s child')
  t.equal(parentId, client.spanId, "the origin's traceparent names the attempt's client span")
  t.equal(access.trace_id, traceId, 'the access line carries the trace id')
  t.equal(access.span_id, server.spanId, '… and the server span id')
  t.equal(access.trace_flags, '01')
  t.match(server.attributes, {
    'http.request.method': 'GET',
    'url.path': '/hello/world',
    'url.scheme': 'http',
    'server.address': '127.0.0.1',
    'client.address': '127.0.0.1',
    'network.protocol.version': '1.1',
    'user_agent.original': 'trace-test/1',
    'http.response.status_code': 200,
    'highproxy.ray_id': rayOf(res)
  })
  t.notOk('highproxy.edge_status' in server.attributes, 'no edge status: the origin answered')
  t.notOk('url.query' in server.attributes, 'the query is not recorded')
  t.equal(server.status.code, 0)
  t.equal(client.name, 'GET')
  t.match(client.attributes, { 'http.request.method': 'GET', 'server.address': '127.0.0.1', 'server.port': Number(new URL(origin.url).port), 'network.peer.address': '127.0.0.1', 'http.response.status_code': 200, 'highproxy.pool': 'web' })
  t.notOk('http.request.resend_count' in client.attributes, 'a first attempt is no resend')
  t.same(client.events.map(e => e.name), ['connect', 'first byte'], 'phase events of a fresh connection to an IP origin')
  t.equal(server.resource['service.name'], 'highproxy', 'default service name')
  t.equal(server.encoding, 'protobuf', 'http/protobuf by default')
  t.notOk(sent.traceparent.includes('undefined'))
})

t.test("an incoming traceparent is continued; with trust_incoming false a new trace is started and linked", async t => {
  const incomingTrace = '4bf92f3577b34da6a3ce929d0e0e4736'
  const incomingSpan = '00f067aa0ba902b7'
  const headers = { traceparent: `00-${incomingTrace}-${incomingSpan}-01`, tracestate: 'vendor=abc' }
  const trusted = await proxyWith(t, { tracing: tracing(receiver), routes: [{ name: 'web', origin: origin.url }] })
  const res = await get(`${trusted.url}/a`, { headers })
  const sent = JSON.parse(res.body) as { traceparent: string, tracestate: string }
  t.equal(TRACEPARENT.exec(sent.traceparent)?.[1], incomingTrace, 'the caller\'s trace id goes on to the origin')
  t.equal(sent.tracestate, 'vendor=abc', 'with its tracestate')
  t.not(TRACEPARENT.exec(sent.traceparent)?.[2], incomingSpan, 'but the parent is the edge\'s span, not the caller\'s')
  await trusted.tracing?.flush()
  const { server } = await traceOf(receiver, incomingTrace, 1)
  t.equal(server.parentSpanId, incomingSpan, 'the server span continues the caller\'s span')

  const untrusted = await proxyWith(t, { tracing: tracing(receiver, { trust_incoming: false }), routes: [{ name: 'web', origin: origin.url }] })
  const res2 = await get(`${untrusted.url}/b`, { headers })
  const sent2 = JSON.parse(res2.body) as { traceparent: string, tracestate: string | null }
  const fresh = TRACEPARENT.exec(sent2.traceparent)?.[1] as string
  t.not(fresh, incomingTrace, 'a new trace')
  t.equal(sent2.tracestate, null, "the caller's tracestate is not forwarded")
  await untrusted.tracing?.flush()
  const linked = await traceOf(receiver, fresh, 1)
  t.equal(linked.server.parentSpanId, '', 'a root span')
  t.same(linked.server.links, [{ traceId: incomingTrace, spanId: incomingSpan }], 'linked to the caller\'s span')

  const off = await proxyWith(t, { routes: [{ name: 'web', origin: origin.url }] })
  const res3 = await get(`${off.url}/c`, { headers })
  t.same(JSON.parse(res3.body), headers, 'tracing off: the caller\'s traceparent and tracestate pass through untouched')
  const access = await off.waitForLog(accessFor(rayOf(res3)))
  t.notOk('trace_id' in access, 'and the access line has no trace fields')
})

t.test('521 failed over to a second origin: two client spans, the first connection_refused, the second a resend', async t => {
  const refused = await refusedOrigin()
  t.teardown(() => refused.close())
  const proxy = await proxyWith(t, {
    tracing: tracing(receiver),
    pools: [{ name: 'two', origins: [refused.url, origin.url] }],
    routes: [{ name: 'pool-route', pool: 'two' }]
  })
  // Round robin: one of two requests starts at the refused origin.
  let res = await get(`${proxy.url}/x`, { fresh: true })
  let failure = proxy.logs.find(failureFor(rayOf(res)))
  if (failure === undefined) { res = await get(`${proxy.url}/x`, { fresh: true }); failure = await proxy.waitForLog(failureFor(rayOf(res))) }
  t.equal(res.status, 200)
  const traceId = TRACEPARENT.exec((JSON.parse(res.body) as { traceparent: string }).traceparent)?.[1] as string
  await proxy.tracing?.flush()
  const { server, attempts } = await traceOf(receiver, traceId, 2)
  t.equal(attempts.length, 2)
  const [first, second] = attempts as [ReceivedSpan, ReceivedSpan]
  t.match(first.attributes, { 'error.type': 'connection_refused', 'highproxy.edge_status': 521, 'highproxy.phase': 'connect', 'server.port': Number(new URL(refused.url).port) })
  t.notOk('http.response.status_code' in first.attributes, 'no status: none came back')
  t.equal(first.status.code, 2, 'ERROR')
  t.equal(second.attributes['http.request.resend_count'], 1)
  t.equal(second.attributes['http.response.status_code'], 200)
  t.equal(second.status.code, 0)
  t.equal(server.status.code, 0, 'the request succeeded')
  t.equal(failure.trace_id, traceId, 'the failure line carries the trace id')
  t.equal(failure.span_id, first.spanId, "… and the failed attempt's span id")
})

t.test('522: connection_timeout on the attempt with the connect duration; the page, the line and the span share the trace id', async t => {
  const drop = await synDropOrigin()
  t.teardown(() => drop.close())
  const proxy = await proxyWith(t, { tracing: tracing(receiver), routes: [{ name: 'slow', origin: drop.url, connect_timeout: '300ms' }] })
  const res = await get(`${proxy.url}/`, { headers: { accept: 'application/json' } })
  t.equal(res.status, 522)
  const body = JSON.parse(res.body) as { trace_id: string, ray_id: string }
  const access = await proxy.waitForLog(accessFor(rayOf(res)))
  const failure = await proxy.waitForLog(failureFor(rayOf(res)))
  t.match(body.trace_id, /^[0-9a-f]{32}$/, 'the JSON body has the trace id')
  t.equal(access.trace_id, body.trace_id, 'the access line has the same')
  t.equal(failure.trace_id, body.trace_id, 'and the failure line')
  await proxy.tracing?.flush()
  const { server, attempts } = await traceOf(receiver, body.trace_id, 1)
  const client = attempts[0] as ReceivedSpan
  t.equal(client.attributes['error.type'], 'connection_timeout')
  const connectMs = Number(client.attributes['highproxy.connect_ms'])
  t.ok(connectMs >= 290 && connectMs < 2000, `the connect phase's duration: ${connectMs} ms`)
  t.match(client.events.find(e => e.name === 'connect')?.attributes, { 'highproxy.duration_ms': connectMs })
  t.equal(client.status.code, 2)
  t.equal(server.status.code, 2, 'the server span is ERROR for a 5xx edge answer')
  t.match(server.attributes, { 'error.type': 'connection_timeout', 'highproxy.edge_status': 522, 'http.response.status_code': 522 })
  t.equal(failure.span_id, client.spanId)

  const html = await get(`${proxy.url}/`, { headers: { accept: 'text/html' } })
  const htmlAccess = await proxy.waitForLog(accessFor(rayOf(html)))
  t.match(html.body, `Trace ID: <code>${String(htmlAccess.trace_id)}</code>`, "the HTML page's owner part has it")
})

t.test('526: the attempt is typed tls_certificate_error', async t => {
  const tlsBad = await tlsOrigin()
  t.teardown(() => tlsBad.close())
  const proxy = await proxyWith(t, { tracing: tracing(receiver), routes: [{ name: 'tls', origin: tlsBad.url }] })
  const res = await get(`${proxy.url}/`, { headers: { accept: 'application/json' } })
  t.equal(res.status, 526)
  const { trace_id: traceId } = JSON.parse(res.body) as { trace_id: string }
  await proxy.tracing?.flush()
  const { server, attempts } = await traceOf(receiver, traceId, 1)
  t.match((attempts[0] as ReceivedSpan).attributes, { 'error.type': 'tls_certificate_error', 'highproxy.edge_status': 526 })
  t.ok((attempts[0] as ReceivedSpan).events.some(e => e.name === 'tls'), 'a tls phase event')
  t.equal(server.attributes['error.type'], 'tls_certificate_error')
})

t.test('a 404 (no route) is not an error on the server span', async t => {
  const proxy = await proxyWith(t, { tracing: tracing(receiver), routes: [{ name: 'web', host: 'only.example', origin: origin.url }] })
  const res = await get(`${proxy.url}/nothing`)
  t.equal(res.status, 404)
  const access = await proxy.waitForLog(accessFor(rayOf(res)))
  await proxy.tracing?.flush()
  const spans = ofTrace(await receiver.waitFor(all => ofTrace(all, String(access.trace_id)).length > 0), String(access.trace_id))
  t.equal(spans.length, 1, 'a server span only')
  t.equal(spans[0]?.name, 'GET')
  t.equal(spans[0]?.status.code, 0, '4xx is not a server error')
  t.equal(spans[0]?.attributes['highproxy.edge_status'], 404)
})

t.test('a client that leaves: the attempt is client_aborted, the server span has no status and no error', async t => {
  const proxy = await proxyWith(t, { tracing: tracing(receiver), routes: [{ name: 'web', origin: origin.url }] })
  const socket = net.connect(proxy.port, '127.0.0.1')
  socket.on('error', () => {})
  const reached = origin.arrived('/slow')
  socket.write('GET /slow HTTP/1.1\r\nhost: a.test\r\n\r\n')
  // The origin holds its answer 2 s; the client leaves once the request reached it.
  await reached
  socket.destroy()
  const left = await proxy.waitForLog(l => l.msg === 'access' && l.path === '/slow')
  t.equal(left.status, 499)
  await proxy.tracing?.flush()
  const { server, attempts } = await traceOf(receiver, String(left.trace_id), 1)
  t.equal((attempts[0] as ReceivedSpan).attributes['error.type'], 'client_aborted')
  t.notOk('http.response.status_code' in server.attributes, 'no status went out')
  t.equal(server.status.code, 0, 'a client that left is not the server\'s error')
})

t.test('Always online: a stale answer\'s server span says highproxy.served=stale', async t => {
  let up = true
  const cached = http.createServer((req, res) => {
    if (!up) { req.socket.destroy(); return }
    res.writeHead(200, { 'cache-control': 'max-age=60', 'content-type': 'text/plain' }).end('copy')
  })
  await new Promise<void>(resolve => cached.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { cached.closeAllConnections(); cached.close() })
  const proxy = await proxyWith(t, { tracing: tracing(receiver), routes: [{ name: 'aol', origin: `http://127.0.0.1:${(cached.address() as AddressInfo).port}`, stale_if_error: {} }] })
  t.equal((await get(`${proxy.url}/p`)).status, 200)
  up = false
  const res = await get(`${proxy.url}/p`, { fresh: true })
  t.equal(res.body, 'copy', 'the stored copy answered')
  const access = await proxy.waitForLog(accessFor(rayOf(res)))
  await proxy.tracing?.flush()
  const { server, attempts } = await traceOf(receiver, String(access.trace_id), 1)
  t.match(server.attributes, { 'highproxy.served': 'stale', 'http.response.status_code': 200, 'highproxy.edge_status': 520 })
  t.equal(server.status.code, 0, 'the client got a good answer')
  t.equal((attempts[0] as ReceivedSpan).status.code, 2, 'the attempt failed')
})

t.test('HTTP/2: the server span says protocol 2', async t => {
  const pki = await makePki()
  t.teardown(() => pki.remove())
  const cert = await pki.issue('edge', ['localhost'])
  const proxy = await proxyWith(t, { tracing: tracing(receiver), listen: { tls: { cert: cert.certFile, key: cert.keyFile } }, routes: [{ name: 'h2', origin: origin.url }] })
  const answer = await h2request(`https://localhost:${proxy.port}`, pki.ca.cert, { ':path': '/over-h2' })
  t.equal(answer.status, 200)
  const body = answer.body
  const traceId = TRACEPARENT.exec((JSON.parse(body) as { traceparent: string }).traceparent)?.[1] as string
  await proxy.tracing?.flush()
  const { server, attempts } = await traceOf(receiver, traceId, 1)
  t.match(server.attributes, { 'network.protocol.version': '2', 'url.scheme': 'https', 'url.path': '/over-h2', 'http.response.status_code': 200 })
  t.equal(attempts.length, 1)
})

t.test('a WebSocket upgrade: the 101 on both spans, the origin gets the traceparent', async t => {
  const proxy = await proxyWith(t, { tracing: tracing(receiver), routes: [{ name: 'ws', origin: origin.url }] })
  const socket = net.connect(proxy.port, '127.0.0.1')
  socket.write('GET /chat HTTP/1.1\r\nhost: chat.test\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n\r\n')
  const head = await new Promise<string>(resolve => {
    let text = ''
    socket.on('data', (d: Buffer) => { text += d.toString(); if (text.includes('\r\n\r\n')) resolve(text) })
  })
  t.match(head, /^HTTP\/1.1 101 /)
  const traceId = TRACEPARENT.exec(/x-origin-traceparent: (\S+)/.exec(head)?.[1] ?? '')?.[1] as string
  t.ok(traceId, 'the origin got a traceparent with the upgrade')
  const echoed = new Promise<string>(resolve => socket.once('data', (d: Buffer) => resolve(d.toString())))
  socket.write('ping')
  t.equal(await echoed, 'ping', 'bytes flow through the tunnel')
  socket.destroy()
  await proxy.waitForLog(l => l.msg === 'access' && l.trace_id === traceId).catch(err => { t.comment(JSON.stringify(proxy.logs)); throw err })
  await proxy.tracing?.flush()
  const { server, attempts } = await traceOf(receiver, traceId, 1)
  t.equal(server.attributes['http.response.status_code'], 101)
  t.equal(server.attributes['highproxy.upgrade'], 'websocket')
  t.equal((attempts[0] as ReceivedSpan).attributes['http.response.status_code'], 101)
})

t.test('sampling: ratio 0 exports nothing and shows no trace id on the page; ratio 1 exports every request', async t => {
  const drop = await refusedOrigin()
  t.teardown(() => drop.close())
  const none = await proxyWith(t, { tracing: tracing(receiver, { sampler: 'traceidratio', sampler_arg: 0 }), routes: [{ name: 'r0', origin: drop.url }] })
  const ids: string[] = []
  for (let i = 0; i < 5; i++) {
    const res = await get(`${none.url}/`, { headers: { accept: 'application/json' } })
    t.equal(res.status, 521)
    t.notOk('trace_id' in (JSON.parse(res.body) as object), 'no trace id on the page of an unsampled request')
    const access = await none.waitForLog(accessFor(rayOf(res)))
    t.equal(access.trace_flags, '00', 'the line says it was not sampled')
    ids.push(String(access.trace_id))
  }
  await none.tracing?.flush()
  t.same(none.tracing?.counts(), { exported: 0, droppedQueueFull: 0, droppedExportFailed: 0 }, 'nothing was exported')
  const all = await receiver.spans()
  t.equal(all.filter(s => ids.includes(s.traceId)).length, 0, 'the receiver has none of them')

  const every = await proxyWith(t, { tracing: tracing(receiver, { sampler: 'traceidratio', sampler_arg: 1 }), routes: [{ name: 'r1', origin: origin.url }] })
  const traced: string[] = []
  for (let i = 0; i < 5; i++) {
    const res = await get(`${every.url}/`)
    traced.push(TRACEPARENT.exec((JSON.parse(res.body) as { traceparent: string }).traceparent)?.[1] as string)
  }
  await every.tracing?.flush()
  const got = await receiver.waitFor(spans => traced.every(id => spans.some(s => s.traceId === id && s.kind === SERVER)))
  t.equal(traced.filter(id => got.some(s => s.traceId === id)).length, 5, 'all five traces arrived')
})

t.test('a receiver that is down or slow never delays or fails a request; the drops are counted', async t => {
  const gone = await refusedOrigin()
  t.teardown(() => gone.close())
  const down = await proxyWith(t, { tracing: { enabled: true, endpoint: gone.url }, routes: [{ name: 'web', origin: origin.url }] })
  // Within a second (plus what this process's own loop lost), once of two tries: test/timing.ts.
  const atOnce = (x: Timed<Got>): boolean => x.ms < 1000 + x.late
  const answered = async (url: string, what: string): Promise<void> => {
    const once = (): Promise<Timed<Got>> => timed(() => get(url))
    const tries = await oneOfTwo(await once(), once, atOnce)
    t.ok(tries.every(x => x.status === 200), `200 with the receiver ${what}`)
    t.ok(tries.some(atOnce), `answered at once with the receiver ${what}: ${shown(tries)}`)
  }
  for (let i = 0; i < 5; i++) await answered(`${down.url}/`, 'down')
  await down.tracing?.flush()
  t.ok((down.tracing?.counts().droppedExportFailed ?? 0) >= 10, `failed exports counted: ${JSON.stringify(down.tracing?.counts())}`)

  const slowReceiver = await startReceiver(['--delay-ms', '5000'])
  t.teardown(() => slowReceiver.close())
  const slow = await proxyWith(t, { tracing: tracing(slowReceiver, { max_queue_size: 4 }), routes: [{ name: 'web', origin: origin.url }] })
  // The first export is held for 5 s; everything after it waits in the queue of 4.
  const first = await get(`${slow.url}/`)
  t.equal(first.status, 200)
  void slow.tracing?.flush()
  for (let i = 0; i < 10; i++) await answered(`${slow.url}/`, 'slow')
  const counts = slow.tracing?.counts()
  t.ok((counts?.droppedQueueFull ?? 0) >= 10, `queue-full drops counted: ${JSON.stringify(counts)}`)
  const metrics = createMetrics({ originHealth: () => [], spans: () => slow.tracing?.counts() ?? { exported: 0, droppedQueueFull: 0, droppedExportFailed: 0 } })
  const text = await metrics.registry.metrics()
  t.match(text, new RegExp(`highproxy_trace_spans_dropped_total\\{reason="queue_full"\\} ${counts?.droppedQueueFull ?? -1}\\n`), 'the metric says so')
})

t.test('--workers 2 with the OTEL_* variables: every worker exports (http/json), the resource and headers as set', async t => {
  const json = await startReceiver()
  t.teardown(() => json.close())
  const p = start(['--origin', origin.url, '--workers', '2'], {
    OTEL_TRACES_EXPORTER: 'otlp',
    OTEL_EXPORTER_OTLP_ENDPOINT: json.url,
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
    OTEL_EXPORTER_OTLP_HEADERS: 'x-test-key=s3cret%20value',
    OTEL_SERVICE_NAME: 'edge-test',
    OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment.name=ci',
    OTEL_BSP_SCHEDULE_DELAY: '100'
  })
  t.teardown(async () => { p.child.kill('SIGTERM'); await p.exited })
  const primary = await p.waitFor(l => l.msg === 'highproxy primary started')
  const pids = new Set<number>()
  await p.waitFor(l => { if (l.msg === 'highproxy listening') pids.add(Number(l.pid)); return pids.size === 2 }, 15_000)
  const listen = String(p.logs.find(l => l.msg === 'highproxy listening')?.listen)
  const traceIds: string[] = []
  for (let i = 0; i < 12; i++) {
    const res = await get(`${listen}/w${i}`, { fresh: true })
    traceIds.push(TRACEPARENT.exec((JSON.parse(res.body) as { traceparent: string }).traceparent)?.[1] as string)
  }
  const spans = await json.waitFor(all => traceIds.every(id => all.some(s => s.traceId === id && s.kind === SERVER)), 15_000)
  const exporters = new Set(spans.map(s => s.resource['process.pid']))
  t.ok(exporters.size === 2 && [...exporters].every(pid => pids.has(Number(pid))), `both workers exported: ${[...exporters].join(', ')}`)
  const one = spans[0] as ReceivedSpan
  t.equal(one.encoding, 'json')
  t.equal(one.resource['service.name'], 'edge-test')
  t.equal(one.resource['deployment.environment.name'], 'ci')
  t.equal(one.header, 's3cret value', 'OTEL_EXPORTER_OTLP_HEADERS sent, percent-decoded')
  // A worker counts a batch once the receiver's answer is back, after the receiver has the
  // spans: the scrape is repeated until the sum catches up (or 5 s pass).
  let exported = -1
  let unanswered = -1
  for (const deadline = Date.now() + 5000; exported < 24 && Date.now() < deadline; await sleep(50)) {
    const metrics = await (await fetch(`${String(primary.admin)}/metrics`)).text()
    exported = Number(/^highproxy_trace_spans_exported_total (\d+)/m.exec(metrics)?.[1] ?? -1)
    unanswered = Number(/^highproxy_cluster_workers_unanswered (\d+)/m.exec(metrics)?.[1] ?? -1)
  }
  t.ok(exported >= 24, `the primary's /metrics sums the workers' exported spans: ${exported}`)
  t.equal(unanswered, 0, 'both workers answered that scrape')
})

t.test('the CLI with OTEL_* set: the admin ray lookup returns the trace ids of the failure', async t => {
  const refused = await refusedOrigin()
  t.teardown(() => refused.close())
  const p = start(['--origin', refused.url], { OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_BSP_SCHEDULE_DELAY: '100' })
  t.teardown(async () => { p.child.kill('SIGTERM'); await p.exited })
  const up = await p.waitFor(l => l.msg === 'highproxy listening')
  t.match(up.tracing, { url: `${receiver.url}/v1/traces`, protocol: 'http/protobuf', sampler: 'parentbased_always_on' }, 'the start-up line says where spans go')
  const res = await get(`${String(up.listen)}/`, { headers: { accept: 'application/json' } })
  t.equal(res.status, 521)
  const { trace_id: traceId } = JSON.parse(res.body) as { trace_id: string }
  const access = await p.waitFor(l => l.msg === 'access' && l.ray_id === rayOf(res))
  t.equal(access.trace_id, traceId)
  const found = JSON.parse(await (await fetch(`${String(up.admin)}/rays/${rayOf(res)}`)).text()) as { attempts: Array<{ trace_id: string, span_id: string }> }
  t.equal(found.attempts[0]?.trace_id, traceId, '/rays/<id> has the trace id')
  const { attempts } = await traceOf(receiver, traceId, 1)
  t.equal(found.attempts[0]?.span_id, attempts[0]?.spanId, "… and the failed attempt's span id")
})

t.test('spans are exported from a thread of its own: the request thread never loads the exporter, and a SIGTERM sends what is queued', async t => {
  // In this process: spans exported, and no OTLP exporter module among what the thread that
  // serves requests has loaded (it runs in the export thread's own isolate).
  const proxy = await proxyWith(t, { tracing: tracing(receiver), routes: [{ name: 'web', origin: origin.url }] })
  const res = await get(`${proxy.url}/`)
  const traceId = TRACEPARENT.exec((JSON.parse(res.body) as { traceparent: string }).traceparent)?.[1] as string
  await proxy.tracing?.flush()
  await traceOf(receiver, traceId, 1)
  const loaded = Object.keys(createRequire(import.meta.url).cache)
  t.ok(loaded.some(f => f.includes('@opentelemetry/sdk-trace')), 'the SDK is loaded here (the sampler and the spans)')
  t.notOk(loaded.some(f => /@opentelemetry\/(exporter-trace-otlp|otlp-transformer|otlp-exporter-base)/.test(f)), 'no exporter module on the request thread')

  // The CLI with a batch delay of a minute: spans still queued when SIGTERM comes are
  // exported before the process exits (and none can have gone before: the minute is not up).
  const p = start(['--origin', origin.url], { OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_BSP_SCHEDULE_DELAY: '60000' })
  t.teardown(async () => { p.child.kill('SIGKILL'); await p.exited })
  const up = await p.waitFor(l => l.msg === 'highproxy listening')
  const ids: string[] = []
  for (let i = 0; i < 3; i++) {
    const r = await get(`${String(up.listen)}/queued${i}`)
    ids.push(TRACEPARENT.exec((JSON.parse(r.body) as { traceparent: string }).traceparent)?.[1] as string)
  }
  const before = (await receiver.spans()).filter(s => ids.includes(s.traceId)).length
  t.equal(before, 0, 'nothing exported yet: the batch waits for its minute')
  p.child.kill('SIGTERM')
  t.equal(await p.exited, 0)
  const spans = await receiver.waitFor(all => ids.every(id => all.filter(s => s.traceId === id).length === 2), 5000)
  t.equal(spans.filter(s => ids.includes(s.traceId)).length, 6, 'every span of the three requests, sent at shutdown')
})

t.test('bad tracing settings: one line naming the variable, exit 2', async t => {
  const p = start(['--origin', origin.url], { OTEL_TRACES_EXPORTER: 'otlp', OTEL_TRACES_SAMPLER: 'jaeger_remote' })
  let stderr = ''
  p.child.stderr?.on('data', (d: Buffer) => { stderr += d.toString() })
  t.equal(await p.exited, 2)
  t.match(stderr, /^highproxy: config tracing\.sampler \(from OTEL_TRACES_SAMPLER\): expected one of always_on, .*\n$/)
})
