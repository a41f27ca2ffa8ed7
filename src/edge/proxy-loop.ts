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

import { CLIENT_ABORT_STATUS, classify, type Classification } from '../status/classify.js'
import { PoolDownError, dialErrorIn } from '../status/errors.js'
import type { OriginPool, PoolMember } from '../origin/pool.js'
import { answerError, logFailure } from './answer.js'
import { Attempt } from './attempt.js'
import type { Exchange } from './exchange.js'
import type { EdgeRuntime } from './runtime.js'

/** A request tries at most this many origins: the first, and one more when nothing was sent. */
const MAX_ATTEMPTS = 2

export async function proxy (edge: EdgeRuntime, exchange: Exchange): Promise<void> {
  const pool = exchange.pool as OriginPool
  let failure: Classification | null = null
  let last: Attempt | null = null
  let again: PoolMember | null = null
  for (;;) {
    const member: PoolMember | null = again ?? pool.select(exchange.tried)
    if (member === null) break
    exchange.tried.push(member)
    const attempt = new Attempt(exchange, member, exchange.tried.length, again !== null)
    exchange.attempt = attempt
    await attempt.run()
    if (attempt.ok) return
    last = attempt
    failure = failed(edge, exchange, attempt)
    if (failure === null) break
    const next = tryAgain(exchange, attempt, failure)
    if (next === null) break
    again = next === 'same origin' ? member : null
  }
  if (failure !== null && last !== null) answerError(edge, exchange, failure, unread(exchange), { error: last.error, receivedStatus: last.originStatus === 0 ? null : last.originStatus })
  else if (exchange.tried.length === 0) poolDown(edge, exchange, pool)
}

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE'])

/** The one decision: where the next attempt goes, or null for none. */
function tryAgain (exchange: Exchange, outcome: Attempt, c: Classification): 'another origin' | 'same origin' | null {
  if (exchange.tried.length >= MAX_ATTEMPTS || exchange.aborted) return null
  if (!outcome.requestSent && dialErrorIn(outcome.error) !== null) return 'another origin'
  const dropped = c.status === 520 && (c.cause === 'empty' || c.cause === 'reset')
  if (dropped && !outcome.fresh && outcome.originStatus === 0 && exchange.body === null && IDEMPOTENT.has(exchange.method)) return 'same origin'
  return null
}

/**
 * What a failed attempt means: its classification, with the origin's health and the
 * failure line; null when nothing is left to answer (the client left, its body was too
 * large, or the status was already on the wire).
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
  logFailure(edge, exchange, attempt, attempt.error, attempt.phase, c, { truncated: attempt.headersSent })
  if (attempt.headersSent) {
    // The status is on the wire: the only honest signal left is a cut connection.
    exchange.truncated = true
    exchange.sink.cut()
    return null
  }
  return c
}

/** Every origin of the pool is marked down: answered at once from the last failure, without dialling. */
function poolDown (edge: EdgeRuntime, exchange: Exchange, pool: OriginPool): void {
  const last = pool.downFailure()
  const err = new PoolDownError(pool.config.name, pool.members.length, last?.error ?? null, last?.phase ?? 'connect')
  const c = classify(err, 'connect')
  logFailure(edge, exchange, null, err, 'connect', c)
  answerError(edge, exchange, c, unread(exchange), { error: err, receivedStatus: null })
}

/** Part of the request body was never read (the origin stopped reading it, or never got it): the connection cannot carry another request. */
const unread = (exchange: Exchange): boolean => exchange.body !== null && !exchange.req.complete
