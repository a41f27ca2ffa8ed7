// One client must never become many origin connections: pipelined requests are
// answered one at a time and in order, and each origin of a pool has a connection limit
// with a queue in front of it.

import http from 'node:http'
import net from 'node:net'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import t from 'tap'
import { startProxy, type TestProxy } from '../helpers.js'
import { timed, oneOfTwo, shown, type Timed } from '../timing.js'

/** An origin that answers `/n/<i>` with `<i>` after `delayMs`, counting its open connections and requests in flight. */
async function countingOrigin (delayMs = 0): Promise<{ url: string, maxConnections: () => number, maxInFlight: () => number, requests: () => number, close: () => Promise<void> }> {
  let open = 0
  let maxOpen = 0
  let inFlight = 0
  let maxInFlight = 0
  let requests = 0
  const server = http.createServer((req, res) => {
    requests++
    inFlight++
    maxInFlight = Math.max(maxInFlight, inFlight)
    const done = (): void => { inFlight--; res.end(String(req.url).split('/').pop()) }
    if (delayMs === 0) done()
    else setTimeout(done, delayMs)
  })
  server.keepAliveTimeout = 10_000
  server.on('connection', socket => {
    open++
    maxOpen = Math.max(maxOpen, open)
    socket.on('close', () => { open-- })
  })
  await new Promise<void>(resolve => server.listen({ host: '127.0.0.1', port: 0 }, resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    maxConnections: () => maxOpen,
    maxInFlight: () => maxInFlight,
    requests: () => requests,
    close: () => new Promise(resolve => { server.closeAllConnections(); server.close(() => resolve()) })
  }
}

/** Writes `count` pipelined GETs in one write; resolves with the bodies of the answers, in the order they came. */
function pipeline (port: number, count: number, from = 0): Promise<string[]> {
  return new Promise((resolve, reject) => {
    let all = ''
    for (let i = from; i < from + count; i++) all += `GET /n/${i} HTTP/1.1\r\nhost: pipe.test\r\n\r\n`
    const socket = net.connect({ host: '127.0.0.1', port }, () => socket.write(all))
    let received = ''
    const bodies: string[] = []
    socket.on('data', (d: Buffer) => {
      received += d.toString('latin1')
      for (;;) {
        const end = received.indexOf('\r\n\r\n')
        if (end === -1) break
        const length = Number(/content-length: (\d+)/i.exec(received.slice(0, end))?.[1] ?? -1)
        if (length < 0 || received.length < end + 4 + length) break
        bodies.push(received.slice(end + 4, end + 4 + length))
        received = received.slice(end + 4 + length)
      }
      if (bodies.length === count) { socket.destroy(); resolve(bodies) }
    })
    socket.on('error', reject)
    socket.on('close', () => { if (bodies.length < count) reject(new Error(`connection closed after ${bodies.length} of ${count} answers`)) })
  })
}

const range = (from: number, count: number): string[] => Array.from({ length: count }, (_, i) => String(from + i))

// A collection on demand, so what a burst leaves behind is measured, not when V8 got to it.
setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void
const retainedMiB = (): number => { gc(); gc(); return process.memoryUsage().heapUsed / 2 ** 20 }

t.test('1,000 pipelined requests in one write: one origin connection at a time, answered in order, one access line each', async t => {
  const origin = await countingOrigin()
  const proxy = await startProxy({ origin: origin.url })
  t.teardown(async () => { await proxy.close(); await origin.close() })
  const bodies = await pipeline(proxy.port, 1000)
  t.same(bodies, range(0, 1000), 'every answer, in order')
  t.equal(origin.maxInFlight(), 1, 'the origin never saw two of them at once')
  t.equal(origin.maxConnections(), 1, 'through one origin connection')
  await proxy.waitForLog(() => proxy.logs.filter(l => l.msg === 'access').length >= 1000, 5000)
  t.equal(proxy.logs.filter(l => l.msg === 'access').length, 1000, 'exactly one access line per request')
})

t.test('10 connections × 2,000 pipelined requests: 10 origin connections at most, memory bounded, nothing lost', async t => {
  const origin = await countingOrigin()
  const proxy = await startProxy({ origin: origin.url })
  t.teardown(async () => { await proxy.close(); await origin.close() })
  const before = retainedMiB()
  const results = await Promise.all(Array.from({ length: 10 }, (_, c) => pipeline(proxy.port, 2000, c * 2000)))
  results.forEach((bodies, c) => t.same(bodies, range(c * 2000, 2000), `connection ${c}: every answer, in order`))
  t.ok(origin.maxConnections() <= 10, `at most one origin connection per client connection (${origin.maxConnections()})`)
  t.equal(origin.requests(), 20_000)
  await proxy.waitForLog(() => proxy.logs.filter(l => l.msg === 'access').length >= 20_000, 10_000)
  t.equal(proxy.logs.filter(l => l.msg === 'access').length, 20_000, 'one access line each')
  // The captured log lines are the test's own: counted out of what the burst left behind.
  proxy.logs.splice(0)
  const kept = retainedMiB() - before
  t.ok(kept < 16, `the burst left ${kept.toFixed(1)} MiB behind once it was answered (the fan-out kept ~490 MiB for good)`)
})

t.test('a client that leaves with requests still queued: each gets its access line (499)', async t => {
  const origin = await countingOrigin(200)
  const proxy = await startProxy({ origin: origin.url })
  t.teardown(async () => { await proxy.close(); await origin.close() })
  const socket = net.connect({ host: '127.0.0.1', port: proxy.port })
  await new Promise(resolve => socket.once('connect', resolve))
  socket.write(range(0, 5).map(i => `GET /n/${i} HTTP/1.1\r\nhost: gone.test\r\n\r\n`).join(''))
  await new Promise(resolve => setTimeout(resolve, 50))
  socket.destroy()
  await proxy.waitForLog(() => proxy.logs.filter(l => l.msg === 'access' && l.host === 'gone.test').length >= 5, 3000)
  const lines = proxy.logs.filter(l => l.msg === 'access' && l.host === 'gone.test')
  t.equal(lines.length, 5, 'five requests, five access lines')
  t.ok(lines.every(l => l.status === 499), 'all of them the client left')
  t.equal(origin.requests(), 1, 'only the first reached the origin')
})

t.test('max_per_origin: the origin never sees more connections; the rest wait their turn', async t => {
  const origin = await countingOrigin(100)
  // Every client here is 127.0.0.1: no per-client share (a quarter of 2), only the origin's limit.
  const proxy = await startProxy({ origin: origin.url, connections: { max_per_origin: 2, max_per_client: 0 } })
  t.teardown(async () => { await proxy.close(); await origin.close() })
  const answers = await Promise.all(range(0, 6).map(i => new Promise<number>((resolve, reject) => {
    http.get(`${proxy.url}/n/${i}`, { agent: false }, res => { res.resume(); resolve(res.statusCode ?? 0) }).on('error', reject)
  })))
  t.same(answers, [200, 200, 200, 200, 200, 200], 'all six answered')
  // Counted at the origin by requests in flight: an evicted connection's close may reach
  // it after its replacement's connect.
  t.equal(origin.maxInFlight(), 2, 'never more than 2 at once at the origin')
})

t.test('max_queue_per_origin and the queue wait: past them, 503 with Proxy-Status connection_limit_reached', async t => {
  interface Answer { status: number, ms: number, ray: string }
  const get = (proxy: TestProxy, i: number): Promise<Answer> => new Promise((resolve, reject) => {
    const start = performance.now()
    http.get(`${proxy.url}/n/${i}`, { agent: false, headers: { accept: 'application/json' } }, res => {
      res.resume()
      res.on('end', () => resolve({ status: res.statusCode ?? 0, ms: performance.now() - start, ray: String(res.headers['cf-ray']).slice(0, 16) }))
    }).on('error', reject)
  })
  const after = (ms: number, ask: () => Promise<Answer>): Promise<Answer> => new Promise(resolve => setTimeout(() => resolve(ask()), ms))
  // The measured step is the whole scenario, on an origin and a proxy of its own, so a
  // retry starts from the same empty connection and queue.
  const scenario = async (): Promise<Timed<{ first: Answer, queued: Answer, full: Answer }> & { proxy: TestProxy }> => {
    const origin = await countingOrigin(1000)
    const proxy = await startProxy({
      routes: [{ origin: origin.url, connect_timeout: '300ms' }],
      connections: { max_per_origin: 1, max_queue_per_origin: 1 }
    })
    t.teardown(async () => { await proxy.close(); await origin.close() })
    const answers = await timed(async () => {
      const [first, queued, full] = await Promise.all([get(proxy, 0), after(50, () => get(proxy, 1)), after(100, () => get(proxy, 2))])
      return { first, queued, full }
    })
    return Object.assign(answers, { proxy })
  }
  type Run = Awaited<ReturnType<typeof scenario>>
  const fullAtOnce = (r: Run): boolean => r.full.ms < 250 + r.late
  const queuedOnTime = (r: Run): boolean => r.queued.ms < 900 + r.late
  const tries = await oneOfTwo(await scenario(), scenario, r => fullAtOnce(r) && queuedOnTime(r))
  const full = tries.map(r => ({ ms: r.full.ms, late: r.late }))
  const queued = tries.map(r => ({ ms: r.queued.ms, late: r.late }))
  t.ok(tries.every(r => r.queued.ms >= 300), `the second never before the 300 ms connect timeout: ${shown(queued)}`)
  t.ok(tries.some(r => fullAtOnce(r) && queuedOnTime(r)), `the third at once (under 250 ms): ${shown(full)}; the second within 600 ms after the timeout: ${shown(queued)}`)
  for (const { proxy, first, queued, full } of tries) {
    t.equal(first.status, 200, 'the first rides the one connection')
    t.equal(full.status, 503, 'the third finds the queue full: 503 at once')
    t.equal(queued.status, 503, 'the second waited its connect timeout for a slot, then 503')
    const line = await proxy.waitForLog(l => l.msg === 'origin failure' && l.ray_id === queued.ray)
    t.match(line, { edge_status: 503, phase: 'queue', error: { code: 'HPX_ERR_CONNECTION_LIMIT' } })
  }
})
