// OriginCondition's judgement, on a clock the test moves: each signal, the thresholds,
// the words of the evidence, how drowning and down end, and slow start's weight.

import t from 'tap'
import { OriginCondition, retransmitStep, type Transition } from '../../src/origin/conditions.js'
import { ConnectFailedError, ConnectTimeoutError, DnsLookupError, type DialFacts } from '../../src/status/errors.js'

const facts = (ms: number): DialFacts => ({
  phase: 'connect', timings: { dns_ms: 0, connect_ms: ms, tls_ms: null }, attempts: [], address: '127.0.0.1', port: 9, localAddress: null, localPort: null
})
const refused = new ConnectFailedError(facts(0.3), Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }))
const unreachable = new ConnectFailedError(facts(0.2), new AggregateError([Object.assign(new Error('x'), { code: 'EHOSTUNREACH' })]))
const timedOut = new ConnectTimeoutError(facts(3000), 3000)

function condition (slowStartMs = 30_000): { c: OriginCondition, changes: Transition[], clock: { now: number } } {
  const clock = { now: 1_000_000 }
  const changes: Transition[] = []
  const c = new OriginCondition({ slowStartMs, now: () => clock.now, onChange: x => changes.push(x) })
  return { c, changes, clock }
}

t.test('retransmit-shaped connect times: whole seconds, from 1 s', async t => {
  t.equal(retransmitStep(12), null)
  t.equal(retransmitStep(900), null)
  t.equal(retransmitStep(960), 1000, 'a timer a little early')
  t.equal(retransmitStep(1003), 1000)
  t.equal(retransmitStep(1550), 1000, 'a busy loop adds a little')
  t.equal(retransmitStep(1700), null, 'between steps: slow, not a retransmit')
  t.equal(retransmitStep(2040), 2000, 'linear retransmits (tcp_syn_linear_timeouts)')
  t.equal(retransmitStep(3010), 3000)
  t.equal(retransmitStep(7100), 7000)
})

t.test('one refusal is down; one connect that goes through ends it (no slow start: up)', async t => {
  const { c, changes } = condition(0)
  c.dialFailed(refused, 0.3)
  t.equal(c.condition, 'down')
  t.equal(c.evidence, 'its last connect was refused (RST): nothing listens there')
  c.dialFailed(refused, 0.3)
  t.equal(c.evidence, 'its last 2 connects were refused (RST): nothing listens there')
  c.dialFailed(unreachable, 0.2)
  t.equal(c.evidence, 'its last connect was unreachable: no route to it')
  c.connected(0.4)
  t.equal(c.condition, 'up')
  t.same(changes.map(x => `${x.from}→${x.to}`), ['up→down', 'down→up'], 'each change once')
})

t.test('DNS and TLS failures leave the condition alone', async t => {
  const { c, changes } = condition()
  c.dialFailed(new DnsLookupError({ ...facts(0), phase: 'dns' }, Object.assign(new Error('x'), { code: 'ENOTFOUND' })), 0)
  t.equal(c.condition, 'up')
  t.same(changes, [])
})

t.test('connect timeouts: drowning at the first; the evidence counts the window', async t => {
  const { c } = condition()
  for (let i = 0; i < 6; i++) c.connected(0.5)
  c.dialFailed(timedOut, 3000)
  t.equal(c.condition, 'drowning')
  t.equal(c.evidence, '1 of its last 7 connects timed out')
  c.connected(1010)
  t.equal(c.evidence, '1 of its last 8 connects timed out; 1 of 8 connects took 1 s, which is the kernel retrying dropped SYNs')
})

t.test('a dial that waited at the pending-connect cap sent no SYN: it is not a connect', async t => {
  const { c, changes } = condition()
  for (let i = 0; i < 3; i++) c.connected(0.5)
  const waited = new ConnectTimeoutError(facts(3000), 3000, 64)
  for (let i = 0; i < 50; i++) c.dialFailed(waited, 3000)
  t.equal(c.condition, 'up', 'waiters alone say nothing about the origin')
  t.same(changes, [])
  c.dialFailed(timedOut, 3000)
  for (let i = 0; i < 50; i++) c.dialFailed(waited, 3000)
  t.equal(c.condition, 'drowning')
  t.equal(c.evidence, '1 of its last 4 connects timed out', 'only the connect that sent its SYN is counted')
})

t.test('the issue\'s example: timeouts, the rest after retransmits', async t => {
  const { c } = condition()
  for (let i = 0; i < 14; i++) c.dialFailed(timedOut, 3000)
  for (const ms of [1010, 2990, 1100, 1020, 3050, 1005]) c.connected(ms)
  t.equal(c.evidence, '14 of its last 20 connects timed out; the rest took 1–3 s, which is the kernel retrying dropped SYNs')
})

t.test('one retransmit is a lost packet; two are drowning', async t => {
  const { c } = condition()
  c.connected(1020)
  t.equal(c.condition, 'up')
  c.connected(0.4)
  c.connected(2030)
  t.equal(c.condition, 'drowning')
  t.equal(c.evidence, '2 of 3 connects took 1–2 s, which is the kernel retrying dropped SYNs')
})

t.test('requests accepted and never answered: two are drowning', async t => {
  const { c } = condition()
  c.noResponse()
  t.equal(c.condition, 'up')
  c.noResponse()
  t.equal(c.condition, 'drowning')
  t.equal(c.evidence, '2 requests on newly accepted connections got no response')
})

t.test('answers far slower than its usual, with more in flight: drowning; its usual does not follow', async t => {
  const { c, clock } = condition()
  for (let i = 0; i < 40; i++) { c.answered(20 + (i % 3), 1); clock.now += 50 }
  t.equal(c.condition, 'up')
  // Slower, but few in flight: a slow request, not a queue.
  for (let i = 0; i < 10; i++) { c.answered(900, 1); clock.now += 50 }
  t.equal(c.condition, 'up', 'slow answers alone are not drowning')
  // A queue builds: more in flight, each answer later.
  for (let i = 1; i <= 10 && c.condition === 'up'; i++) { c.answered(200 * i, 4 + i); clock.now += 100 }
  t.equal(c.condition, 'drowning')
  t.match(c.evidence, /^its responses take \d+ ms against its usual (2\d|3\d|4\d) ms, with \d+ requests in flight$/)
  // Three answers at the usual pace end it.
  for (let i = 0; i < 6; i++) c.answered(21, 1)
  t.equal(c.condition, 'recovering')
})

t.test('drowning ends after three clean connects in a row; recovering ramps, then up by its timer', async t => {
  const { c, changes, clock } = condition(1000)
  c.dialFailed(timedOut, 3000)
  c.connected(0.5)
  c.connected(0.5)
  c.dialFailed(timedOut, 3000)
  t.equal(c.condition, 'drowning', 'a timeout between clean ones restarts the count')
  c.connected(0.5)
  c.connected(0.5)
  c.connected(0.5)
  t.equal(c.condition, 'recovering')
  t.match(c.evidence, /back from drowning: its share of traffic ramps up over 1 s/)
  t.equal(c.weight(), 0.05, 'a small share at first')
  clock.now += 500
  t.equal(c.weight(), 0.5)
  clock.now += 600
  t.equal(c.weight(), 1)
  await new Promise(resolve => setTimeout(resolve, 1100))
  t.equal(c.condition, 'up', 'the slow start timer ended it')
  t.equal(c.evidence, '')
  t.same(changes.map(x => x.to), ['drowning', 'recovering', 'up'])
})

t.test('a refusal while recovering is down again, and the ramp stops', async t => {
  const { c } = condition(60_000)
  c.dialFailed(refused, 0.3)
  c.connected(0.4)
  t.equal(c.condition, 'recovering')
  c.dialFailed(refused, 0.3)
  t.equal(c.condition, 'down')
  t.equal(c.weight(), 1, 'weight is only for recovering')
})
