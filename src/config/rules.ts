// Rules that tie two keys together: the schema checks each key alone, these check them
// side by side, as part of the same validation (one line naming the key, exit 2).
//
//   timeouts.client_headers ≤ timeouts.client_request   Node refuses a headers timeout
//                                                       longer than the request timeout
//                                                       (RangeError at start otherwise)
//   pools[].health.check.timeout ≤ …check.interval      a check must end before the next
//                                                       one starts
//   routes[]: pool or origin, not both (and one of them) — checked where routes resolve

import { ConfigError } from '../status/errors.js'
import { durationMs } from './duration.js'
import type { ConfigInput } from './schema.js'

export interface Rule {
  /** The key named in the error: the one to change. */
  key: string
  /** A problem in words, or null when the rule holds. */
  check: (input: ConfigInput) => string | null
}

const notLonger = (value: string, limitKey: string, limit: string): string | null =>
  durationMs(value) <= durationMs(limit) ? null : `must be at most ${limitKey} (${limit}) (got "${value}")`

export const RULES: readonly Rule[] = [
  {
    key: 'timeouts.client_headers',
    check: i => notLonger(i.timeouts.client_headers, 'timeouts.client_request', i.timeouts.client_request)
  }
]

export function checkRules (input: ConfigInput): void {
  for (const rule of RULES) {
    const problem = rule.check(input)
    if (problem !== null) throw new ConfigError(rule.key, problem)
  }
  input.pools.forEach((pool, i) => {
    const check = pool.health.check
    if (check === undefined) return
    const problem = notLonger(check.timeout, `pools.${i}.health.check.interval`, check.interval)
    if (problem !== null) throw new ConfigError(`pools.${i}.health.check.timeout`, problem)
  })
}
