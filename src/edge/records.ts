// Building the two log records from what a request carried (types live in log.ts).

import { performance } from 'node:perf_hooks'
import type { DialError } from '../errors.js'
import type { Classification, Phase } from '../errors/classify.js'
import type { AccessRecord, FailureRecord, Timings } from '../log.js'
import { kDialInfo } from '../origin/dial.js'
import type { EdgeContext } from './context.js'

const ms = (value: number): number => Math.round(value * 10) / 10

/** The failure's message where its code was found, not a wrapper's text. */
function messageFor (err: unknown, code: string | null): string {
  for (let e = err, depth = 0; typeof e === 'object' && e !== null && depth < 8; depth++) {
    const { code: c, message, cause } = e as { code?: unknown, message?: unknown, cause?: unknown }
    if (c === code || cause === undefined) return String(message ?? '')
    e = cause
  }
  return String(err)
}

export interface FailureExtras {
  truncated?: boolean
  injected?: boolean
  timings?: Partial<Timings>
}

export function failureRecord (ctx: EdgeContext, err: unknown, dialErr: DialError | null, phase: Phase,
  c: Classification, extra: FailureExtras = {}): FailureRecord {
  const info = ctx.socket?.[kDialInfo]
  const dialTimings = dialErr?.timings ?? (info !== undefined && ctx.socketFresh ? info.timings : null)
  const localAddress = dialErr !== null ? dialErr.localAddress : info?.localAddress ?? null
  const localPort = dialErr !== null ? dialErr.localPort : info?.localPort ?? null
  return {
    msg: 'origin failure',
    edge_status: c.status,
    ray_id: ctx.ray,
    origin: {
      url: ctx.originUrl ?? '',
      address: dialErr?.address ?? info?.address ?? null,
      port: dialErr?.port ?? info?.port ?? null
    },
    error: { code: c.code, message: messageFor(err, c.code) },
    timings: {
      dns_ms: dialTimings?.dns_ms ?? null,
      connect_ms: dialTimings?.connect_ms ?? null,
      tls_ms: dialTimings?.tls_ms ?? null,
      ttfb_ms: ctx.ttfbMs === null ? null : ms(ctx.ttfbMs),
      total_ms: ms(performance.now() - ctx.start),
      ...extra.timings
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
    route: ctx.route
  }
}

export function accessRecord (ctx: EdgeContext, method: string, host: string, path: string, status: number): AccessRecord {
  const info = ctx.socketFresh ? ctx.socket?.[kDialInfo] : undefined
  return {
    msg: 'access',
    method,
    host,
    path,
    status,
    ray_id: ctx.ray,
    duration_ms: ms(performance.now() - ctx.start),
    route: ctx.route,
    edge_status: ctx.edgeStatus,
    ttfb_ms: ctx.ttfbMs === null ? null : ms(ctx.ttfbMs),
    connect_ms: info?.timings.connect_ms ?? null
  }
}
