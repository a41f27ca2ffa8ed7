// The one access line every request gets, in the shape `log.fields` chose
// (log/log-schema.ts): our own record as it is, or the same facts under the names, types and
// units of Cloudflare's Logpush `http_requests` dataset. The Logpush line is built from
// our record and the exchange it came from, only when that shape is on.

import type { Socket } from 'node:net'
import type { Logger } from 'pino'
import type { AccessRecord, FailureRecord, LogFields, LogpushRecord } from '../log/log.js'
import { linkOf } from './client-link.js'
import type { Exchange } from './exchange.js'

/**
 * The access line of a request refused before the edge's handler saw it (or without an
 * exchange): the parser's refusals, the connection limits, a CONNECT, the redirect
 * listener. `socket` is the connection it came on.
 */
export function refusedAccess (ray: string, status: number, refused: string, method: string, host: string, socket: object | null): AccessRecord {
  return {
    msg: 'access', method, host, path: '', status, ray_id: ray, duration_ms: 0, route: null, edge_status: status,
    ttfb_ms: null, connect_ms: null, pool: null, origin: null, refused, client: linkOf(socket).log
  }
}

const NS_PER_MS = 1_000_000n

/** Logpush's `*Ms` fields are integers, 0 for what did not happen. */
const int = (ms: number | null | undefined): number => ms === null || ms === undefined ? 0 : Math.round(ms)

const between = (from: number | null, to: number | null): number => from === null || to === null ? 0 : Math.round(to - from)

/**
 * unixnano of now, and of `elapsedMs` before now. From the wall clock at the end, since
 * the monotonic clock drifts from it over a long uptime; the start is the end minus the
 * request's monotonic duration.
 */
function stamps (elapsedMs: number): [bigint, bigint] {
  const end = BigInt(Date.now()) * NS_PER_MS
  return [end - BigInt(Math.round(elapsedMs * 1e6)), end]
}

export class AccessLog {
  constructor (private readonly log: Logger, private readonly fields: LogFields) {}

  /** The line of a request the edge's handler saw through. */
  request (record: AccessRecord, exchange: Exchange): void {
    this.log.info(this.fields === 'cloudflare' ? fromExchange(record, exchange) : record)
  }

  /** The line of a request refused before the handler saw it: the socket says who sent it. */
  refusal (record: AccessRecord, socket: Socket | null, uri = ''): void {
    this.log.info(this.fields === 'cloudflare' ? fromRefusal(record, socket, uri) : record)
  }
}

function fromExchange (record: AccessRecord, exchange: Exchange): LogpushRecord {
  const attempt = exchange.attempt
  const info = attempt?.connection?.info ?? null
  // The failure behind an edge answer: a failed first attempt followed by a good one is in its own failure line.
  const failure = exchange.edgeStatus === null ? null : exchange.failure
  const timings = failure?.timings ?? (attempt?.fresh === true ? info?.timings ?? null : null)
  const [start, end] = stamps(exchange.elapsed())
  const sink = exchange.sink
  const client = exchange.client
  const headers = exchange.headers
  return {
    msg: 'access',
    RayID: exchange.ray,
    EdgeStartTimestamp: start,
    EdgeEndTimestamp: end,
    EdgeResponseStatus: record.status,
    EdgeTimeToFirstByteMs: sink.started ? Math.round(sink.startedAt - exchange.start) : 0,
    EdgeServerIP: failure?.source?.address ?? info?.localAddress ?? '',
    OriginResponseStatus: attempt?.originStatus ?? 0,
    OriginIP: failure?.origin.address ?? info?.address ?? '',
    OriginDNSResponseTimeMs: int(timings?.dns_ms),
    OriginTCPHandshakeDurationMs: int(timings?.connect_ms),
    OriginTLSHandshakeDurationMs: int(timings?.tls_ms),
    OriginRequestHeaderSendDurationMs: between(attempt?.connectedMs ?? null, attempt?.sentMs ?? null),
    OriginResponseHeaderReceiveDurationMs: between(attempt?.sentMs ?? null, attempt?.ttfbMs ?? null),
    OriginResponseDurationMs: int(attempt?.ttfbMs),
    OriginSSLProtocol: info === null ? 'unknown' : info.tls?.protocol ?? 'none',
    ClientIP: client.ip,
    ClientSrcPort: exchange.req.socket?.remotePort ?? 0,
    ClientRequestHost: exchange.host,
    ClientRequestMethod: exchange.method,
    ClientRequestURI: exchange.req.url ?? '',
    ClientRequestPath: exchange.path,
    ClientRequestProtocol: client.protocol,
    ClientRequestScheme: client.scheme,
    ClientRequestUserAgent: headers['user-agent'] ?? '',
    ClientRequestReferer: headers.referer ?? '',
    ClientSSLProtocol: client.tls?.protocol ?? 'none',
    ClientSSLCipher: client.tls?.cipher ?? 'NONE',
    highproxy: withTrace(facts(record, exchange.tried.length, failure, info?.attempts ?? []), record)
  }
}

/** The trace fields ride with our own facts: Logpush has no names for them. */
function withTrace (facts: LogpushRecord['highproxy'], record: AccessRecord): LogpushRecord['highproxy'] {
  if (record.trace_id === undefined) return facts
  facts.trace_id = record.trace_id
  facts.span_id = record.span_id
  facts.trace_flags = record.trace_flags
  return facts
}

function fromRefusal (record: AccessRecord, socket: Socket | null, uri: string): LogpushRecord {
  const [start, end] = stamps(record.duration_ms)
  const link = linkOf(socket)
  return {
    msg: 'access',
    RayID: record.ray_id,
    EdgeStartTimestamp: start,
    EdgeEndTimestamp: end,
    EdgeResponseStatus: record.status,
    EdgeTimeToFirstByteMs: 0,
    EdgeServerIP: '',
    OriginResponseStatus: 0,
    OriginIP: '',
    OriginDNSResponseTimeMs: 0,
    OriginTCPHandshakeDurationMs: 0,
    OriginTLSHandshakeDurationMs: 0,
    OriginRequestHeaderSendDurationMs: 0,
    OriginResponseHeaderReceiveDurationMs: 0,
    OriginResponseDurationMs: 0,
    OriginSSLProtocol: 'unknown',
    ClientIP: socket?.remoteAddress ?? '',
    ClientSrcPort: socket?.remotePort ?? 0,
    ClientRequestHost: record.host,
    ClientRequestMethod: record.method,
    ClientRequestURI: uri,
    ClientRequestPath: record.path,
    ClientRequestProtocol: link.protocol,
    ClientRequestScheme: link.scheme,
    ClientRequestUserAgent: '',
    ClientRequestReferer: '',
    ClientSSLProtocol: link.tls?.protocol ?? 'none',
    ClientSSLCipher: link.tls?.cipher ?? 'NONE',
    highproxy: facts(record, 0, null, [])
  }
}

function facts (record: AccessRecord, attempts: number, failure: FailureRecord | null, dialled: FailureRecord['dialled']): LogpushRecord['highproxy'] {
  return {
    edge_status: record.edge_status,
    route: record.route,
    pool: record.pool,
    origin: record.origin,
    attempt: attempts,
    refused: record.refused ?? null,
    phase: failure?.phase ?? null,
    why: failure?.why ?? null,
    error_code: failure?.error.code ?? null,
    cause: failure?.cause ?? null,
    dialled: failure?.dialled ?? dialled
  }
}
