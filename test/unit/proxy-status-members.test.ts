// Proxy-Status members of the edge's own answers (page/proxy-status.ts): built once and
// answered again for the same failure, never for another one.

import t from 'tap'
import { ProxyStatus } from '../../src/page/proxy-status.js'
import { classify } from '../../src/status/classify.js'

const failure = (code: string, details?: string): Error => Object.assign(new Error(code), details === undefined ? { code } : { code, details })

t.test('the same failure gets the same member; any fact that differs gets its own', async t => {
  const names = new ProxyStatus({ edgeName: 'hpx' })
  const timeout = classify(failure('HPX_ERR_CONNECT_TIMEOUT'), 'connect')
  const refused = classify(failure('ECONNREFUSED'), 'connect')
  const a = names.forFailure(timeout, failure('HPX_ERR_CONNECT_TIMEOUT'), 'pool-a')
  t.match(a, /^hpx;error=connection_timeout;next-hop="pool-a";details="[^"]+"$/)
  t.equal(names.forFailure(timeout, failure('HPX_ERR_CONNECT_TIMEOUT'), 'pool-a'), a)
  const facts: Array<[string, string]> = [
    ['another type', names.forFailure(refused, failure('ECONNREFUSED'), 'pool-a')],
    ['another pool', names.forFailure(timeout, failure('HPX_ERR_CONNECT_TIMEOUT'), 'pool-b')],
    ['a received status', names.forFailure(timeout, failure('HPX_ERR_CONNECT_TIMEOUT'), 'pool-a', 503)],
    ['the origin\'s condition', names.forFailure(timeout, failure('HPX_ERR_CONNECT_TIMEOUT'), 'pool-a', null, 'origin drowning: 14 of its last 20 connects timed out')],
    ['the error\'s details', names.forFailure(timeout, failure('HPX_ERR_CONNECT_TIMEOUT', 'waited behind 64 unanswered connects'), 'pool-a')]
  ]
  for (const [what, member] of facts) t.not(member, a, what)
  t.match(facts[0]?.[1], /error=connection_refused/)
  t.match(facts[1]?.[1], /next-hop="pool-b"/)
  t.match(facts[2]?.[1], /received-status=503/)
  t.match(facts[3]?.[1], /details="[^"]*; origin drowning: 14 of its last 20 connects timed out"/)
  t.match(facts[4]?.[1], /details="[^"]*; waited behind 64 unanswered connects"/)
  // Alternating failures (two pools failing at once) each keep their own member.
  for (let i = 0; i < 3; i++) {
    t.equal(names.forFailure(timeout, failure('HPX_ERR_CONNECT_TIMEOUT'), 'pool-a'), a)
    t.equal(names.forFailure(refused, failure('ECONNREFUSED'), 'pool-a'), facts[0]?.[1])
  }
})
