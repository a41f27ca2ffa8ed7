// What the pending-connect cap, the retry budget and adaptive concurrency know about each
// origin right now, in one plain object: the metrics read it at each scrape, and the
// admin's /origins can show it beside the origin's condition. Reading it costs a few
// field reads; nothing is kept for it on the request path.

import type { AdaptiveView } from './adaptive.js'
import type { PendingConnectsView } from './pending-connects.js'
import type { OriginPool, PoolMember } from './pool.js'

export interface RetryBudgetView {
  /** The pool's requests in flight. */
  requests: number
  /** Retries in flight that the budget counts. */
  retries: number
  /** Retries it allows in flight right now. */
  allowed: number
  /** Retries it refused since start (those failures were answered). */
  refused: number
}

export interface OriginLoad {
  /** Requests at this origin (attempts, queued ones included). */
  inFlight: number
  /** The pending-connect cap; null when it is off (`max_pending_connects: 0`). */
  connects: PendingConnectsView | null
  /** Adaptive concurrency; null when the pool has it off. */
  adaptive: AdaptiveView | null
  /** The pool's retry budget (the same for every origin of the pool). */
  retryBudget: RetryBudgetView
}

export function memberLoad (pool: OriginPool, m: PoolMember): OriginLoad {
  const b = pool.budget
  return {
    inFlight: m.inFlight,
    connects: m.connections.connects?.view() ?? null,
    adaptive: m.adaptive?.view() ?? null,
    retryBudget: { requests: b.requests, retries: b.retries, allowed: b.allowed(), refused: b.refused }
  }
}
