// The `pretty` log format, for a person at a terminal (the default at a TTY): one line
// per request and one per failed origin attempt, instead of each record's fields as
// indented JSON. pino-pretty does the stream, the time, the level and its colors, and
// every other line as usual; its messageFormat writes the two record lines.
//
//   [13:25:38.421] WARN: ✗ 522 connect 127.0.0.1:37605 — SYN sent and no answer within … · attempt 1 · ray 5532e51064a042de
//   [13:25:38.425] INFO: GET shop.example/checkout 522 connection_timeout 1010.9 ms · ray 5532e51064a042de
//
// Colors follow pino-pretty's own detection (a TTY whose TERM is not dumb; NO_COLOR
// turns them off, FORCE_COLOR on).

import { Writable } from 'node:stream'
import pretty, { type MessageFormatFunc } from 'pino-pretty'
import type pino from 'pino'
import { CATALOG } from '../status/catalog.js'
import { CLIENT_ABORT_STATUS } from '../status/classify.js'
import type { AccessRecord, FailureRecord, LogpushRecord } from './log-schema.js'

type Colors = Parameters<MessageFormatFunc>[3]['colors']

function statusColor (colors: Colors, status: number): (text: string) => string {
  if (status >= 500) return colors.red
  if (status >= 400) return colors.yellow
  if (status >= 300) return colors.cyan
  return colors.green
}

/** "522 connection_timeout"; a rewritten status keeps the edge's own beside it. */
function statusText (record: AccessRecord): string {
  const edge = record.edge_status
  if (record.status === CLIENT_ABORT_STATUS) return `${record.status} client left`
  if (edge === null) return String(record.status)
  const name = CATALOG.get(edge)?.name ?? ''
  return edge === record.status ? `${edge} ${name}` : `${record.status} (edge ${edge} ${name})`
}

function accessLine (r: AccessRecord, colors: Colors): string {
  return `${r.method} ${r.host}${r.path} ${statusColor(colors, r.status)(statusText(r))} ` +
    `${colors.bold(`${r.duration_ms} ms`)} ${colors.gray(`· ray ${r.ray_id}`)}`
}

/** A Logpush-shaped access line (log.fields: cloudflare), read as ours: a person reads the same line either way. */
function fromLogpush (r: LogpushRecord): AccessRecord {
  return {
    msg: 'access',
    method: r.ClientRequestMethod,
    host: r.ClientRequestHost,
    path: r.ClientRequestPath,
    status: r.EdgeResponseStatus,
    ray_id: r.RayID,
    // Parsed nanoseconds lose digits past 2^53, not the milliseconds between them.
    duration_ms: Math.round((Number(r.EdgeEndTimestamp) - Number(r.EdgeStartTimestamp)) / 1e5) / 10,
    route: r.highproxy.route,
    edge_status: r.highproxy.edge_status,
    ttfb_ms: null,
    connect_ms: null,
    pool: r.highproxy.pool,
    origin: r.highproxy.origin,
    client: {
      protocol: r.ClientRequestProtocol,
      tls_protocol: r.ClientSSLProtocol === 'none' ? null : r.ClientSSLProtocol,
      tls_cipher: r.ClientSSLCipher === 'NONE' ? null : r.ClientSSLCipher
    }
  }
}

/** Where the attempt went: the address dialled, or the URL when it never got one (DNS). */
function addressOf (origin: FailureRecord['origin']): string {
  if (origin.address === null) return origin.url
  return `${origin.address.includes(':') ? `[${origin.address}]` : origin.address}:${origin.port ?? ''}`
}

function failureLine (r: FailureRecord, colors: Colors): string {
  // Lines written before conditions existed have no origin_condition.
  const condition = r.origin_condition ?? 'up'
  const flags = [r.truncated ? 'truncated' : '', r.injected ? 'injected' : '', r.served === 'stale' ? 'served stale' : '',
    condition === 'up' ? '' : `origin ${condition}`].filter(f => f !== '')
  return `${colors.red(`✗ ${r.edge_status}`)} ${r.phase} ${addressOf(r.origin)} — ${r.why}` +
    `${flags.length > 0 ? ` (${flags.join(', ')})` : ''} ${colors.gray(`· attempt ${r.attempt} · ray ${r.ray_id}`)}`
}

interface ListeningLine {
  listen: string
  admin: string | null
  redirect: string | null
  routes?: string[]
  tls?: { certificates: Array<{ names: string[] }>, http2: boolean, min_version: string }
}

/**
 * Start-up at a terminal: what listens where, how many routes, where to look; one line.
 * The routes and certificates stay on the JSON line and the debug line.
 */
function listeningLine (r: ListeningLine, colors: Colors): string {
  const routes = r.routes?.length ?? 0
  const parts = [`highproxy listening on ${colors.bold(r.listen)}`, `${routes} route${routes === 1 ? '' : 's'}`]
  if (r.tls !== undefined) {
    const names = r.tls.certificates.flatMap(c => c.names)
    parts.push(`TLS ${r.tls.min_version}+${r.tls.http2 ? ', HTTP/2' : ''}, certificate for ${names.slice(0, 3).join(' ')}${names.length > 3 ? ' …' : ''}`)
  }
  if (r.redirect !== null) parts.push(`redirect ${r.redirect}`)
  parts.push(r.admin === null ? 'admin off' : `admin ${r.admin} (/healthz /metrics /rays/<ray id>)`)
  parts.push(colors.gray('details: log.level debug'))
  return parts.join(' · ')
}

/**
 * The line of an access or failure record. The record's fields are then taken off the
 * object, a fresh parse of that one line that pino-pretty prints nothing else from
 * (it reads only level and time after the message).
 */
const messageFormat: MessageFormatFunc = (log, messageKey, _levelLabel, { colors }) => {
  const line = log.msg === 'access'
    ? accessLine('RayID' in log ? fromLogpush(log as unknown as LogpushRecord) : log as unknown as AccessRecord, colors)
    : log.msg === 'origin failure'
      ? failureLine(log as unknown as FailureRecord, colors)
      : log.msg === 'highproxy listening' ? listeningLine(log as unknown as ListeningLine, colors) : null
  if (line === null) return String(log[messageKey] ?? '')
  // The pid stays: it is what a person signals (kill -HUP).
  for (const key of Object.keys(log)) if (key !== 'level' && key !== 'time' && key !== 'pid') delete log[key]
  return line
}

/** Synchronous and in-process: pretty output is for a human at a terminal, not for load. */
export function prettyStream (stream?: NodeJS.WritableStream): pino.DestinationStream {
  return pretty({
    // At the terminal, pino-pretty's own color detection; into a given stream, plain text.
    ...(stream === undefined ? {} : { colorize: false }),
    destination: stream ?? terminal(),
    sync: true,
    translateTime: 'SYS:HH:MM:ss.l',
    messageFormat
  })
}

/**
 * stdout for the human format: written through as lines come, and never an error. A
 * terminal that was closed (EIO) must not crash the proxy or wedge its shutdown.
 */
function terminal (): Writable {
  return new Writable({
    write (chunk: Buffer, _enc: BufferEncoding, done: () => void) {
      try { process.stdout.write(chunk) } catch {}
      done()
    }
  })
}
