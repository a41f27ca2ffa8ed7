// The shapes of what is written down, declared once as JSON Schema (TypeBox): the record
// types are derived from them, the README's field tables follow them, and the tests
// check real lines against them.
//
// The access line comes in two shapes (`log.fields`):
// - `highproxy` (the default): our own names, milliseconds with one decimal, null for
//   what did not happen;
// - `cloudflare`: the names, types and units of Cloudflare's Logpush `http_requests`
//   dataset where one exists (integer milliseconds, 0 for what did not happen,
//   nanosecond timestamps), so queries written for Logpush run unchanged; our own facts
//   ride along under `highproxy`, a lower-case name Cloudflare's PascalCase fields
//   cannot clash with.
// The failure line (one per failed origin attempt) has no Logpush counterpart and has
// one shape.

import { Type, type Static, type TLiteral, type TSchema, type TUnion } from '@sinclair/typebox'
import { CONDITIONS } from '../status/conditions.js'
import { UNKNOWN_ERROR_CAUSES } from '../status/catalog.js'
import { ERROR_CODES, PHASES, type DialAttempt, type ErrorCode } from '../status/errors.js'

const oneOf = <T extends string>(values: readonly T[], description: string): TUnion<Array<TLiteral<T>>> =>
  Type.Union(values.map(v => Type.Literal(v)), { description })
const orNull = <T extends TSchema>(schema: T, description: string): TUnion<[T, ReturnType<typeof Type.Null>]> =>
  Type.Union([schema, Type.Null()], { description })
const ms = (description: string): TUnion<[ReturnType<typeof Type.Number>, ReturnType<typeof Type.Null>]> =>
  orNull(Type.Number({ minimum: 0 }), `${description} (ms, one decimal; null when it did not happen)`)

export const DialAttemptSchema = Type.Object({
  address: Type.String(),
  port: Type.Integer(),
  family: Type.Integer({ description: '4 or 6' }),
  code: orNull(Type.String(), 'error code of this address (ECANCELED: another address won first); null for the one that connected'),
  ms: Type.Number({ description: 'time spent on this address' })
}, { description: 'One TCP attempt at one address of the origin' })

const Dialled = Type.Array(DialAttemptSchema, { description: 'every address tried, in order' })
const Cause = orNull(oneOf(UNKNOWN_ERROR_CAUSES, ''), "a 520's cause: reset, empty, invalid, headers_too_large")

export const TimingsSchema = Type.Object({
  dns_ms: ms('name lookup'),
  connect_ms: ms('TCP handshake (all addresses raced)'),
  tls_ms: ms('TLS handshake'),
  ttfb_ms: ms("from the request's arrival to the origin's response headers"),
  total_ms: Type.Number({ description: "from the request's arrival to this line (ms)" })
})

/** How the client reached the edge: the same on every line of one connection. */
export const ClientRecordSchema = Type.Object({
  protocol: Type.String({ description: 'HTTP/1.1, HTTP/1.0 or HTTP/2' }),
  tls_protocol: orNull(Type.String(), "the client connection's TLS version (TLSv1.3, TLSv1.2); null over plain HTTP"),
  tls_cipher: orNull(Type.String(), 'its cipher (OpenSSL name); null over plain HTTP')
}, { description: 'how the client reached the edge' })

/** OpenTelemetry's log correlation fields, on every line while tracing is on (docs/tracing.md). */
const traceFields = (span: string) => ({
  trace_id: Type.Optional(Type.String({ pattern: '^[0-9a-f]{32}$', description: 'the trace this request belongs to (tracing on)' })),
  span_id: Type.Optional(Type.String({ pattern: '^[0-9a-f]{16}$', description: span })),
  trace_flags: Type.Optional(Type.String({ pattern: '^[0-9a-f]{2}$', description: '01 when the trace is sampled (exported), 00 when not' }))
})

export const FailureRecordSchema = Type.Object({
  msg: Type.Literal('origin failure'),
  edge_status: Type.Integer({ description: 'the status this failure maps to (520-526, 530, 502)' }),
  ray_id: Type.String({ description: 'the ray id the visitor sees' }),
  origin: Type.Object({
    url: Type.String({ description: "the origin's configured URL" }),
    address: orNull(Type.String(), 'the address dialled (null before DNS answered)'),
    port: orNull(Type.Integer(), 'its port')
  }),
  error: Type.Object({
    code: oneOf(Object.keys(ERROR_CODES) as ErrorCode[], 'a documented HPX_ERR_* code (README, Error codes)'),
    message: Type.String(),
    cause: orNull(Type.Object({
      code: Type.String({ description: 'the system or library code: ECONNREFUSED, ENOTFOUND, DEPTH_ZERO_SELF_SIGNED_CERT, UND_ERR_SOCKET, HPE_INVALID_CONSTANT…' }),
      message: Type.String()
    }), 'the system or library error underneath; null when the edge decided it alone (a connect timeout)')
  }),
  timings: TimingsSchema,
  attempt: Type.Integer({ minimum: 0, description: 'which attempt of the request (1, or 2 after a retry)' }),
  phase: oneOf(PHASES, 'where the attempt was when it failed'),
  why: Type.String({ description: 'why this status, in words (from the classification table)' }),
  cause: Cause,
  classified: Type.Boolean({ description: 'false when no classification rule matched (the 502 fallback)' }),
  dialled: Dialled,
  source: orNull(Type.Object({ address: Type.String(), port: Type.Integer() }), "the edge's own end of the connection: what the origin's firewall saw"),
  truncated: Type.Boolean({ description: 'the status was already sent: the client got a cut connection' }),
  injected: Type.Boolean({ description: 'a fault injected by x-highproxy-fault' }),
  served: oneOf(['page', 'stale', 'none'], "what the client got for this failure: the edge's error page, the route's stored copy (Always online), or none (another attempt followed, or the connection was cut)"),
  origin_condition: orNull(oneOf(CONDITIONS, ''), "the origin's condition once this failure was counted: up, drowning, down or recovering; null when the edge does not track it (highproxy/fastify)"),
  route: orNull(Type.String(), 'route name'),
  pool: orNull(Type.String(), "the route's pool (a single origin: is a pool of its own)"),
  client: ClientRecordSchema,
  ...traceFields("the failed attempt's client span (the server span when no attempt was made)")
})

export const AccessRecordSchema = Type.Object({
  msg: Type.Literal('access'),
  method: Type.String(),
  host: Type.String({ description: 'the Host as received' }),
  path: Type.String({ description: 'the path, without the query' }),
  status: Type.Integer({ description: 'the status the client got; 499 when it left before the response was complete' }),
  ray_id: Type.String(),
  duration_ms: Type.Number({ description: 'arrival to the end of the response (ms)' }),
  route: orNull(Type.String(), 'route name'),
  edge_status: orNull(Type.Integer(), 'set when the edge answered rather than the origin'),
  ttfb_ms: ms("arrival to the origin's response headers"),
  connect_ms: ms("TCP connect of the origin connection, when this request opened it; for a failed dial the last attempt's time spent connecting, as on its failure line"),
  pool: orNull(Type.String(), 'pool name'),
  origin: orNull(Type.String(), "the last attempt's origin"),
  refused: Type.Optional(Type.String({ description: 'the rule that refused the request before any origin saw it' })),
  client: ClientRecordSchema,
  ...traceFields("the request's server span")
})

/** An integer of milliseconds, as every Logpush `*Ms` field is. */
const intMs = (description: string): ReturnType<typeof Type.Integer> =>
  Type.Integer({ minimum: 0, description: `${description} (integer ms; 0 when it did not happen)` })

/**
 * Logpush writes timestamps as `unixnano` by default: nanoseconds since the epoch, an
 * integer past 2^53, so it is a BigInt here and digits on the line.
 */
const unixNano = (description: string): ReturnType<typeof Type.BigInt> => Type.BigInt({ description: `${description} (unixnano)` })

/** Our own facts on a Logpush-shaped line. */
export const HighproxyFactsSchema = Type.Object({
  edge_status: orNull(Type.Integer(), 'set when the edge answered rather than the origin'),
  route: orNull(Type.String(), 'route name'),
  pool: orNull(Type.String(), 'pool name'),
  origin: orNull(Type.String(), "the last attempt's origin"),
  attempt: Type.Integer({ minimum: 0, description: 'attempts made (0: no origin was tried)' }),
  refused: orNull(Type.String(), 'the rule that refused the request before any origin saw it'),
  phase: orNull(oneOf(PHASES, ''), 'where the failed attempt was when it failed'),
  why: orNull(Type.String(), 'why the edge status, in words'),
  error_code: orNull(Type.String(), "the failure's stable HPX_ERR_* code"),
  cause: Cause,
  dialled: Dialled,
  ...traceFields("the request's server span")
})

/** The access line with `log.fields: cloudflare`. Field descriptions quote Cloudflare's documentation. */
export const LogpushRecordSchema = Type.Object({
  msg: Type.Literal('access'),
  RayID: Type.String({ description: 'ID of the request (16 hex, without the edge name)' }),
  EdgeStartTimestamp: unixNano('Timestamp at which the edge received request from the client'),
  EdgeEndTimestamp: unixNano('Timestamp at which the edge finished sending response to the client'),
  EdgeResponseStatus: Type.Integer({ description: 'HTTP status code returned by the edge to the client (499: the client left first)' }),
  EdgeTimeToFirstByteMs: intMs("From the request's arrival to the first byte of the response to the client, edge pages included"),
  EdgeServerIP: Type.String({ description: 'IP of the edge server making a request to the origin; empty string when no request was made to the origin' }),
  OriginResponseStatus: Type.Integer({ description: 'Status returned by the upstream server; 0 when no origin answered' }),
  OriginIP: Type.String({ description: 'IP of the origin server (the address dialled); empty string when none was' }),
  OriginDNSResponseTimeMs: intMs('Time taken to receive a DNS response for an origin name'),
  OriginTCPHandshakeDurationMs: intMs('Time taken to complete TCP handshake with origin; 0 if an origin connection is reused. On a connect failure: the time spent trying'),
  OriginTLSHandshakeDurationMs: intMs('Time taken to complete TLS handshake with origin; 0 if an origin connection is reused'),
  OriginRequestHeaderSendDurationMs: intMs('Time taken to send request headers to origin after establishing a connection (usually 0)'),
  OriginResponseHeaderReceiveDurationMs: intMs('Time taken for origin to return response headers after the edge finishes sending request headers'),
  OriginResponseDurationMs: intMs("Upstream response time: from the request's arrival to the origin's response headers, connects and a retry included"),
  OriginSSLProtocol: Type.String({ description: 'SSL (TLS) protocol used to connect to the origin: TLSv1.3, TLSv1.2; none for a plaintext origin; unknown when there was no origin connection' }),
  ClientIP: Type.String({ description: 'IP address of the client (after trusted proxies)' }),
  ClientSrcPort: Type.Integer({ description: 'Client source port' }),
  ClientRequestHost: Type.String({ description: 'Host requested by the client' }),
  ClientRequestMethod: Type.String({ description: 'HTTP method of client request' }),
  ClientRequestURI: Type.String({ description: 'URI requested by the client (path and query, as sent)' }),
  ClientRequestPath: Type.String({ description: 'URI path requested by the client' }),
  ClientRequestProtocol: Type.String({ description: 'HTTP protocol of client request: HTTP/1.1, HTTP/2' }),
  ClientRequestScheme: Type.String({ description: 'The URL scheme requested by the visitor' }),
  ClientRequestUserAgent: Type.String({ description: 'User agent reported by the client' }),
  ClientRequestReferer: Type.String({ description: 'HTTP request referrer' }),
  ClientSSLProtocol: Type.String({ description: 'Client SSL (TLS) protocol; none when SSL was not used' }),
  ClientSSLCipher: Type.String({ description: 'Client SSL cipher; NONE when SSL was not used' }),
  highproxy: HighproxyFactsSchema
})

export type { DialAttempt }

type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false
/**
 * status/errors.ts declares DialAttempt in plain TypeScript; this fails to compile when it
 * and DialAttemptSchema stop describing the same thing (a field added to one only).
 */
export const DIAL_ATTEMPT_MATCHES_SCHEMA: Same<Static<typeof DialAttemptSchema>, DialAttempt> = true
export type Timings = Static<typeof TimingsSchema>
export type FailureRecord = Static<typeof FailureRecordSchema>
export type AccessRecord = Static<typeof AccessRecordSchema>
export type ClientRecord = Static<typeof ClientRecordSchema>
export type HighproxyFacts = Static<typeof HighproxyFactsSchema>
export type LogpushRecord = Static<typeof LogpushRecordSchema>

export type { LogFields } from '../config/schema.js'
