// What is written down: one access line per request, one failure line per failed
// origin attempt. The record shapes are declared here once; tests parse them as such.

import pino, { type Logger } from 'pino'
import { BatchedStdout } from './log-stream.js'
import { prettyStream } from './pretty-log.js'
import type { UnknownErrorCause } from './status/catalog.js'
import type { DialAttempt, Phase } from './status/errors.js'

export interface Timings {
  dns_ms: number | null
  connect_ms: number | null
  tls_ms: number | null
  ttfb_ms: number | null
  total_ms: number
}

export interface FailureRecord {
  msg: 'origin failure'
  edge_status: number
  ray_id: string
  origin: { url: string, address: string | null, port: number | null }
  error: { code: string | null, message: string }
  timings: Timings
  attempt: number
  /** Where the request was when it failed. */
  phase: Phase
  /** Why this status, in words (from the classification table). */
  why: string
  /** 520's sub-cause: reset, empty, invalid, headers_too_large. */
  cause: UnknownErrorCause | null
  /** False when no classification rule matched (the 502 fallback). */
  classified: boolean
  /** Every address tried, with its error code (null for the one that connected). */
  dialled: DialAttempt[]
  /** The proxy's own end of the connection: what the origin's firewall saw. */
  source: { address: string, port: number } | null
  /** The status could not change (headers were already sent): the client got a truncated body. */
  truncated: boolean
  injected: boolean
  route: string | null
  /** The pool of the route (a route's single `origin:` is a pool of its own). */
  pool: string | null
}

export interface AccessRecord {
  msg: 'access'
  method: string
  host: string
  path: string
  /** 499 when the client left before the response was complete. */
  status: number
  ray_id: string
  duration_ms: number
  route: string | null
  /** Set when the status was produced by the edge rather than the origin. */
  edge_status: number | null
  /** Time to the origin's response headers; null when none arrived. */
  ttfb_ms: number | null
  /** TCP connect time of the origin connection, when this request opened it. */
  connect_ms: number | null
  pool: string | null
  /** The origin of the last attempt (its configured URL's origin), null when none was tried. */
  origin: string | null
  /** The rule that refused the request before any origin saw it, when one did. */
  refused?: string
}

export type LogFormat = 'json' | 'pretty'

let stampedAt = 0
let stamp = ''
/**
 * pino's isoTime, made once per millisecond: a Date and its ISO string per line were a
 * quarter of the access line's cost, and lines come many to a millisecond under load.
 */
function isoTime (): string {
  const now = Date.now()
  if (now !== stampedAt) {
    stampedAt = now
    stamp = `,"time":"${new Date(now).toISOString()}"`
  }
  return stamp
}

export function createLogger (level: string, format: LogFormat, stream?: NodeJS.WritableStream): Logger {
  const options: pino.LoggerOptions = {
    level,
    base: null,
    timestamp: isoTime,
    // "warn" reads better than 40 in a log line an operator greps at 3 a.m.
    formatters: { level: (label: string) => ({ level: label }) }
  }
  if (format === 'pretty') return pino(options, prettyStream(stream))
  // Lines are written in batches (log-stream.ts): a write per line cost more than the
  // request it logged.
  return pino(options, stream ?? new BatchedStdout())
}
