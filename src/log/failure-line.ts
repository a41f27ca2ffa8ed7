// The failure line (one per failed origin attempt), from plain facts: the edge turns its
// Exchange and Attempt into a FailureContext (edge/records.ts), `highproxy/fastify` fills
// one from someone else's request (fastify/on-error.ts). Nothing here knows either.

import type { Condition } from '../status/conditions.js'
import { messageFor, type Classification } from '../status/classify.js'
import { dialErrorIn, type DialAttempt, type DialTimings, type Phase } from '../status/errors.js'
import type { ClientRecord, FailureRecord } from './log-schema.js'
import { roundMs } from './time.js'

export interface FailureExtras {
  truncated?: boolean
  injected?: boolean
  /** For an injected 522: the wait it stood for. */
  connectMs?: number
  /** What the client got for this failure; default the error page. */
  served?: FailureRecord['served']
}

/** What the line needs of the connection an attempt rode (origin/dial.ts's DialInfo extends it). */
export interface FailureConnection {
  timings: DialTimings
  address: string
  port: number
  localAddress: string | null
  localPort: number | null
  attempts: DialAttempt[]
}

/**
 * What a failure line says about the request and the attempt, whoever made them: the
 * edge, or `highproxy/fastify` inside someone else's app.
 */
export interface FailureContext {
  ray: string
  /** The origin's configured URL ('' when unknown). */
  originUrl: string
  /** The connection the attempt rode, when it had one. */
  info: FailureConnection | null
  /** That connection was dialled for this attempt: its dial timings are the attempt's. */
  fresh: boolean
  ttfbMs: number | null
  totalMs: number
  attempt: number
  route: string | null
  pool: string | null
  /** How the client reached the edge (or the app). */
  client: ClientRecord
  /** The origin's condition (origin/conditions.ts); null where nothing tracks it. */
  condition?: Condition | null
}

/** Milliseconds with one decimal, or null for what did not happen. */
export const roundedOrNull = (ms: number | null): number | null => ms === null ? null : roundMs(ms)

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
      ttfb_ms: roundedOrNull(ctx.ttfbMs),
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
