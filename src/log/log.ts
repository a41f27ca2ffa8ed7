// What is written down: one access line per request, one failure line per failed
// origin attempt. The record shapes are declared once, in log-schema.ts.

import pino, { type Logger } from 'pino'
import { BatchedStdout } from './log-stream.js'
import { prettyStream } from './pretty-log.js'

export type { AccessRecord, ClientRecord, FailureRecord, LogFields, LogpushRecord, Timings } from './log-schema.js'

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
