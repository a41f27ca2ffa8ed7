// The retry budget of a pool (Envoy's retry budget, with its numbers): at most `percent`
// of the pool's requests in flight may be retries in flight at one time, and at least
// `minRetries` whatever the share. When every origin of a pool is failing, each failed
// attempt that is retried adds load exactly where there is none to spare (a connect
// timeout retried elsewhere doubles the SYNs); past the budget the failure is answered.
//
// The pool owns it because it sees every request of the pool; the proxy loop's tryAgain
// asks it, and tells it when a request or a retry starts and ends. What it does not
// limit: failover away from an origin that is `down` (refused or unreachable, as passive
// health has it), since then the retry goes where the request can still be served, and
// costs the dead origin nothing.

import type { RetryBudgetConfig } from '../config/schema.js'

export class RetryBudget {
  /** Requests of the pool in flight (in the proxy loop). */
  requests = 0
  /** Retries counted against the budget, in flight. */
  retries = 0
  /** Retries the budget refused (a metric). */
  refused = 0

  /** @param origins how many origins the pool has: with one, there is nowhere to fail over to */
  constructor (private readonly config: RetryBudgetConfig, readonly origins = 2) {}

  /** How many retries may be in flight now. */
  allowed (): number {
    return Math.max(this.config.minRetries, Math.floor(this.requests * this.config.percent / 100))
  }

  /** Whether one more retry fits; counts it when it does (`retryEnded` gives it back). */
  take (): boolean {
    if (this.retries >= this.allowed()) {
      this.refused++
      return false
    }
    this.retries++
    return true
  }

  retryEnded (): void {
    this.retries--
  }
}
