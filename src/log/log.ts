// What is written down: one access line per request, one failure line per failed
// origin attempt. The record shapes are declared once, in log-schema.ts.

import { tracingChannel } from 'node:diagnostics_channel'
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

const { asJsonSym, lsCacheSym, chindingsSym, endSym, serializersSym, stringifiersSym, formattersSym } = pino.symbols
type AsJson = (this: Logger, obj: Record<string, unknown>, msg: unknown, num: number, time: string) => string
/** A pino instance's own state, under the symbols pino exports for integrations. */
const own = <T>(logger: object, key: symbol): T => (logger as Record<symbol, unknown>)[key] as T
/** pino's own diagnostics channel around its serializer: a subscriber gets pino's path, as without this module. */
const pinoAsJsonChannel = tracingChannel('pino_asJson')

/**
 * Every line serialized by one JSON.stringify. pino's serializer walks a record key by key,
 * escaping each key and string value into strings of its own and joining them: about 10 KB
 * of garbage for the two lines of a failed request. In a 522 storm the thousand answers
 * come together, and that garbage forced the young-generation collections that copied
 * every request still waiting (bench/storm-ab.mjs: the storm cost 0.69× with the lines
 * silenced). V8's JSON.stringify writes the same JSON into one string.
 *
 * The line is byte for byte what pino writes (test/unit/log-json.test.ts): pino's level,
 * time and bindings, then the record's own fields. pino keeps what only it does: a line
 * with a message argument, an `err` to serialize, int64 nanoseconds (the Logpush shape's
 * BigInt timestamps, which JSON.stringify refuses), a subscriber to its diagnostics, and a
 * child logger given serializers, redaction or a log formatter of its own.
 */
function stringifyLines (logger: Logger): void {
  const pinoAsJson = own<AsJson>(logger, asJsonSym)
  // A child shares these with the root unless it was given its own.
  const serializers = own<object>(logger, serializersSym)
  const stringifiers = own<object>(logger, stringifiersSym)
  const fast: AsJson = function (obj, msg, num, time) {
    if (msg !== undefined || obj.err !== undefined || typeof obj.EdgeStartTimestamp === 'bigint' || pinoAsJsonChannel.hasSubscribers ||
      own(this, serializersSym) !== serializers || own(this, stringifiersSym) !== stringifiers || own<{ log?: unknown }>(this, formattersSym).log !== undefined) {
      return pinoAsJson.call(this, obj, msg, num, time)
    }
    let json: string
    try {
      json = JSON.stringify(obj)
    } catch {
      return pinoAsJson.call(this, obj, msg, num, time)
    }
    // `this`: the logger or one of its children (each has its own bindings).
    const head = own<Record<number, string>>(this, lsCacheSym)[num] + time + own<string>(this, chindingsSym)
    const end = own<string>(this, endSym)
    return json.length === 2 ? head + end : head + ',' + json.slice(1, -1) + end
  }
  ;(logger as unknown as Record<symbol, unknown>)[asJsonSym] = fast
}

export function createLogger (level: string, format: LogFormat, stream?: NodeJS.WritableStream): Logger {
  const options: pino.LoggerOptions = {
    level,
    base: null,
    timestamp: isoTime,
    // "warn" reads better than 40 in a log line an operator greps at 3 a.m.
    formatters: { level: (label: string) => ({ level: label }) }
  }
  // Lines are written in batches (log-stream.ts): a write per line cost more than the
  // request it logged.
  const logger = format === 'pretty' ? pino(options, prettyStream(stream)) : pino(options, stream ?? new BatchedStdout())
  stringifyLines(logger)
  return logger
}
