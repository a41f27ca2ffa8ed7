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
import type { Exchange } from './exchange.js'
import type { EdgeRuntime } from './runtime.js'
import { findCopy, sendCopy, type StaleRoute } from './stale.js'

/** A request tries at most this many origins: the first, and one more when nothing was sent. */
const MAX_ATTEMPTS = 2

export async function proxy (edge: EdgeRuntime, exchange: Exchange): Promise<void> {
  const pool = exchange.pool as OriginPool
  const stale = (exchange.route as NonNullable<Exchange['route']>).settings.stale
  if (stale?.serveWhenDown === true && staleWhileDown(edge, exchange, pool, stale)) return
  // The pool's retry budget counts this request while it is in the loop, and the retry it
  // spent, if any, until the request ends. (One function, no extra await on the healthy path.)
  const budget = pool.budget
  budget.requests++
  let spent = false
  try {
    let failure: Classification | null = null
    let last: Attempt | null = null
    let again: PoolMember | null = null
    for (;;) {
      const member: PoolMember | null = again ?? pool.select(exchange.tried)
      if (member === null) break
      // The attempt before this one answered nobody: its line says so.
      if (failure !== null && last !== null) logFailure(edge, exchange, last, last.error, last.phase, failure, { served: 'none' })
      exchange.tried.push(member)
      const attempt = new Attempt(exchange, member, exchange.tried.length, again !== null)
      exchange.attempt = attempt
      await attempt.run()
      if (attempt.ok) return
      last = attempt
      failure = failed(edge, exchange, attempt)
      if (failure === null) break
      const next = tryAgain(exchange, attempt, failure, budget)
      if (next === null) break
      if (next === 'another origin, budgeted') spent = true
      again = next === 'same origin' ? member : null
    }
    if (failure !== null && last !== null) answerFailure(edge, exchange, stale, last, last.error, last.phase, failure, { error: last.error, receivedStatus: last.originStatus === 0 ? null : last.originStatus })
    else if (exchange.tried.length === 0) poolDown(edge, exchange, pool, stale)
  } finally {
    budget.requests--
    if (spent) budget.retryEnded()
  }
}

/** The final failure's line, and its answer: the route's stored copy when Always online has one, else the error page. */
function answerFailure (edge: EdgeRuntime, exchange: Exchange, stale: StaleRoute | null, attempt: Attempt | null, err: unknown, phase: Phase,
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

/**
 * The one decision: where the next attempt goes, or null for none. `another origin,
 * budgeted` took a retry from the pool's budget (the caller gives it back when the
 * request ends).
 */
export function tryAgain (exchange: Pick<Exchange, 'tried' | 'aborted' | 'body' | 'method'>, outcome: Pick<Attempt, 'requestSent' | 'error' | 'fresh' | 'originStatus'>,
  c: Classification, budget: RetryBudget): Decision {
  if (exchange.tried.length >= MAX_ATTEMPTS || exchange.aborted) return null
  if (!outcome.requestSent && dialErrorIn(outcome.error) !== null) {
    // Every origin of the pool tried (a route's single origin): nowhere to go, nothing to count.
    if (exchange.tried.length >= budget.origins) return null
    // Away from a down origin the retry costs it nothing and goes where the request can be served.
    if (DOWN.has(c.status)) return 'another origin'
    return budget.take() ? 'another origin, budgeted' : null
  }
  const dropped = c.status === 520 && (c.cause === 'empty' || c.cause === 'reset')
  if (dropped && !outcome.fresh && outcome.originStatus === 0 && exchange.body === null && IDEMPOTENT.has(exchange.method)) return 'same origin'
  return null
}

/**
 * What a failed attempt means: its classification, with the origin's health; null when
 * nothing is left to answer (the client left, its body was too large, or the status was
 * already on the wire: then with its failure line). The caller writes the others' once it
 * knows what the client gets.
 */
function failed (edge: EdgeRuntime, exchange: Exchange, attempt: Attempt): Classification | null {
  const c = classify(attempt.error, attempt.phase)
  const health = attempt.member.health
  // A client that left, or sent too much, is not the origin's failure.
  if (c.status === CLIENT_ABORT_STATUS || c.status === 413) {
    health.released()
    if (c.status === 413) {
      exchange.refused = 'body_too_large'
      answerError(edge, exchange, c, true)
    }
    return null
  }
  if (dialErrorIn(attempt.error) !== null) health.failed(attempt.error, attempt.phase)
  else if (attempt.originStatus === 0) health.released()
  if (attempt.headersSent) {
    // The status is on the wire: the only honest signal left is a cut connection.
    logFailure(edge, exchange, attempt, attempt.error, attempt.phase, c, { truncated: true, served: 'none' })
    exchange.truncated = true
    exchange.sink.cut()
    return null
  }
  return c
}

/** Every origin of the pool is marked down: answered at once from the last failure, without dialling. */
function poolDown (edge: EdgeRuntime, exchange: Exchange, pool: OriginPool, stale: StaleRoute | null): void {
  const last = pool.downFailure()
  const err = new PoolDownError(pool.config.name, pool.members.length, last?.error ?? null, last?.phase ?? 'connect')
  answerFailure(edge, exchange, stale, null, err, 'connect', classify(err, 'connect'), { error: err, receivedStatus: null })
}

/**
 * serve_when_down: every origin of the pool is resting after failures (down, or
 * half-open and waiting for its one trial) and a copy can answer: it answers at once,
 * without a dial or its timeout. A request with no copy goes on, and may be the trial.
 */
function staleWhileDown (edge: EdgeRuntime, exchange: Exchange, pool: OriginPool, stale: StaleRoute): boolean {
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
const unread = (exchange: Exchange): boolean => exchange.body !== null && !exchange.req.complete
