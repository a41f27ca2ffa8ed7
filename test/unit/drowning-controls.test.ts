// The decisions behind the pending-connect cap, the retry budget and adaptive
// concurrency, each alone: the gate's slots and deadlines (real timers, checked against
// performance.now()), the proxy loop's tryAgain with a pool's budget (Caddy-style: the
// decision function with the outcome it is given), and the gradient limiter on a clock
// the test moves.

import { performance } from 'node:perf_hooks'
import t from 'tap'
import { GateLeft, GateTimeout, PendingConnects } from '../../src/origin/pending-connects.js'
import { AdaptiveLimit } from '../../src/origin/adaptive.js'
import { RetryBudget } from '../../src/origin/retry-budget.js'
import { tryAgain } from '../../src/edge/proxy-loop.js'
import { classify } from '../../src/status/classify.js'
import { ConnectFailedError, ConnectTimeoutError, OverloadedError, ResponseTimeoutError, type DialFacts } from '../../src/status/errors.js'
import type { AdaptiveConfig } from '../../src/config/schema.js'
import { timed, oneOfTwo, shown, type Timed } from '../timing.js'

const settle = <T>(p: Promise<T>): Promise<{ value?: T, error?: unknown, at: number }> =>
  p.then(value => ({ value, at: performance.now() }), (error: unknown) => ({ error, at: performance.now() }))

t.test('pending-connect gate: the cap, arrival order, an answer frees the next at once', async t => {
  const gate = new PendingConnects(2, 5000)
  const start = performance.now()
  t.type(gate.enter(start), 'number', 'below the cap: at once')
  t.type(gate.enter(start), 'number')
  t.equal(gate.pending, 2)
  const third = gate.enter(start) as Promise<number>
  const fourth = gate.enter(start) as Promise<number>
  t.ok(third instanceof Promise, 'past the cap: it waits')
  t.same(gate.view(), { pending: 2, waiting: 2, cap: 2 })
  const order: string[] = []
  void third.then(() => order.push('third'))
  void fourth.then(() => order.push('fourth'))
  gate.leave(true)
  const left = await third
  t.ok(left > 4000 && left <= 5000, `it keeps its own deadline: ${left.toFixed(0)} ms of connect timeout left`)
  gate.leave(true)
  await fourth
  t.same(order, ['third', 'fourth'], 'in arrival order')
  t.equal(gate.pending, 2, 'each took the slot it was given')
  t.same(gate.view().waiting, 0)
})

t.test('pending-connect gate: a waiter fails at its own deadline, never before, and says what it waited behind', async t => {
  const gate = new PendingConnects(1, 300)
  const start = performance.now()
  gate.enter(start)
  const waits = [0, 60, 120].map(d => ({ start: start + d, p: null as Promise<number> | null }))
  const results = []
  for (const w of waits) {
    // Each arrives later: its deadline is its own arrival + the connect timeout.
    while (performance.now() < w.start) await new Promise(resolve => setTimeout(resolve, 5))
    const arrived = performance.now()
    results.push({ arrived, r: settle(gate.enter(arrived) as Promise<number>) })
  }
  for (const { arrived, r } of results) {
    const { error, at } = await r
    t.ok(error instanceof GateTimeout, 'a GateTimeout')
    t.ok(at - arrived >= 300, `not early: ${(at - arrived).toFixed(1)} ms after its arrival`)
    t.ok(at - arrived < 300 + 250, `not much later: ${(at - arrived).toFixed(1)} ms`)
    t.equal((error as GateTimeout).waitedBehind, 1)
  }
  t.equal(gate.pending, 1, 'the slot is still held by the unanswered connect')
})

t.test('pending-connect gate: after a timeout only a waiter with time for a real try dials; after an answer any does', async t => {
  const gate = new PendingConnects(1, 1000) // minDialMs: 500
  t.equal(gate.minDialMs, 500)
  const now = performance.now()
  gate.enter(now - 800)
  // Arrived 700 ms ago: 300 ms left, too little after a dropped SYN.
  const late = settle(gate.enter(now - 700) as Promise<number>)
  // Arrived now: the whole second left.
  const fresh = gate.enter(now) as Promise<number>
  gate.leave(false)
  const left = await fresh
  t.ok(left > 900, 'the waiter with time left took the slot')
  t.equal(gate.view().waiting, 1, 'the late one still waits')
  gate.leave(true)
  const r = await late
  t.type(r.value, 'number', 'an answer lets it dial, whatever it has left')
})

t.test('pending-connect gate: a waiter whose client left never gets the slot, and never sends its SYN', async t => {
  const gate = new PendingConnects(1, 5000)
  const start = performance.now()
  gate.enter(start)
  const client = { released: false }
  const gone = settle(gate.enter(start, client) as Promise<number>)
  const next = gate.enter(start, { released: false }) as Promise<number>
  client.released = true
  gate.leave(true)
  const r = await gone
  t.ok(r.error instanceof GateLeft, 'it leaves the queue with GateLeft (the dialer answers it 499)')
  t.type(await next, 'number', 'the slot went to the next one')
  t.equal(gate.pending, 1)
})

t.test('pending-connect gate: after a timeout with nobody left who could dial, the queue is not walked, but a client seen gone only by the walk still leaves', async t => {
  const gate = new PendingConnects(1, 1000) // minDialMs: 500
  const now = performance.now()
  gate.enter(now - 900) // the one pending connect (the cap)
  const waiters = [900, 800, 700].map(ago => settle(gate.enter(now - ago) as Promise<number>))
  // Every waiter has less than minDialMs left: a timeout frees the slot for no one, and the
  // newest waiter (the most time left) says so without a look at the others. A walk would
  // read each waiter's owner; these owners count the reads.
  let walked = 0
  const owner = (): { leave: (() => void) | null, readonly released: boolean } => ({ leave: null, get released () { walked++; return false } })
  waiters.push(settle(gate.enter(now - 650, owner()) as Promise<number>), settle(gate.enter(now - 600, owner()) as Promise<number>))
  gate.leave(false)
  t.equal(walked, 0, 'no waiter was looked at one by one')
  t.equal(gate.view().waiting, 5, 'all still wait, for an answer or their deadline')
  for (const w of waiters) t.ok((await w).error instanceof GateTimeout, 'each fails at its own deadline')

  // An owner without `leave` (the connection an HTTP/2 session's streams share) is seen
  // gone only by a walk of the queue: with one in the queue, the walk still happens.
  const gate2 = new PendingConnects(1, 1000)
  const t0 = performance.now()
  gate2.enter(t0 - 900)
  const shared = { released: false }
  const gone = settle(gate2.enter(t0 - 800, shared) as Promise<number>)
  shared.released = true
  gate2.leave(false)
  const r = await gone
  t.ok(r.error instanceof GateLeft, 'its client left: it goes without a SYN (GateLeft), not at its deadline')
  t.ok(r.at - t0 < 150, 'at once')
})

t.test('pending-connect gate: an owner that can leave at once is taken out of the queue when it does, before any slot frees', async t => {
  const gate = new PendingConnects(1, 5000)
  const start = performance.now()
  gate.enter(start)
  const b = { released: false, leave: null as (() => void) | null }
  const gone = settle(gate.enter(start, b) as Promise<number>)
  const c = { released: false, leave: null as (() => void) | null }
  const next = gate.enter(start, c) as Promise<number>
  t.type(b.leave, 'function', 'the gate gave the waiting owner a way out')
  t.same(gate.view(), { pending: 1, waiting: 2, cap: 1 })
  b.leave?.()
  t.same(gate.view(), { pending: 1, waiting: 1, cap: 1 }, 'out of the queue at once, no slot freed')
  t.ok((await gone).error instanceof GateLeft, 'its dial ends as GateLeft (499, no SYN)')
  gate.leave(true)
  t.type(await next, 'number', 'the next waiter got the slot')
  t.equal(c.leave, null, 'a waiter that got its slot has nothing left to leave')
  t.equal(b.leave, null)
})

const budget = (requests: number, percent = 20, minRetries = 3): RetryBudget => {
  const b = new RetryBudget({ percent, minRetries })
  b.requests = requests
  return b
}

const facts: DialFacts = { phase: 'connect', timings: { dns_ms: 0, connect_ms: 2000, tls_ms: null }, attempts: [], address: '127.0.0.1', port: 9, localAddress: null, localPort: null }
const timedOut = new ConnectTimeoutError(facts, 2000)
const refused = new ConnectFailedError(facts, Object.assign(new Error('refused'), { code: 'ECONNREFUSED' }))
const exchange = { tried: [{}] as never[], aborted: false, body: null, method: 'GET' }
const dialFailed = (error: Error): { requestSent: boolean, error: Error, fresh: boolean, originStatus: number } =>
  ({ requestSent: false, error, fresh: true, originStatus: 0 })

t.test('tryAgain: a connect timeout fails over while the budget lasts, then is answered', async t => {
  const b = budget(10) // 20% of 10 is 2: the minimum of 3 applies
  const c = classify(timedOut, 'connect')
  t.equal(c.status, 522)
  const got = [1, 2, 3, 4].map(() => tryAgain(exchange, dialFailed(timedOut), c, b))
  t.same(got, ['another origin, budgeted', 'another origin, budgeted', 'another origin, budgeted', null])
  t.equal(b.retries, 3)
  t.equal(b.refused, 1)
  b.retryEnded()
  t.equal(tryAgain(exchange, dialFailed(timedOut), c, b), 'another origin, budgeted', 'a retry that ended gives its place back')
})

t.test('tryAgain: the budget is 20% of the requests in flight', async t => {
  const b = budget(50)
  const c = classify(timedOut, 'connect')
  let n = 0
  while (tryAgain(exchange, dialFailed(timedOut), c, b) !== null) n++
  t.equal(n, 10)
  t.equal(budget(50, 0, 0).allowed(), 0, 'a budget of 0 allows none')
})

t.test('tryAgain: leaving a refused origin is not budgeted', async t => {
  const b = budget(10, 0, 0)
  const c = classify(refused, 'connect')
  t.equal(c.status, 521)
  t.equal(tryAgain(exchange, dialFailed(refused), c, b), 'another origin')
  t.equal(b.retries, 0)
  t.equal(tryAgain(exchange, dialFailed(timedOut), classify(timedOut, 'connect'), b), null, 'while a timeout is')
})

t.test('tryAgain: what was never a budget question stays as it was', async t => {
  const b = budget(10)
  const c = classify(timedOut, 'connect')
  t.equal(tryAgain({ ...exchange, tried: [{}, {}] as never[] }, dialFailed(timedOut), c, b), null, 'two attempts is the most')
  const single = new RetryBudget({ percent: 20, minRetries: 3 }, 1)
  single.requests = 100
  t.equal(tryAgain(exchange, dialFailed(timedOut), c, single), null, 'a pool of one origin has nowhere to fail over to')
  t.equal(single.refused, 0, 'and that is no refusal of the budget')
  t.equal(tryAgain({ ...exchange, aborted: true }, dialFailed(timedOut), c, b), null, 'the client left')
  const sent = new ResponseTimeoutError(1000)
  t.equal(tryAgain(exchange, { requestSent: true, error: sent, fresh: true, originStatus: 0 }, classify(sent, 'response'), b), null, 'a request that reached the origin')
  const shed = new OverloadedError(3, 1000, 'queue timeout')
  t.equal(tryAgain(exchange, { requestSent: false, error: shed, fresh: false, originStatus: 0 }, classify(shed, 'queue'), b), null, 'a shed request is answered')
  const reset = Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET' })
  t.equal(tryAgain(exchange, { requestSent: true, error: reset, fresh: false, originStatus: 0 }, classify(reset, 'response'), b), 'same origin', 'the keep-alive race is retried, unbudgeted')
  t.equal(b.retries, 0)
})

const knobs = (over: Partial<AdaptiveConfig> = {}): AdaptiveConfig => ({
  queueTimeoutMs: 1000,
  maxQueue: 1000,
  minLimit: 1,
  maxLimit: 1000,
  initialLimit: 10,
  buffer: 0.25,
  sampleIntervalMs: 100,
  minRttIntervalMs: 60_000,
  minRttSamples: 5,
  minRttConcurrency: 3,
  ...over
})

/**
 * Drives a limiter at full load (the limit always used) against a model origin: with n
 * in flight, the k-th of them (from 1) takes latency(n, k).
 */
function drive (limiter: AdaptiveLimit, clock: { now: number }, latency: (n: number, k: number) => number, steps: number): number[] {
  const limits: number[] = []
  for (let i = 0; i < steps; i++) {
    const n = limiter.current()
    for (let k = 0; k < n; k++) limiter.acquire()
    const start = clock.now
    for (let k = 1; k <= n; k++) {
      const rtt = latency(n, k)
      clock.now = start + rtt
      limiter.release(start, rtt)
    }
    limits.push(limiter.current())
  }
  return limits
}

/** One request at a time, 25 ms each: the k-th in flight waits for the k - 1 before it. */
const serial = (_n: number, k: number): number => k * 25

t.test('adaptive concurrency: learns the minimum RTT at a low limit, then settles a one-at-a-time origin at a few', async t => {
  const clock = { now: 0 }
  const limiter = new AdaptiveLimit(knobs(), () => clock.now)
  t.equal(limiter.current(), 3, 'measuring the minimum RTT: min_rtt_concurrency')
  const limits = drive(limiter, clock, serial, 200)
  t.equal(limiter.minRttMs, 25, 'three at a time on a serial origin: 25, 50, 75 ms; the low end is its service time')
  const settled = limits.slice(-50)
  t.ok(settled.every(l => l >= 2 && l <= 6), `settled between 2 and 6: ${[...new Set(settled)].join(',')}`)
})

t.test('adaptive concurrency: an origin whose latency stays flat gets a growing limit', async t => {
  const clock = { now: 0 }
  const limiter = new AdaptiveLimit(knobs({ maxLimit: 200 }), () => clock.now)
  drive(limiter, clock, () => 25, 100)
  t.equal(limiter.current(), 200, 'up to max_limit')
  drive(limiter, clock, n => 25 * Math.max(1, n / 20), 100) // twenty at a time at 25 ms, then a queue
  t.ok(limiter.current() < 60, `and back down when latency rises with load: ${limiter.current()}`)
})

t.test('adaptive concurrency: past the limit a request queues, gets the next free slot, or is shed at queue_timeout', async t => {
  const limiter = new AdaptiveLimit(knobs({ initialLimit: 1, minRttConcurrency: 1, queueTimeoutMs: 80 }))
  t.equal(limiter.acquire(), true)
  const queued = limiter.acquire() as Promise<void>
  t.equal(limiter.view().queued, 1)
  limiter.release(performance.now(), null)
  await queued
  t.equal(limiter.inFlight, 1, 'the freed slot went to the waiter')
  const arrived = performance.now()
  const shed = await settle(limiter.acquire() as Promise<void>)
  t.ok(shed.error instanceof OverloadedError, 'shed with HPX_ERR_OVERLOADED')
  t.equal((shed.error as OverloadedError).code, 'HPX_ERR_OVERLOADED')
  t.ok(shed.at - arrived >= 80, `at queue_timeout, not before: ${(shed.at - arrived).toFixed(1)} ms`)
  t.match((shed.error as OverloadedError).details, /learned concurrency limit 1 reached/)
  t.equal(limiter.shed, 1)
  const shedFull = (): Promise<Timed<{ error: unknown, ms: number }>> => timed(async () => {
    const full = new AdaptiveLimit(knobs({ initialLimit: 1, minRttConcurrency: 1, maxQueue: 0 }))
    full.acquire()
    const at = performance.now()
    const r = await settle(full.acquire() as Promise<void>)
    return { error: r.error, ms: performance.now() - at }
  })
  const atOnce = (x: Timed<{ ms: number }>): boolean => x.ms < 50 + x.late
  const tries = await oneOfTwo(await shedFull(), shedFull, atOnce)
  t.ok(tries.every(r => r.error instanceof OverloadedError) && tries.some(atOnce), `a full queue sheds at once: ${shown(tries)}`)
  for (const r of tries) {
    t.equal(classify(r.error, 'queue').status, 503)
    t.equal(classify(r.error, 'queue').proxyStatus, 'connection_limit_reached')
  }
})

t.test('adaptive concurrency: a queued request whose client left leaves the queue, takes no slot and is not shed', async t => {
  const limiter = new AdaptiveLimit(knobs({ initialLimit: 1, minRttConcurrency: 1, queueTimeoutMs: 50 }))
  t.equal(limiter.acquire(), true)
  const gone = limiter.acquire() as Promise<void>
  const next = limiter.acquire() as Promise<void>
  t.equal(limiter.cancel(gone), true)
  t.equal(limiter.cancel(gone), false, 'only once')
  t.equal(limiter.view().queued, 1)
  limiter.release(performance.now(), null)
  await next
  t.equal(limiter.inFlight, 1, 'the slot went to the one still waiting')
  await new Promise(resolve => setTimeout(resolve, 80))
  t.equal(limiter.shed, 0, 'nothing was shed')
})
