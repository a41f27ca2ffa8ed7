import t from 'tap'
import { OriginHealth } from '../../src/origin/health.js'
import { selector } from '../../src/origin/select.js'

t.test('passive health: down after N failures, half-open after the cool-down, one trial', async t => {
  let now = 1000
  const h = new OriginHealth({ passive: true, failures: 3, cooldownMs: 10_000, check: null }, () => now)
  h.failed({ code: 'X522' }, 'connect')
  h.failed({ code: 'X522' }, 'connect')
  t.equal(h.state(), 'up', 'two failures: still up')
  h.failed({ code: 'X522' }, 'connect')
  t.equal(h.state(), 'down')
  t.equal(h.available(), false)
  t.same(h.lastFailure, { error: { code: 'X522' }, phase: 'connect' })
  now += 9_999
  t.equal(h.state(), 'down', 'still resting')
  now += 1
  t.equal(h.state(), 'half-open')
  h.acquire()
  t.equal(h.available(), false, 'only one trial request while half-open')
  h.failed({ code: 'X521' }, 'connect')
  t.equal(h.state(), 'down', 'a failed trial rests again at once')
  now += 10_000
  h.acquire()
  h.succeeded()
  t.equal(h.state(), 'up', 'a good trial brings it back')
  h.failed({ code: 'X521' }, 'connect')
  t.equal(h.state(), 'up', 'the count restarted')
})

t.test('a trial that ends without an answer frees the half-open slot', async t => {
  let now = 0
  const h = new OriginHealth({ passive: true, failures: 1, cooldownMs: 100, check: null }, () => now)
  h.failed({ code: 'X522' }, 'connect')
  now = 100
  h.acquire()
  t.equal(h.available(), false)
  h.released()
  t.equal(h.state(), 'half-open')
})

t.test('policies', async t => {
  const a = { name: 'a', inFlight: 5 }
  const b = { name: 'b', inFlight: 1 }
  const c = { name: 'c', inFlight: 3 }
  const rr = selector('round_robin')
  t.same([rr([a, b, c]), rr([a, b, c]), rr([a, b, c]), rr([a, b, c])].map(x => x?.name), ['a', 'b', 'c', 'a'])
  t.equal(selector('least_in_flight')([a, b, c])?.name, 'b')
  const seq = [0.0, 0.5] // picks a (index 0) and then the second of the other two: c
  let i = 0
  const two = selector('random_two', () => seq[i++ % 2] as number)
  t.equal(two([a, b, c])?.name, 'c', 'of a (5) and c (3), the less loaded')
  t.equal(two([a])?.name, 'a')
  t.equal(rr([]), undefined)
  t.equal(selector('least_in_flight')([]), undefined)
})

t.test('a single route origin is always dialled (no passive marking)', async t => {
  const h = new OriginHealth({ passive: false, failures: 1, cooldownMs: 10_000, check: null })
  h.failed({ code: 'X522' }, 'connect')
  h.failed({ code: 'X522' }, 'connect')
  t.equal(h.state(), 'up')
  t.same(h.lastFailure, { error: { code: 'X522' }, phase: 'connect' })
})
