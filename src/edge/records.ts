// The two log records, built from what a request carried (their shapes live in
// log/log-schema.ts): the access record, and the plain context the failure line
// (log/failure-line.ts) is written from, taken from an Exchange and its Attempt.

import { failureLine, roundedOrNull, type FailureExtras } from '../log/failure-line.js'
import type { AccessRecord, FailureRecord } from '../log/log.js'
import type { Classification } from '../status/classify.js'
import { dialErrorIn, type Phase } from '../status/errors.js'
import { roundMs } from '../log/time.js'
import type { Attempt } from './attempt.js'
import type { Exchange } from './exchange.js'

export type { FailureExtras }

export function failureRecord (exchange: Exchange, attempt: Attempt | null, err: unknown, phase: Phase,
  c: Classification, extra: FailureExtras = {}): FailureRecord {
  return failureLine({
    ray: exchange.ray,
    originUrl: attempt?.member.origin ?? exchange.pool?.members[0]?.origin ?? '',
    info: attempt?.connection?.info ?? null,
    fresh: attempt?.fresh === true,
    ttfbMs: attempt?.ttfbMs ?? null,
    totalMs: exchange.elapsed(),
    attempt: attempt?.number ?? exchange.tried.length,
    route: exchange.route?.config.name ?? null,
    pool: exchange.pool?.config.name ?? null,
    client: exchange.client.log,
    condition: (attempt?.member ?? exchange.pool?.members[0])?.health.condition.condition ?? null
  }, err, phase, c, extra)
}

export function accessRecord (exchange: Exchange, status: number): AccessRecord {
  const attempt = exchange.attempt
  const record: AccessRecord = {
    msg: 'access',
    method: exchange.method,
    host: exchange.host,
    path: exchange.path,
    status,
    ray_id: exchange.ray,
    duration_ms: roundMs(exchange.elapsed()),
    route: exchange.route?.config.name ?? null,
    edge_status: exchange.edgeStatus,
    ttfb_ms: roundedOrNull(attempt?.ttfbMs ?? null),
    connect_ms: connectMsOf(attempt),
    pool: exchange.pool?.config.name ?? null,
    origin: attempt?.member.origin ?? null,
    client: exchange.client.log
  }
  if (exchange.refused !== null) record.refused = exchange.refused
  return record
}

/**
 * The connect time of the last attempt, as its failure line has it: the new connection's,
 * or, when the dial itself failed (refused, timed out, a bad certificate), the time the
 * dial spent connecting. Null for a reused connection or when nothing was dialled.
 */
function connectMsOf (attempt: Attempt | null): number | null {
  if (attempt === null) return null
  if (attempt.fresh) return attempt.connection?.info.timings.connect_ms ?? null
  return dialErrorIn(attempt.error)?.timings.connect_ms ?? null
}
