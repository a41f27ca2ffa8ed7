// The proxy loop, for proxied requests and upgrades alike (Caddy's proxyLoopIteration /
// tryAgain): take an origin → one attempt → its outcome → one decision, try again or
// answer. A retry is a new Attempt, and there is at most one. It happens when:
// - nothing was sent (the attempt failed while dialling): on another origin of the pool,
//   whatever the method — the edge's rule;
// - an idempotent request without a body rode a connection the origin had already used,
//   and the origin closed or reset it before a byte of answer: that is the keep-alive
//   race (the origin dropped an idle connection just as it was reused), so the request
//   goes again on a fresh connection to the same origin (RFC 9112 §9.3.1; what Go's
//   transport and nginx do).
// A retry to another origin spends the pool's retry budget (origin/retry-budget.ts),
// unless the origin it leaves refused or was unreachable: past the budget the failure is
// answered, not retried.

import { CLIENT_ABORT_STATUS, classify, type Classification } from '../status/classify.js'
import { PoolDownError, dialErrorIn, type Phase } from '../status/errors.js'
import type { OriginPool, PoolMember } from '../origin/pool.js'
import type { RetryBudget } from '../origin/retry-budget.js'
import { answerError, logFailure, type Behind } from './answer.js'
import { Attempt } from './attempt.js'
import type { RoutedExchange } from './exchange.js'
import type { EdgeRuntime } from './runtime.js'
import { findCopy, sendCopy, type StaleRoute } from './stale.js'

/** A request tries at most this many origins: the first, and one more when nothing was sent. */
export const MAX_ATTEMPTS = 2

export async function proxy (edge: EdgeRuntime, exchange: RoutedExchange): Promise<void> {
  const pool = exchange.pool
  const stale = exchange.route.settings.stale
  if (stale?.serveWhenDown === true && staleWhileDown(edge, exchange, pool, stale)) return
  // The pool's retry budget counts this request while it is in the loop, and the retry it
  // spent, if any, until the request ends. (One function, no extra await on the healthy path.)
  const budget = pool.budget
  budget.requests++
  let spent = false
  try {
    const first = pool.select(exchange.tried)
    // Every origin of the pool is marked down: nothing to dial.
    if (first === null) { poolDown(edge, exchange, pool, stale); return }
    let member: PoolMember = first
    let freshOnly = false
    for (;;) {
      const attempt = new Attempt(exchange, member, exchange.tried.length + 1, freshOnly)
      exchange.attempting(attempt)
      await attempt.run()
      if (attempt.ok) return
      const c = failed(edge, exchange, attempt)
      if (c === null) return
      const next = tryAgain(exchange, attempt, c, budget)
      if (next === 'another origin, budgeted') spent = true
      const again: PoolMember | null = next === null ? null : next === 'same origin' ? member : pool.select(exchange.tried)
      if (again === null) {
        answerFailure(edge, exchange, stale, attempt, attempt.error, attempt.phase, c,
          { error: attempt.error, receivedStatus: attempt.originStatus === 0 ? null : attempt.originStatus })
        return
      }
      // Another attempt answers the client: this one answered nobody, and its line says so now.
      logFailure(edge, exchange, attempt, attempt.error, attempt.phase, c, { served: 'none' })
      member = again
      freshOnly = next === 'same origin'
    }
  } finally {
    budget.requests--
    if (spent) budget.retryEnded()
  }
}

/** The final failure's line, and its answer: the route's stored copy when Always online has one, else the error page. */
function answerFailure (edge: EdgeRuntime, exchange: RoutedExchange, stale: StaleRoute | null, attempt: Attempt | null, err: unknown, phase: Phase,
  c: Classification, behind: Behind): void {
  const copy = stale === null ? null : findCopy(stale, exchange, c.status, c.code === 'HPX_ERR_OVERLOADED')
  logFailure(edge, exchange, attempt, err, phase, c, { served: copy === null ? 'page' : 'stale' })
  if (stale === null || copy === null) answerError(edge, exchange, c, unread(exchange), behind)
  else sendCopy(edge, exchange, stale, copy, c, behind)
}

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE'])

/** Statuses that say the origin is down (refused, unreachable), not drowning: leaving it is never budgeted. */
const DOWN = new Set([521, 523])

export type Decision = 'another origin' | 'another origin, budgeted' | 'same origin' | null

/** What `tryAgain` reads of the request (an Exchange is one). */
export interface RequestFacts {
  /** The origins tried so far, the failed attempt's included: only their number counts. */
  readonly tried: { readonly length: number }
  readonly method: string
  /** The body the origin gets, when the request has one: a stream, read once. */
  readonly body: object | null
  /** The client left. */
  readonly aborted: boolean
}

/** What `tryAgain` reads of the failed attempt (an Attempt is one). */
export interface OutcomeFacts {
  /** Request bytes may have reached the origin. */
  readonly requestSent: boolean
  readonly error: Error | null
  /** Its connection was dialled for it (not an idle one reused). */
  readonly fresh: boolean
  /** The origin's status, 0 before its headers arrived. */
  readonly originStatus: number
}

/** The pool's retry budget, as `tryAgain` asks it: how many origins there are, and may one more retry go (spending it). */
export type BudgetFacts = Pick<RetryBudget, 'origins' | 'take'>

/**
 * The one decision: where the next attempt goes, or null for none. A pure function of
 * its inputs but for the budget, which is asked last, and only for a retry that would
 * spend it: `another origin, budgeted` took a retry from the pool's budget (the caller
 * gives it back when the request ends).
 * @param c the failed attempt's classification
 */
export function tryAgain (request: RequestFacts, outcome: OutcomeFacts, c: Classification, budget: BudgetFacts): Decision {
  const tries = request.tried.length
  if (tries >= MAX_ATTEMPTS || request.aborted) return null
  if (!outcome.requestSent && dialErrorIn(outcome.error) !== null) {
    // Every origin of the pool tried (a route's single origin): nowhere to go, nothing to count.
    if (tries >= budget.origins) return null
    // Away from a down origin the retry costs it nothing and goes where the request can be served.
    if (DOWN.has(c.status)) return 'another origin'
    return budget.take() ? 'another origin, budgeted' : null
  }
  const dropped = c.status === 520 && (c.cause === 'empty' || c.cause === 'reset')
  if (dropped && !outcome.fresh && outcome.originStatus === 0 && request.body === null && IDEMPOTENT.has(request.method)) return 'same origin'
  return null
}

/**
 * What a failed attempt means: its classification, with the origin's health; null when
 * nothing is left to answer (the client left, its body was too large, or the status was
 * already on the wire: then with its failure line). The caller writes the others' once it
 * knows what the client gets.
 */
function failed (edge: EdgeRuntime, exchange: RoutedExchange, attempt: Attempt): Classification | null {
  const c = classify(attempt.error, attempt.phase)
  const health = attempt.member.health
  // A client that left, or sent too much, is not the origin's failure.
  if (c.status === CLIENT_ABORT_STATUS || c.status === 413) {
    health.released()
    if (c.status === 413) {
      exchange.refuse('body_too_large')
      answerError(edge, exchange, c, true)
    }
    return null
  }
  if (dialErrorIn(attempt.error) !== null) health.failed(attempt.error, attempt.phase)
  else if (attempt.originStatus === 0) health.released()
  if (attempt.headersSent) {
    // The status is on the wire: the only honest signal left is a cut connection.
    logFailure(edge, exchange, attempt, attempt.error, attempt.phase, c, { truncated: true, served: 'none' })
    exchange.cut()
    return null
  }
  return c
}

/** Every origin of the pool is marked down: answered at once from the last failure, without dialling. */
function poolDown (edge: EdgeRuntime, exchange: RoutedExchange, pool: OriginPool, stale: StaleRoute | null): void {
  const last = pool.downFailure()
  const err = new PoolDownError(pool.config.name, pool.members.length, last?.error ?? null, last?.phase ?? 'connect')
  answerFailure(edge, exchange, stale, null, err, 'connect', classify(err, 'connect'), { error: err, receivedStatus: null })
}

/**
 * serve_when_down: every origin of the pool is resting after failures (down, or
 * half-open and waiting for its one trial) and a copy can answer: it answers at once,
 * without a dial or its timeout. A request with no copy goes on, and may be the trial.
 */
function staleWhileDown (edge: EdgeRuntime, exchange: RoutedExchange, pool: OriginPool, stale: StaleRoute): boolean {
  const last = pool.restingFailure()
  if (last === null) return false
  const err = new PoolDownError(pool.config.name, pool.members.length, last.error, last.phase)
  const c = classify(err, 'connect')
  const copy = findCopy(stale, exchange, c.status)
  if (copy === null) return false
  logFailure(edge, exchange, null, err, 'connect', c, { served: 'stale' })
  sendCopy(edge, exchange, stale, copy, c, { error: err, receivedStatus: null })
  return true
}

/** Part of the request body was never read (the origin stopped reading it, or never got it): the connection cannot carry another request. */
const unread = (exchange: RoutedExchange): boolean => exchange.body !== null && !exchange.req.complete
