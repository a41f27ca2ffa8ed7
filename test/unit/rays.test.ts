// The ray store: a fixed ring of failure records, looked up by ray id.

import t from 'tap'
import { DEFAULT_RAY_BUFFER, RayStore } from '../../src/admin/rays.js'
import type { FailureRecord } from '../../src/log/log.js'

const rayN = (n: number): string => n.toString(16).padStart(16, '0')

function record (ray: string, attempt = 1, status = 521): FailureRecord {
  return {
    msg: 'origin failure',
    pool: 'web',
    edge_status: status,
    ray_id: ray,
    origin: { url: 'http://127.0.0.1:1', address: '127.0.0.1', port: 1 },
    error: { code: 'HPX_ERR_CONNECT', message: 'TCP connection to the origin failed', cause: { code: 'ECONNREFUSED', message: 'connect ECONNREFUSED 127.0.0.1:1' } },
    timings: { dns_ms: null, connect_ms: 0.3, tls_ms: null, ttfb_ms: null, total_ms: 0.5 },
    attempt,
    phase: 'connect',
    why: 'the origin refused the connection',
    cause: null,
    classified: true,
    dialled: [],
    source: null,
    truncated: false,
    injected: false,
    served: 'page',
    origin_condition: 'down',
    route: 'default',
    client: { protocol: 'HTTP/1.1', tls_protocol: null, tls_cipher: null }
  }
}

t.test('default capacity is 10,000; a bad capacity is refused', async t => {
  t.equal(new RayStore().capacity, DEFAULT_RAY_BUFFER)
  t.equal(DEFAULT_RAY_BUFFER, 10_000)
  t.throws(() => new RayStore(0), RangeError)
  t.throws(() => new RayStore(1.5), RangeError)
})

t.test('add and get; unknown ray → []', async t => {
  const store = new RayStore(4)
  t.same(store.get(rayN(1)), [])
  const r = record(rayN(1))
  store.add(r)
  t.equal(store.size, 1)
  t.equal(store.get(rayN(1))[0], r, 'the very record, not a copy')
  t.same(store.get(rayN(2)), [])
})

t.test('every attempt of a ray, in order, interleaved with other rays', async t => {
  const store = new RayStore(10)
  store.add(record(rayN(1), 1, 521))
  store.add(record(rayN(2), 1, 522))
  store.add(record(rayN(1), 2, 522))
  store.add(record(rayN(3), 1, 524))
  store.add(record(rayN(1), 3, 521))
  t.same(store.get(rayN(1)).map(r => [r.attempt, r.edge_status]), [[1, 521], [2, 522], [3, 521]])
  t.same(store.get(rayN(2)).map(r => r.attempt), [1])
  t.equal(store.rays, 3)
  t.equal(store.size, 5)
})

t.test('the oldest record leaves first; a ray loses its old attempts before its new ones', async t => {
  const store = new RayStore(3)
  store.add(record(rayN(1), 1)) // slot 0
  store.add(record(rayN(2), 1)) // slot 1
  store.add(record(rayN(1), 2)) // slot 2
  store.add(record(rayN(3), 1)) // evicts ray 1 attempt 1
  t.same(store.get(rayN(1)).map(r => r.attempt), [2], 'attempt 1 fell out of the ring')
  t.same(store.get(rayN(2)).map(r => r.attempt), [1])
  store.add(record(rayN(4), 1)) // evicts ray 2
  t.same(store.get(rayN(2)), [], 'ray 2 is gone')
  t.equal(store.rays, 3)
  store.add(record(rayN(1), 3)) // evicts ray 1 attempt 2, adds attempt 3
  t.same(store.get(rayN(1)).map(r => r.attempt), [3])
  store.add(record(rayN(1), 4)) // evicts ray 3
  store.add(record(rayN(1), 5)) // evicts ray 4
  t.same(store.get(rayN(1)).map(r => r.attempt), [3, 4, 5], 'the ring is all one ray now')
  t.equal(store.rays, 1)
  store.add(record(rayN(1), 6)) // evicts attempt 3: head and tail of the chain wrap
  t.same(store.get(rayN(1)).map(r => r.attempt), [4, 5, 6])
  t.equal(store.size, 3)
})

t.test('capacity 1 keeps the last record only', async t => {
  const store = new RayStore(1)
  store.add(record(rayN(1)))
  store.add(record(rayN(2)))
  t.same(store.get(rayN(1)), [])
  t.equal(store.get(rayN(2)).length, 1)
  store.add(record(rayN(2), 2))
  t.same(store.get(rayN(2)).map(r => r.attempt), [2])
  t.equal(store.rays, 1)
})

t.test('bounded: 3× capacity adds leave exactly capacity records, the newest ones', async t => {
  const capacity = 1000
  const store = new RayStore(capacity)
  // Rays of one, two and three attempts, so chains of every length cross the eviction edge.
  let n = 0
  let added = 0
  const order: string[] = []
  const attemptsOf: number[] = []
  while (added < 3 * capacity) {
    const ray = rayN(++n)
    const attempts = (n % 3) + 1
    for (let a = 1; a <= attempts && added < 3 * capacity; a++, added++) {
      store.add(record(ray, a))
      order.push(ray)
      attemptsOf.push(a)
    }
  }
  t.equal(store.size, capacity, 'records held stay at capacity')
  const kept = order.slice(-capacity)
  t.equal(store.rays, new Set(kept).size, 'the map holds exactly the rays still in the ring')
  t.ok(store.rays <= capacity)
  t.same(store.get(rayN(1)), [], 'the first ray is long gone')
  const newest = order[order.length - 1] as string
  t.ok(store.get(newest).length >= 1)
  // The ray straddling the eviction edge keeps only its newer attempts.
  const edgeRay = kept[0] as string
  const keptAttempts = attemptsOf.slice(-capacity)
  const expected = keptAttempts.filter((_a, i) => kept[i] === edgeRay)
  t.same(store.get(edgeRay).map(r => r.attempt), expected, `ray at the edge keeps attempts ${expected.join(',')}, in order`)
  let total = 0
  for (const ray of new Set(kept)) total += store.get(ray).length
  t.equal(total, capacity, 'every held record is reachable by its ray')
})
