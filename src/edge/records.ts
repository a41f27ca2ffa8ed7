// The two log records, built from what a request carried (their shapes live in log/log-schema.ts).

import type { AccessRecord, ClientRecord, FailureRecord } from '../log/log.js'
import type { Condition } from '../origin/conditions.js'
import type { DialInfo } from '../origin/dial.js'
import { messageFor, type Classification } from '../status/classify.js'
import { dialErrorIn, type Phase } from '../status/errors.js'
import { roundMs } from '../log/time.js'
import type { Attempt } from './attempt.js'
import type { Exchange } from './exchange.js'

export interface FailureExtras {
  truncated?: boolean
  injected?: boolean
  /** For an injected 522: the wait it stood for. */
  connectMs?: number
  /** What the client got for this failure; default the error page. */
  served?: FailureRecord['served']
}

const orNull = (ms: number | null): number | null => ms === null ? null : roundMs(ms)

/**
 * What a failure line says about the request and the attempt, whoever made them: the
 * edge, or `highproxy/fastify` inside someone else's app.
 */
export interface FailureContext {
  ray: string
  /** The origin's configured URL ('' when unknown). */
  originUrl: string
  /** The connection the attempt rode, when it had one. */
  info: DialInfo | null
  /** That connection was dialled for this attempt: its dial timings are the attempt's. */
  fresh: boolean
  ttfbMs: number | null
  totalMs: number
  attempt: number
  route: string | null
  pool: string | null
  /** How the client reached the edge (or the app). */
  client: ClientRecord
  /** The origin's condition (conditions.ts); null where nothing tracks it. */
  condition?: Condition | null
}

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

export function failureLine (ctx: FailureContext, err: unknown, phase: Phase, c: Classification,
  extra: FailureExtras = {}): FailureRecord {
  const dialErr = dialErrorIn(err)
  const info = ctx.info
  const dialTimings = dialErr?.timings ?? (ctx.fresh ? info?.timings ?? null : null)
  const localAddress = dialErr !== null ? dialErr.localAddress : info?.localAddress ?? null
  const localPort = dialErr !== null ? dialErr.localPort : info?.localPort ?? null
  return {
    msg: 'origin failure',
    edge_status: c.status,
    ray_id: ctx.ray,
    origin: {
      url: ctx.originUrl,
      address: dialErr?.address ?? info?.address ?? null,
      port: dialErr?.port ?? info?.port ?? null
    },
    error: {
      code: c.errorCode,
      message: messageFor(err, c.errorCode),
      cause: c.causeCode === null ? null : { code: c.causeCode, message: messageFor(err, c.causeCode) }
    },
    timings: {
      dns_ms: dialTimings?.dns_ms ?? null,
      connect_ms: extra.connectMs ?? dialTimings?.connect_ms ?? null,
      tls_ms: dialTimings?.tls_ms ?? null,
      ttfb_ms: orNull(ctx.ttfbMs),
      total_ms: roundMs(ctx.totalMs)
    },
    attempt: ctx.attempt,
    phase,
    why: c.why,
    cause: c.cause,
    classified: c.known,
    dialled: dialErr?.attempts ?? info?.attempts ?? [],
    source: localAddress === null ? null : { address: localAddress, port: localPort ?? 0 },
    truncated: extra.truncated ?? false,
    injected: extra.injected ?? false,
    served: extra.served ?? 'page',
    origin_condition: ctx.condition ?? null,
    route: ctx.route,
    pool: ctx.pool,
    client: ctx.client
  }
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
    ttfb_ms: orNull(attempt?.ttfbMs ?? null),
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
