// The edge's answers to a drowning origin, on real sockets with real origin processes:
// the pending-connect cap (SYN-SENT sockets counted with `ss` during a burst, each
// waiting request's 522 at its own deadline, a success freeing the waiters), the retry
// budget (a pool of two dead origins under load), and adaptive concurrency against the
// lab's drowning origin (the excess shed with 503 within queue_timeout).

import { execFile, spawn } from 'node:child_process'
import http from 'node:http'
import http2 from 'node:http2'
import net from 'node:net'
import tls from 'node:tls'
import { performance } from 'node:perf_hooks'
import { promisify } from 'node:util'
import t, { type Test } from 'tap'
import { drowningOrigin, refusedOrigin, synDropOrigin } from '../../src/lab/faults.js'
import { get, rayOf, startProxy, type Got } from '../helpers.js'
import { stallWatch } from '../timing.js'
import { makePki } from '../tls-support.js'
import { request as undiciRequest } from 'undici'

const run = promisify(execFile)

/** Sockets of this machine in SYN-SENT toward that port: the SYNs nobody has answered. */
async function synSent (port: number): Promise<number> {
  const { stdout } = await run('ss', ['-Htn', 'state', 'syn-sent', 'dst', `127.0.0.1:${port}`])
  return stdout.split('\n').filter(l => l.trim() !== '').length
}

/** Samples `synSent` every 20 ms until stopped; the highest count seen. */
function watchSynSent (port: number): { stop: () => Promise<{ max: number, samples: number }> } {
  let max = 0
  let samples = 0
  let on = true
  const loop = (async () => {
    while (on) {
      const n = await synSent(port)
      samples++
      if (n > max) max = n
      await new Promise(resolve => setTimeout(resolve, 20))
    }
  })()
  return { stop: async () => { on = false; await loop; return { max, samples } } }
}

/** A GET on a connection of its own, timed from when it was sent. */
const fresh = (url: string, headers: Record<string, string> = {}): Promise<Got & { sent: number }> => {
  const sent = performance.now()
  return get(url, { fresh: true, headers }).then(g => ({ ...g, sent }))
}

const portOf = (url: string): number => Number(new URL(url).port)

t.test('pending-connect cap: a burst never has more SYNs out than the cap; the rest 522 at their own deadlines, none early', async t => {
  const origin = await synDropOrigin()
  t.teardown(() => origin.close())
  const CONNECT_MS = 1500
  const proxy = await startProxy({
    connections: { max_pending_connects: 4 },
    routes: [{ origin: origin.url, connect_timeout: `${CONNECT_MS}ms` }]
  })
  t.teardown(() => proxy.close())
  const watch = watchSynSent(portOf(origin.url))
  const stall = stallWatch()
  // Two waves: the second arrives while the first still waits, so each has its own deadline.
  const first = Array.from({ length: 8 }, (_, i) => fresh(`${proxy.url}/a${i}`))
  await new Promise(resolve => setTimeout(resolve, 300))
  const second = Array.from({ length: 8 }, (_, i) => fresh(`${proxy.url}/b${i}`))
  const got = await Promise.all([...first, ...second])
  const late = stall()
  const { max, samples } = await watch.stop()
  t.ok(samples >= 10, `ss sampled ${samples} times during the burst`)
  t.ok(max >= 1, `SYNs were out: at most ${max} at once`)
  t.ok(max <= 4, `never more than the cap of 4 SYN-SENT sockets (saw ${max})`)
  t.same(got.map(g => g.status), got.map(() => 522), 'every request 522')
  for (const g of got) {
    t.ok(g.ms >= CONNECT_MS, `not early: ${g.ms.toFixed(1)} ms after it was sent`)
    t.ok(g.ms <= CONNECT_MS + 400 + late, `at its own deadline: ${g.ms.toFixed(1)} ms (loop stall ${late.toFixed(0)} ms)`)
  }
  const waited = got.filter(g => /waited behind \d+ unanswered connects/.test(g.headers['proxy-status'] ?? ''))
  t.equal(waited.length, 12, 'twelve never sent a SYN, and Proxy-Status says what they waited behind')
  t.match(waited[0]?.headers['proxy-status'], /error=connection_timeout/)
  t.match(waited[0]?.headers['proxy-status'], /waited behind 4 unanswered connects/)
  const line = await proxy.waitForLog(l => l.msg === 'origin failure' && l.ray_id === rayOf(waited[0] as Got))
  t.equal(line.error.code, 'HPX_ERR_CONNECT_TIMEOUT')
  t.match(line.error.message, /no SYN sent/)
  t.same(line.dialled, [], 'no address dialled')
})

/**
 * An origin that drops SYNs until told to start: a listener with a backlog of 1 whose
 * event loop is blocked reading stdin, its accept queue filled; a line on stdin and it
 * serves HTTP with a backlog of 511, answering each request with its own path (so a
 * response that reached the wrong client would show).
 */
async function lateOrigin (t: Test): Promise<{ url: string, start: () => void, accepted: () => number, fillers: number }> {
  const child = spawn(process.execPath, ['-e', `
const http = require('node:http'), fs = require('node:fs')
const server = http.createServer((req, res) => res.end(req.url))
// One byte on stdout per connection accepted: what the test counts.
server.on('connection', () => fs.writeSync(1, '+'))
server.listen({ host: '127.0.0.1', port: 0, backlog: 1 }, () => {
  fs.writeSync(1, server.address().port + '\\n')
  fs.readSync(0, Buffer.alloc(1))
  // Started: a real backlog from now on (listen(2) again on a listening socket sets it).
  server._handle.listen(511)
})`], { stdio: ['pipe', 'pipe', 'inherit'] })
  t.teardown(() => { child.kill('SIGKILL') })
  const port = await new Promise<number>(resolve => child.stdout.once('data', (d: Buffer) => resolve(Number(d.toString().trim()))))
  let accepted = 0
  child.stdout.on('data', (d: Buffer) => { accepted += d.toString().split('+').length - 1 })
  const fillers: net.Socket[] = []
  t.teardown(() => { for (const s of fillers) s.destroy() })
  for (let i = 0; i < 8; i++) {
    const s = net.connect({ host: '127.0.0.1', port })
    s.on('error', () => {})
    fillers.push(s)
    const ok = await new Promise<boolean>(resolve => {
      const timer = setTimeout(() => resolve(false), 300)
      s.once('connect', () => { clearTimeout(timer); resolve(true) })
    })
    // The one that did not connect proves the queue full; it goes, so it never connects later.
    if (!ok) { s.destroy(); fillers.pop(); break }
  }
  return { url: `http://127.0.0.1:${port}`, start: () => { child.stdin.write('go\n') }, accepted: () => accepted, fillers: fillers.length }
}

t.test('pending-connect cap: a connect that succeeds frees the waiting requests at once, each with its own answer (reuse: never)', async t => {
  const origin = await lateOrigin(t)
  const CONNECT_MS = 4000
  const proxy = await startProxy({
    connections: { max_pending_connects: 2, reuse: 'never' },
    routes: [{ origin: origin.url, connect_timeout: `${CONNECT_MS}ms` }]
  })
  t.teardown(() => proxy.close())
  const sent = Array.from({ length: 10 }, (_, i) => fresh(`${proxy.url}/r${i}`))
  // The first SYNs are dropped; the kernel resends them after 1 s, when the origin is back.
  await new Promise(resolve => setTimeout(resolve, 500))
  origin.start()
  const got = await Promise.all(sent)
  got.forEach((g, i) => {
    t.equal(g.status, 200, `request ${i}: 200`)
    t.equal(g.body, `/r${i}`, `request ${i}: its own answer`)
  })
  const slowest = Math.max(...got.map(g => g.ms))
  const fastest = Math.min(...got.map(g => g.ms))
  t.ok(fastest >= 900, `the first answers came with the SYN retransmit: ${fastest.toFixed(0)} ms`)
  t.ok(slowest < fastest + 500, `the waiters dialled as soon as the first connect succeeded: the slowest took ${slowest.toFixed(0)} ms`)
})

t.test('pending-connect cap: a waiting request whose client left never dials', async t => {
  const origin = await lateOrigin(t)
  const proxy = await startProxy({
    connections: { max_pending_connects: 1 },
    routes: [{ origin: origin.url, connect_timeout: '4s' }]
  })
  t.teardown(() => proxy.close())
  const a = fresh(`${proxy.url}/a`)
  await new Promise(resolve => setTimeout(resolve, 50))
  // B waits behind A's unanswered connect; its client gives up after 200 ms.
  const b = undiciRequest(`${proxy.url}/b`, { signal: AbortSignal.timeout(200) }).then(() => 'answered', (err: Error) => err.name)
  await new Promise(resolve => setTimeout(resolve, 50))
  const c = fresh(`${proxy.url}/c`)
  t.equal(await b, 'TimeoutError', 'the client of B left')
  await new Promise(resolve => setTimeout(resolve, 300))
  origin.start()
  const [ga, gc] = await Promise.all([a, c])
  t.equal(ga.body, '/a')
  t.equal(gc.body, '/c', 'C, which waited on, was served once A connected')
  await new Promise(resolve => setTimeout(resolve, 300))
  t.equal(origin.accepted(), origin.fillers + 2, `the origin accepted the ${origin.fillers} queue fillers, A and C: B never dialled`)
  const line = await proxy.waitForLog(l => l.msg === 'access' && l.path === '/b')
  t.equal(line.status, 499, 'B is logged as a client that left')
})

t.test('pending-connect cap: a waiting request whose client left leaves the queue at once, over HTTP/1.1 and by an HTTP/2 stream reset', async t => {
  const pki = await makePki()
  t.teardown(() => pki.remove())
  const cert = await pki.issue('edge', ['localhost'])
  const origin = await lateOrigin(t)
  const proxy = await startProxy({
    listen: { tls: { cert: cert.certFile, key: cert.keyFile } },
    connections: { max_pending_connects: 1 },
    // Long enough that only leaving at once (not a slot, not the deadline) explains an early line.
    routes: [{ origin: origin.url, connect_timeout: '8s' }]
  })
  t.teardown(() => proxy.close())
  const base = `https://localhost:${proxy.port}`
  const session = http2.connect(base, { ca: pki.ca.cert })
  t.teardown(() => session.destroy())
  session.on('error', () => {})
  const h2get = (path: string): { stream: http2.ClientHttp2Stream, done: Promise<{ status: number, body: string }> } => {
    const stream = session.request({ ':path': path })
    const done = new Promise<{ status: number, body: string }>(resolve => {
      let status = 0
      let body = ''
      stream.on('response', h => { status = Number(h[':status']) })
      stream.setEncoding('utf8')
      stream.on('data', (d: string) => { body += d })
      stream.on('close', () => resolve({ status, body }))
    })
    return { stream, done }
  }
  // A holds the one slot: its SYN sits unanswered on the origin's full accept queue.
  const a = h2get('/a')
  await new Promise(resolve => setTimeout(resolve, 100))
  // B waits on the same HTTP/2 session, C on a connection of its own (HTTP/1.1 over TLS).
  const b = h2get('/b')
  const cSocket = tls.connect({ host: '127.0.0.1', port: proxy.port, servername: 'localhost', ca: pki.ca.cert, ALPNProtocols: ['http/1.1'] })
  cSocket.on('error', () => {})
  await new Promise(resolve => cSocket.once('secureConnect', resolve))
  cSocket.write('GET /c HTTP/1.1\r\nhost: localhost\r\n\r\n')
  await new Promise(resolve => setTimeout(resolve, 300))
  const waiting = (): number | undefined => proxy.health()[0]?.load.connects?.waiting
  t.equal(waiting(), 2, 'B and C wait at the cap')
  const left = performance.now()
  // B's stream is reset (its session lives on, serving A); C's connection closes.
  b.stream.close(http2.constants.NGHTTP2_CANCEL)
  cSocket.destroy()
  const [lineB, lineC] = await Promise.all([
    proxy.waitForLog(l => l.msg === 'access' && l.path === '/b', 3000),
    proxy.waitForLog(l => l.msg === 'access' && l.path === '/c', 3000)
  ])
  t.equal(lineB.status, 499, 'B is logged as a client that left')
  t.equal(lineC.status, 499, 'C too')
  // Until a slot frees or their 8 s deadline comes, only leaving at once empties the queue.
  while (waiting() !== 0 && performance.now() - left < 3000) await new Promise(resolve => setTimeout(resolve, 10))
  t.equal(waiting(), 0, `both left the queue when their clients left (${Math.round(performance.now() - left)} ms), while A's connect was still unanswered`)
  t.equal(proxy.health()[0]?.load.connects?.pending, 1, 'A still holds the slot')
  // D arrives after them: the queue holds only D.
  const d = h2get('/d')
  await new Promise(resolve => setTimeout(resolve, 100))
  origin.start()
  const [ga, gd] = await Promise.all([a.done, d.done])
  t.same(ga, { status: 200, body: '/a' })
  t.same(gd, { status: 200, body: '/d' }, 'D, which waited, was served once A connected')
  await new Promise(resolve => setTimeout(resolve, 300))
  t.equal(origin.accepted(), origin.fillers + 2, `the origin accepted the ${origin.fillers} queue fillers, A and D: B and C never dialled`)
})

t.test('retry budget: a pool of two dead origins under load retries at most 20% of its requests in flight', async t => {
  const a = await synDropOrigin()
  t.teardown(() => a.close())
  const b = await synDropOrigin()
  t.teardown(() => b.close())
  const proxy = await startProxy({
    pools: [{ name: 'dead', origins: [a.url, b.url], connect_timeout: '800ms', health: { failures: 1000 } }],
    routes: [{ pool: 'dead' }]
  })
  t.teardown(() => proxy.close())
  const got = await Promise.all(Array.from({ length: 30 }, (_, i) => fresh(`${proxy.url}/x${i}`)))
  t.same(got.map(g => g.status), got.map(() => 522), 'every request answered 522')
  // A retried attempt's line says it answered nobody; the budget allowed 20% of 30 in flight.
  await proxy.waitForLog(l => l.msg === 'access' && l.path === '/x29').catch(() => null)
  await new Promise(resolve => setTimeout(resolve, 200))
  const retried = proxy.logs.filter(l => l.msg === 'origin failure' && l.served === 'none').length
  t.ok(retried >= 3, `retries happened: ${retried}`)
  t.ok(retried <= 6, `at most 20% of the 30 in flight were retried: ${retried}`)
  const twice = got.filter(g => g.ms >= 1600).length
  t.equal(twice, retried, 'the retried requests are the ones that waited two connect timeouts')
})

t.test('retry budget: failover away from refused origins is not limited', async t => {
  const a = await refusedOrigin()
  t.teardown(() => a.close())
  const b = await refusedOrigin()
  t.teardown(() => b.close())
  const proxy = await startProxy({
    pools: [{ name: 'down', origins: [a.url, b.url], health: { failures: 1000 }, retry_budget: { percent: 0, min_retries: 0 } }],
    routes: [{ pool: 'down' }]
  })
  t.teardown(() => proxy.close())
  const got = await Promise.all(Array.from({ length: 10 }, (_, i) => fresh(`${proxy.url}/y${i}`)))
  t.same(got.map(g => g.status), got.map(() => 521))
  await new Promise(resolve => setTimeout(resolve, 200))
  const retried = proxy.logs.filter(l => l.msg === 'origin failure' && l.served === 'none').length
  t.equal(retried, 10, 'each request tried the other origin, with a budget of 0')
})

t.test('adaptive concurrency: the drowning origin is kept at its capacity, the excess shed with 503 within queue_timeout', async t => {
  const origin = await drowningOrigin({ service_ms: 25, backlog: 8 })
  t.teardown(() => origin.close())
  const QUEUE_MS = 300
  const proxy = await startProxy({
    pools: [{ name: 'slow', origins: [origin.url], connect_timeout: '3s', response_timeout: '5s', adaptive_concurrency: { queue_timeout: `${QUEUE_MS}ms` } }],
    routes: [{ pool: 'slow' }]
  })
  t.teardown(() => proxy.close())
  // 80 requests per second, open loop, for 3 s: twice what the origin serves.
  const stall = stallWatch()
  const all: Array<Promise<Got & { sent: number }>> = []
  const start = performance.now()
  for (let i = 0; i < 240; i++) {
    const due = start + i * 12.5
    const wait = due - performance.now()
    if (wait > 0) await new Promise(resolve => setTimeout(resolve, wait))
    all.push(fresh(`${proxy.url}/z${i}`))
  }
  const got = await Promise.all(all)
  const late = stall()
  const by = (s: number): Array<Got & { sent: number }> => got.filter(g => g.status === s)
  const ok = by(200)
  const shed = by(503)
  // The origin's own pace is the machine's (its 25 ms sleeps, its accepts): on a loaded
  // 2-core box it serves well under 40/s, so the bound only says it kept serving.
  t.ok(ok.length >= 20, `the origin kept serving: ${ok.length} × 200`)
  t.ok(shed.length >= 40, `the excess was shed: ${shed.length} × 503`)
  t.equal(ok.length + shed.length, got.length, `nothing else: ${JSON.stringify(got.map(g => g.status).filter(s => s !== 200 && s !== 503))}`)
  for (const g of shed) {
    t.ok(g.ms <= QUEUE_MS + 250 + late, `shed within queue_timeout + slack: ${g.ms.toFixed(0)} ms`)
  }
  const one = shed[0] as Got
  t.equal(one.headers['retry-after'], '5')
  t.match(one.headers['proxy-status'], /error=connection_limit_reached/)
  t.match(one.headers['proxy-status'], /learned concurrency limit \d+ reached/)
  const line = await proxy.waitForLog(l => l.msg === 'origin failure' && l.ray_id === rayOf(one))
  t.equal(line.error.code, 'HPX_ERR_OVERLOADED')
  t.equal(line.edge_status, 503)
  t.equal(line.phase, 'queue')
})

t.test('adaptive concurrency: a shed request gets the route\'s stored copy when Always online has one', async t => {
  // An origin that takes 300 ms per answer, many at a time: the limit, not the origin, is what sheds.
  const server = http.createServer((req, res) => {
    setTimeout(() => res.writeHead(200, { 'cache-control': 'max-age=0', 'content-type': 'text/plain' }).end(`fresh ${String(req.url)}`), 300)
  })
  await new Promise<void>(resolve => server.listen({ host: '127.0.0.1', port: 0 }, resolve))
  t.teardown(() => { server.closeAllConnections(); server.close() })
  const url = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`
  const proxy = await startProxy({
    // While the minimum RTT is measured the limit is 1: the second request at once is past it.
    pools: [{ name: 'p', origins: [url], adaptive_concurrency: { queue_timeout: '100ms' } }],
    // 503 is not in the route's statuses: a shed request is answered from the copy anyway.
    routes: [{ pool: 'p', stale_if_error: {} }]
  })
  t.teardown(() => proxy.close())
  const first = await fresh(`${proxy.url}/page`)
  t.equal(first.body, 'fresh /page', 'the copy is taken from a good answer')
  const [a, b] = await Promise.all([fresh(`${proxy.url}/page`), fresh(`${proxy.url}/page`)])
  const bodies = [a, b].map(g => `${g.status} ${g.body}`).sort()
  t.same(bodies, ['200 fresh /page', '200 fresh /page'], 'both answered 200 with the page')
  const shed = [a, b].find(g => g.ms < 280) as Got
  t.ok(shed !== undefined, `one was answered before the origin could (${a.ms.toFixed(0)} / ${b.ms.toFixed(0)} ms): the copy`)
  const line = await proxy.waitForLog(l => l.msg === 'origin failure' && l.ray_id === rayOf(shed))
  t.equal(line.error.code, 'HPX_ERR_OVERLOADED')
  t.equal(line.served, 'stale')
})
