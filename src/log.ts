// What is written down: one access line per request, one failure line per failed
// origin attempt. The record shapes are declared here once; tests parse them as such.

import pino, { type Logger } from 'pino'
import type { DialAttempt } from './errors.js'
import type { UnknownErrorCause } from './errors/catalog.js'
import type { Phase } from './errors/classify.js'
import { prettyStream } from './pretty-log.js'

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
  /**
   * The route's pool. Optional only until edge/records.ts fills it (the core rebuild);
   * readers take a missing one as null.
   */
  pool?: string | null
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
  /** The route's pool; optional until edge/records.ts fills it, read as null when missing. */
  pool?: string | null
  /**
   * The configured URL of the origin the final attempt went to (`http://127.0.0.1:9000`),
   * null when no origin was tried; optional until edge/records.ts fills it.
   */
  origin?: string | null
}

export type LogFormat = 'json' | 'pretty'

export function createLogger (level: string, format: LogFormat, stream?: NodeJS.WritableStream): Logger {
  const options: pino.LoggerOptions = {
    level,
    base: null,
    timestamp: pino.stdTimeFunctions.isoTime,
    // "warn" reads better than 40 in a log line an operator greps at 3 a.m.
    formatters: { level: (label: string) => ({ level: label }) }
  }
  if (format === 'pretty') return pino(options, prettyStream(stream))
  // Lines are gathered up to 4 KiB (or 50 ms) per write: a write syscall per line was 7.8%
  // of the healthy path's busy CPU (1.3% now); pino flushes the rest when the process exits.
  const buffered = { dest: 1, sync: false, minLength: 4096, periodicFlush: 50 }
  return pino(options, stream ?? pino.destination(buffered as Parameters<typeof pino.destination>[0]))
}
