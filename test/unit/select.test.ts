// Which origin takes the next attempt: the policies of origin/select.ts alone (their
// random draws given, so every choice is known), slow start's ramp, and the pool's own
// choice (origin/pool.ts): an origin already tried or resting (down after its failures,
// or half-open with its one trial out) is skipped, a single origin is tried once, a
// recovering origin gets a small share, and retries run through the pool without repeats.
// Pools are built from a configuration through the runtime, as the edge builds them.

import t, { type Test } from 'tap'
import { ramped, selector } from '../../src/origin/select.js'
import type { OriginPool, PoolMember } from '../../src/origin/pool.js'
import { AdaptiveLimit } from '../../src/origin/adaptive.js'
import { ConnectFailedError, type DialFacts } from '../../src/status/errors.js'
import { runtimeOf } from './fixtures/edge.js'

interface C { name: string, inFlight: number, w?: number }
const c = (name: string, inFlight = 0, w = 1): C & { weight: () => number } => ({ name, inFlight, w, weight: () => w })
const namesOf = (xs: ReadonlyArray<{ name: string } | undefined>): Array<string | undefined> => xs.map(x => x?.name)

/** A random source that returns these draws in turn. */
const draws = (...values: number[]): () => number => {
  let i = 0
  return () => values[i++ % values.length] as number
}

t.test('round robin: each in turn, the turn kept across calls whatever the candidates', async t => {
  const rr = selector('round_robin')
  const [a, b, cc] = [c('a'), c('b'), c('c')]
  t.same(namesOf([rr([a, b, cc]), rr([a, b, cc]), rr([a, b, cc]), rr([a, b, cc])]), ['a', 'b', 'c', 'a'])
  t.same(namesOf([rr([a, b]), rr([a, b])]), ['a', 'b'], 'the counter runs on (4, 5) over the smaller list')
  t.equal(rr([]), undefined)
  const other = selector('round_robin')
  t.equal(other([a, b, cc])?.name, 'a', 'each selector (each pool) keeps its own turn')
  t.equal(rr([a, b, cc])?.name, 'a', 'the seventh call of the first: 6 mod 3')
})

t.test('least in flight: the least busy; on a tie the first listed', async t => {
  const least = selector('least_in_flight')
  t.equal(least([c('a', 5), c('b', 1), c('c', 3)])?.name, 'b')
  t.equal(least([c('a', 2), c('b', 1), c('c', 1)])?.name, 'b', 'tie: the first of the least busy')
  t.equal(least([c('a', 0), c('b', 0)])?.name, 'a')
  t.equal(least([c('a', 7)])?.name, 'a')
  t.equal(least([]), undefined)
})

t.test('random two: two distinct draws, the less busy wins, a tie goes to the first drawn', async t => {
  const [a, b, cc] = [c('a', 5), c('b', 1), c('c', 3)]
  t.equal(selector('random_two', draws(0, 0.5))([a, b, cc])?.name, 'c', 'a (5) and, of the other two, the second: c (3)')
  t.equal(selector('random_two', draws(0.99, 0))([a, b, cc])?.name, 'c', 'c (3) and a (5): the less busy, c')
})

t.test('random two, drawn by hand', async t => {
  const [a, b, cc] = [c('a', 5), c('b', 1), c('c', 3)]
  // i = floor(r1 * 3); j = floor(r2 * 2), moved past i so the two differ.
  const pick = (r1: number, r2: number, list = [a, b, cc]) => selector('random_two', draws(r1, r2))(list)?.name
  t.equal(pick(0, 0), 'b', 'i=a, j=0 → b (past a): b (1) beats a (5)')
  t.equal(pick(0.5, 0), 'b', 'i=b, j=a: b (1) beats a (5)')
  t.equal(pick(0.5, 0.5), 'b', 'i=b, j=1 → c (past b): b (1) beats c (3)')
  t.equal(pick(0.99, 0), 'c', 'i=c, j=a: c (3) beats a (5)')
  t.equal(pick(0, 0.99), 'c', 'i=a, j=1 → c: c beats a')
  t.equal(pick(0.5, 0.99, [c('x', 2), c('y', 2), c('z', 2)]), 'y', 'a tie: the first drawn')
  t.equal(pick(0.7, 0.1, [c('x', 0), c('y', 9)]), 'x', 'two candidates: each drawn once, never the same twice')
  t.equal(pick(0.1, 0.7, [c('x', 0), c('y', 9)]), 'x')
  t.equal(pick(0.5, 0.5, [c('only', 3)]), 'only')
  t.equal(pick(0.5, 0.5, []), undefined)
})

t.test('slow start: full-weight candidates are left as they are; a ramped one stays in with its weight as probability', async t => {
  const full = [c('a'), c('b')]
  t.equal(ramped(full, () => { throw new Error('no draw while none ramps') }), full, 'the same array: nothing allocated')
  const list = [c('a'), c('r', 0, 0.3), c('b')]
  t.same(namesOf(ramped(list, () => 0.29)), ['a', 'r', 'b'], 'a draw below its weight keeps it')
  t.same(namesOf(ramped(list, () => 0.3)), ['a', 'b'], 'at or above its weight it sits this one out')
  t.same(namesOf(ramped([c('r1', 0, 0.1), c('r2', 0, 0.2)], () => 0.9)), ['r1', 'r2'], 'when every one would drop out, all stay')
  t.same(namesOf(ramped([c('r1', 0, 0.1), c('r2', 0, 0.2)], draws(0.9, 0.1))), ['r2'])
  t.same(namesOf(ramped([c('a', 0, 1.5), c('r', 0, 0.5)], () => 0.7)), ['a'], 'a weight of 1 or more always stays')
})

const ORIGINS = ['http://127.0.0.1:1', 'http://127.0.0.1:2', 'http://127.0.0.1:3']

function poolOf (t: Test, pool: Record<string, unknown>): OriginPool {
  const edge = runtimeOf({ pools: [{ name: 'p', origins: ORIGINS, ...pool }], routes: [{ pool: 'p' }] })
  t.teardown(() => edge.close())
  return edge.state.pools.find(p => p.config.name === 'p') as OriginPool
}
const port = (m: PoolMember | null): string | null => m === null ? null : m.url.port

const facts: DialFacts = { phase: 'connect', timings: { dns_ms: 0, connect_ms: 0.3, tls_ms: null }, attempts: [], address: '127.0.0.1', port: 1, localAddress: null, localPort: null }
const refused = new ConnectFailedError(facts, Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }))

/** Passive health marks it down: as many connect failures as the pool allows. */
function fail (pool: OriginPool, m: PoolMember): void {
  for (let i = 0; i < pool.config.health.failures; i++) m.health.failed(refused, 'connect')
}

t.test('pool: retries never go back to an origin tried; when all are tried, none', async t => {
  for (const policy of ['round_robin', 'least_in_flight', 'random_two']) {
    const pool = poolOf(t, { policy })
    const tried: PoolMember[] = []
    for (let i = 0; i < 3; i++) {
      const m = pool.select(tried)
      t.ok(m !== null && !tried.includes(m), `${policy}: attempt ${i + 1} goes to an origin not yet tried`)
      tried.push(m as PoolMember)
    }
    t.equal(pool.select(tried), null, `${policy}: every origin tried`)
  }
})

t.test('pool: failover in list order under least in flight (equal load); round robin goes on in turn', async t => {
  const least = poolOf(t, { policy: 'least_in_flight' })
  const tried: PoolMember[] = []
  const order: Array<string | null> = []
  // Bounded: a pool that offered a tried origin again would never run out.
  for (let i = 0; i < 5; i++) {
    const m = least.select(tried)
    order.push(port(m))
    if (m === null) break
    tried.push(m)
  }
  t.same(order, ['1', '2', '3', null])
  const rr = poolOf(t, { policy: 'round_robin' })
  t.same([port(rr.select([])), port(rr.select([])), port(rr.select([])), port(rr.select([]))], ['1', '2', '3', '1'], 'new requests in turn')
})

t.test('pool: least in flight reads the members\' in-flight counts', async t => {
  const pool = poolOf(t, { policy: 'least_in_flight' })
  const [a, b, cc] = pool.members as [PoolMember, PoolMember, PoolMember]
  a.inFlight = 4; b.inFlight = 2; cc.inFlight = 3
  t.equal(port(pool.select([])), '2')
  t.equal(port(pool.select([b])), '3', 'the least busy of the rest')
})

t.test('pool: an origin down is skipped until its rest is over; then one trial, then skipped while it is out', async t => {
  const pool = poolOf(t, { policy: 'least_in_flight', health: { failures: 2, cooldown: '40ms' } })
  const [a, b] = pool.members as [PoolMember, PoolMember]
  a.health.failed(refused, 'connect')
  t.equal(port(pool.select([])), '1', 'one failure of two: still up')
  a.health.failed(refused, 'connect')
  t.equal(a.health.state(), 'down')
  t.equal(port(pool.select([])), '2', 'down: skipped')
  t.equal(port(pool.select([b])), '3')
  await new Promise(resolve => setTimeout(resolve, 60))
  t.equal(a.health.state(), 'half-open')
  t.equal(port(pool.select([])), '1', 'half-open: available again')
  a.health.acquire()
  t.equal(port(pool.select([])), '2', 'its one trial is out: skipped')
  a.health.succeeded()
  t.equal(port(pool.select([])), '1', 'the trial answered: back')
})

t.test('pool: every origin down → none, and the failure the pool-down answer repeats', async t => {
  const pool = poolOf(t, { health: { failures: 1, cooldown: '1h' } })
  t.equal(pool.downFailure(), null, 'all up: no pool-down answer')
  for (const m of pool.members) {
    t.equal(pool.downFailure(), null, 'while one is up, none')
    fail(pool, m)
  }
  t.equal(pool.select([]), null)
  t.same(pool.downFailure(), { error: refused, phase: 'connect' })
  t.same(pool.restingFailure(), { error: refused, phase: 'connect' })
})

t.test('pool: half-open origins are available, but the pool is resting (no origin up)', async t => {
  const pool = poolOf(t, { health: { failures: 1, cooldown: '1ms' } })
  for (const m of pool.members) fail(pool, m)
  await new Promise(resolve => setTimeout(resolve, 10))
  t.equal(pool.downFailure(), null, 'half-open ones may take a request')
  t.same(pool.restingFailure(), { error: refused, phase: 'connect' }, 'but none is up')
  t.not(pool.select([]), null)
})

t.test('pool: a single origin is tried once, and not while down', async t => {
  const pool = poolOf(t, { origins: [ORIGINS[0]], health: { failures: 1, cooldown: '1h' } })
  const only = pool.members[0] as PoolMember
  t.equal(pool.select([]), only)
  t.equal(pool.select([only]), null, 'no second try of the same origin')
  fail(pool, only)
  t.equal(pool.select([]), null)
})

t.test("a route's own origin is always dialled: no passive health marks it down", async t => {
  const edge = runtimeOf({ origin: ORIGINS[0] })
  t.teardown(() => edge.close())
  const pool = edge.state.pools[0] as OriginPool
  const only = pool.members[0] as PoolMember
  for (let i = 0; i < 10; i++) only.health.failed(refused, 'connect')
  t.equal(pool.select([]), only)
})

t.test('pool: slow start gives an origin back from down a small share, and all of it without slow start', async t => {
  const share = (pool: OriginPool, n: number): number => {
    let got = 0
    for (let i = 0; i < n; i++) if (pool.select([]) === pool.members[1]) got++
    return got
  }
  const slow = poolOf(t, { policy: 'least_in_flight', origins: ORIGINS.slice(0, 2), slow_start: '1h' })
  const [a, b] = slow.members as [PoolMember, PoolMember]
  a.inFlight = 10
  t.equal(share(slow, 100), 100, 'up: the less busy takes every request')
  b.health.condition.dialFailed(refused, 0.3)
  t.equal(b.health.condition.condition, 'down')
  b.health.condition.connected(1)
  t.equal(b.health.condition.condition, 'recovering')
  t.equal(b.weight(), 0.05, 'at first 5%')
  // Kept in with probability 0.05 each time: about 50 of 1000 (a bound 14 deviations
  // wide: the draws are Math.random's, the outcome is not in doubt).
  const got = share(slow, 1000)
  t.ok(got > 0 && got < 150, `recovering, it got ${got} of 1000 though it is the least busy`)
  const off = poolOf(t, { policy: 'least_in_flight', origins: ORIGINS.slice(0, 2), slow_start: '0s' })
  const [x, y] = off.members as [PoolMember, PoolMember]
  x.inFlight = 10
  y.health.condition.dialFailed(refused, 0.3)
  y.health.condition.connected(1)
  t.equal(y.health.condition.condition, 'up', 'no slow start: straight back up')
  t.equal(share(off, 100), 100)
})

t.test('pool: adaptive concurrency is per origin, and only when the pool has it on', async t => {
  t.equal(poolOf(t, {}).members[0]?.adaptive, null)
  const on = poolOf(t, { adaptive_concurrency: true })
  t.ok(on.members[0]?.adaptive instanceof AdaptiveLimit)
  t.not(on.members[0]?.adaptive, on.members[1]?.adaptive, 'each origin learns its own limit')
})
