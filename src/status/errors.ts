// Every error highproxy raises: one class per failure, each with a stable `code` (like
// undici's UND_ERR_* codes). The codes and what each one means live in one table,
// ERROR_CODES; the classes take their code from it, classification keys on it, and the
// README's list is checked against it by a test, so none of them can drift. A failure
// line's `error.code` is always one of these; the system or library code underneath
// (ECONNREFUSED, DEPTH_ZERO_SELF_SIGNED_CERT, UND_ERR_SOCKET…) is its `error.cause.code`.

/**
 * One TCP attempt at one address of the origin, as the failure line's `dialled` prints it
 * (log/log-schema.ts declares the same shape as a schema and checks, at compile time, that
 * the two agree: the error table cannot depend on the log, which sits above it).
 */
export interface DialAttempt {
  address: string
  port: number
  /** 4 or 6. */
  family: number
  /** This address's error code (ECANCELED: another address won first); null for the one that connected. */
  code: string | null
  /** Time spent on this address (ms). */
  ms: number
}

export const ERROR_CODES = {
  HPX_ERR_DNS: 'the origin name did not resolve (→ 530)',
  HPX_ERR_CONNECT: 'the TCP connect failed: refused, unreachable (→ 521/523); the system error is the `cause`',
  HPX_ERR_CONNECT_TIMEOUT: 'no TCP handshake within the connect timeout (→ 522)',
  HPX_ERR_TLS_HANDSHAKE: 'the TLS handshake failed (→ 525)',
  HPX_ERR_TLS_TIMEOUT: 'the TLS handshake stalled past `timeouts.tls` (→ 525)',
  HPX_ERR_TLS_CERT: 'the certificate failed strict verification (→ 526)',
  HPX_ERR_CONNECTION_LIMIT: 'every connection the pool may open to that origin is busy, and the queue is full or the wait passed the connect timeout (→ 503)',
  HPX_ERR_OVERLOADED: 'adaptive concurrency: the origin has as many requests in flight as its learned limit, and no slot freed within `queue_timeout` (→ 503, or the route\'s stale copy)',
  HPX_ERR_WRITE_TIMEOUT: 'the origin stopped reading the request body for `timeouts.origin_write` (→ 524)',
  HPX_ERR_RESPONSE_TIMEOUT: 'connected and sent the request, no response headers within the response timeout (→ 524)',
  HPX_ERR_BAD_RESPONSE: 'the origin answered with something that is not valid HTTP, or a status line or headers that cannot be relayed: a control character in the reason phrase, an invalid header (→ 520 `invalid`)',
  HPX_ERR_HEADERS_TOO_LARGE: 'the origin\'s response headers passed the size limit (→ 520 `headers_too_large`)',
  HPX_ERR_ORIGIN_RESET: 'the origin reset the connection (ECONNRESET, EPIPE) after the request was sent (→ 520 `reset`)',
  HPX_ERR_EMPTY_RESPONSE: 'the origin closed the connection without a complete response (→ 520 `empty`)',
  HPX_ERR_BODY_IDLE: 'the origin\'s response body paused longer than `timeouts.body_idle`; the client\'s connection is cut (truncated)',
  HPX_ERR_STRAY_RESPONSE: 'the origin sent bytes on a connection with no request outstanding: the connection is closed and logged (→ 520 `invalid` for the request they corrupt, if any)',
  HPX_ERR_ORIGIN_5XX: 'the origin answered 5xx on a route with `origin_errors: replace` (→ 502 page)',
  HPX_ERR_POOL_DOWN: 'every origin of the pool is marked down: answered at once with the last failure\'s status',
  HPX_ERR_HEALTH_CHECK: 'an active health check got another status than `expect_status`; when every origin of a pool fails it, requests get 502',
  HPX_ERR_INJECTED: 'a fault injected by `x-highproxy-fault`; it carries the real fault\'s code as its `cause`',
  HPX_ERR_CLIENT_ABORT: 'the client left; the origin request is cancelled (status 499 in the log)',
  HPX_ERR_CLIENT_WRITE_TIMEOUT: 'the client read none of the response for `timeouts.client_write`: its stream is reset (or its connection cut), the origin request cancelled, status 499 in the log; never counted against the origin',
  HPX_ERR_CLIENT_SHARE: 'one client address holds its share of an origin\'s connections (`connections.max_per_client`) and no slot of its own freed within the connect timeout (→ 503); other clients are not held up',
  HPX_ERR_FRAME_FLOOD: 'an HTTP/2 client sent more than `listen.http2.max_idle_frames` frames a second that move no request forward (WINDOW_UPDATE, PING, SETTINGS, PRIORITY, empty DATA): its connection got GOAWAY ENHANCE_YOUR_CALM and was closed',
  HPX_ERR_BODY_TOO_LARGE: 'a chunked request body grew past the route\'s `max_body_size` while streaming (→ 413)',
  HPX_ERR_RESET_FLOOD: 'an HTTP/2 client reset more than `listen.http2.max_client_resets` streams within `client_reset_window` (rapid reset): its connection got GOAWAY and was closed',
  HPX_ERR_ACME: 'obtaining or renewing a certificate by ACME failed; the line carries the CA\'s problem document (`problem.type` like urn:ietf:params:acme:error:*, and its detail); retried with backoff, the certificate already served stays',
  HPX_ERR_ACME_PENDING: 'a TLS client asked for an ACME name whose first certificate is not there yet: its handshake fails with an alert, never another name\'s certificate',
  HPX_ERR_CONFIG: 'a configuration value is wrong (exit code 2)',
  HPX_ERR_LAB_UNKNOWN_FAULT: '`startLab` was asked for a fault the lab does not have (a TypeError naming the known ones)',
  HPX_ERR_LAB_UNAVAILABLE: '`startLab` was asked for a fault this machine cannot make (523 without CAP_NET_ADMIN); `reason` says why',
  HPX_ERR_LAB_START: 'a lab fault failed to start (its error is the `cause`); what had started is closed again',
  HPX_ERR_UNCLASSIFIED: 'a failure no row of the classification table matched (→ 502, `classified: false`)'
} as const

export type ErrorCode = keyof typeof ERROR_CODES

/** Where an error is typed: the phases of one attempt at an origin. */
export const PHASES = ['dns', 'connect', 'tls', 'queue', 'request', 'response', 'body'] as const
export type Phase = typeof PHASES[number]

export type DialPhase = 'dns' | 'connect' | 'tls'

/** Phase timings of one dial, in ms; null for a phase never reached. */
export interface DialTimings {
  dns_ms: number | null
  connect_ms: number | null
  tls_ms: number | null
}

export interface DialFacts {
  phase: DialPhase
  timings: DialTimings
  attempts: DialAttempt[]
  /** The address:port the failing phase talked to (or tried last). */
  address: string | null
  port: number
  /** Our own end of the socket, when one existed: what a firewall saw. */
  localAddress: string | null
  localPort: number | null
}

/**
 * Builds an error without capturing a stack trace. Origin errors are operational: their
 * phase, addresses and timings say where they happened, and in a 522 storm thousands
 * are built at once, where stack capture was a visible share of the failure path.
 */
export function withoutStack<T> (make: () => T): T {
  const limit = Error.stackTraceLimit
  Error.stackTraceLimit = 0
  try {
    return make()
  } finally {
    Error.stackTraceLimit = limit
  }
}

/** Every highproxy error: a stable code, and where it happened when that is known. */
export class EdgeError extends Error {
  constructor (readonly code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = new.target.name
  }
}

/**
 * A failure while reaching the origin, before a single request byte was written: the
 * ones that are safe to retry on another origin, for any method.
 */
export class DialError extends EdgeError {
  readonly phase: DialPhase
  readonly timings: DialTimings
  readonly attempts: DialAttempt[]
  readonly address: string | null
  readonly port: number
  readonly localAddress: string | null
  readonly localPort: number | null

  constructor (code: ErrorCode, message: string, facts: DialFacts, options?: { cause?: unknown }) {
    super(code, message, options)
    this.phase = facts.phase
    this.timings = facts.timings
    this.attempts = facts.attempts
    this.address = facts.address
    this.port = facts.port
    this.localAddress = facts.localAddress
    this.localPort = facts.localPort
  }
}

export class DnsLookupError extends DialError {
  constructor (facts: DialFacts, cause: unknown) {
    super('HPX_ERR_DNS', 'origin host name did not resolve', facts, { cause })
  }
}

export class ConnectFailedError extends DialError {
  constructor (facts: DialFacts, cause: unknown) {
    super('HPX_ERR_CONNECT', 'TCP connection to the origin failed', facts, { cause })
  }
}

export class ConnectTimeoutError extends DialError {
  /** Words for Proxy-Status's `details`, after the table's own (see detailsOf). */
  readonly details: string | null
  /**
   * @param waitedBehind set when the dial never sent its SYN: it waited behind that many
   *   unanswered connects to the origin (the pending-connect cap) until its timeout ran out
   */
  constructor (facts: DialFacts, timeoutMs: number, readonly waitedBehind: number | null = null) {
    super('HPX_ERR_CONNECT_TIMEOUT', waitedBehind === null
      ? `no TCP handshake within ${timeoutMs} ms`
      : `no TCP handshake within ${timeoutMs} ms: waited behind ${waitedBehind} unanswered connects to the origin (max_pending_connects), no SYN sent`, facts)
    this.details = waitedBehind === null ? null : `waited behind ${waitedBehind} unanswered connects to this origin (max_pending_connects), no SYN sent`
  }
}

export class TlsHandshakeError extends DialError {
  constructor (facts: DialFacts, cause: unknown) {
    super('HPX_ERR_TLS_HANDSHAKE', 'TLS handshake with the origin failed', facts, { cause })
  }
}

export class TlsTimeoutError extends DialError {
  constructor (facts: DialFacts, timeoutMs: number) {
    super('HPX_ERR_TLS_TIMEOUT', `no TLS handshake within ${timeoutMs} ms`, facts)
  }
}

export class TlsCertificateError extends DialError {
  constructor (facts: DialFacts, cause: unknown) {
    super('HPX_ERR_TLS_CERT', 'origin certificate failed verification', facts, { cause })
  }
}

/** No connection to the origin could be had: the pool's limit is reached and the queue full or too slow. */
export class ConnectionLimitError extends EdgeError {
  constructor (limit: number, why: 'queue full' | 'queue timeout') {
    super('HPX_ERR_CONNECTION_LIMIT', `all ${limit} connections to the origin are busy (${why})`)
  }
}

/**
 * Adaptive concurrency shed the request: the origin already has as many requests in
 * flight as it was learned to serve well, and none finished within the queue timeout
 * (or the queue was full).
 */
export class OverloadedError extends EdgeError {
  /** Words for Proxy-Status's `details`: the limit, never anything the client sent. */
  readonly details: string
  constructor (readonly limit: number, readonly waitedMs: number, why: 'queue full' | 'queue timeout') {
    super('HPX_ERR_OVERLOADED', `the origin's learned concurrency limit (${limit}) is reached: shed after ${Math.round(waitedMs)} ms (${why})`)
    this.details = `learned concurrency limit ${limit} reached, ${why === 'queue full' ? 'queue full' : `no slot within ${Math.round(waitedMs)} ms`} (adaptive_concurrency)`
  }
}

/**
 * The words a failure adds to Proxy-Status's `details` beyond its classification's own:
 * a dial that waited at the pending-connect cap, the limit that shed a request. Only
 * texts the edge wrote, from numbers it counted.
 */
export function detailsOf (err: unknown): string | null {
  const own = (err as { details?: unknown } | null)?.details
  if (typeof own === 'string') return own
  for (const e of causeChain(err)) {
    const d = (e as { details?: unknown }).details
    if (typeof d === 'string') return d
  }
  return null
}

/** The client read none of the response for `timeouts.client_write` (a slow reader). */
export class ClientWriteTimeoutError extends EdgeError {
  constructor (readonly timeoutMs: number) {
    super('HPX_ERR_CLIENT_WRITE_TIMEOUT', `the client read none of the response for ${timeoutMs} ms`)
  }
}

/** The client's own share of an origin's connections is in use. */
export class ClientShareError extends EdgeError {
  constructor (limit: number) {
    super('HPX_ERR_CLIENT_SHARE', `this client already holds ${limit} connections to the origin (its share)`)
  }
}

/** The origin stopped reading the request body. */
export class WriteTimeoutError extends EdgeError {
  constructor (readonly timeoutMs: number, readonly sentBytes: number) {
    super('HPX_ERR_WRITE_TIMEOUT', `the origin read none of the request body for ${timeoutMs} ms (${sentBytes} bytes sent)`)
  }
}

/** Connected and sent the request, but no response headers within the response timeout. */
export class ResponseTimeoutError extends EdgeError {
  constructor (readonly timeoutMs: number) {
    super('HPX_ERR_RESPONSE_TIMEOUT', `no response headers within ${timeoutMs} ms`)
  }
}

/** The origin's response head is not something the edge may relay. */
export class BadResponseError extends EdgeError {
  constructor (what: string, options?: { cause?: unknown }) {
    super('HPX_ERR_BAD_RESPONSE', `invalid response from the origin: ${what}`, options)
  }
}

/** The origin's response body paused longer than the body idle timeout. */
export class BodyIdleTimeoutError extends EdgeError {
  constructor (readonly timeoutMs: number) {
    super('HPX_ERR_BODY_IDLE', `no response body data for ${timeoutMs} ms`)
  }
}

/** Bytes from the origin with no request outstanding on that connection. */
export class StrayResponseError extends EdgeError {
  constructor (options?: { cause?: unknown }) {
    super('HPX_ERR_STRAY_RESPONSE', 'the origin sent bytes with no request outstanding', options)
  }
}

/** An HTTP/2 client reset streams faster than listen.http2 allows (rapid reset): its connection is cut. */
export class ResetFloodError extends EdgeError {
  constructor (readonly maxClientResets: number, readonly windowMs: number) {
    super('HPX_ERR_RESET_FLOOD', `more than ${maxClientResets} streams reset by the client within ${windowMs} ms`)
  }
}

/** The origin answered 5xx on a route that replaces origin errors with the edge's page. */
export class OriginErrorReplacedError extends EdgeError {
  constructor (readonly status: number) {
    super('HPX_ERR_ORIGIN_5XX', `origin answered ${status}`)
  }
}

/**
 * An error that stands for another failure (its `cause`, in `causePhase`): the
 * classification table answers with that failure's status.
 */
export interface StandIn {
  readonly cause: unknown
  readonly causePhase: Phase
}

/** Every origin of a pool is marked down; the last failure decides the status. */
export class PoolDownError extends EdgeError implements StandIn {
  declare readonly cause: unknown
  constructor (pool: string, origins: number, last: unknown, readonly causePhase: Phase) {
    super('HPX_ERR_POOL_DOWN', `all ${origins} origins of pool ${pool} are down`, { cause: last })
  }
}

/** A fault injected on purpose; `cause` carries the code of the real fault it stands for. */
export class InjectedFaultError extends EdgeError implements StandIn {
  declare readonly cause: unknown
  constructor (readonly status: number, code: string, readonly causePhase: Phase) {
    super('HPX_ERR_INJECTED', `fault ${status} injected on request`, { cause: { code } })
  }
}

/** An active health check answered with the wrong status. */
export class HealthCheckError extends EdgeError {
  constructor (readonly status: number, expected: number) {
    super('HPX_ERR_HEALTH_CHECK', `health check answered ${status}, expected ${expected}`)
  }
}

/** A chunked request body grew past the route's limit while streaming to the origin. */
export class BodyTooLargeError extends EdgeError {
  constructor (readonly limit: number) {
    super('HPX_ERR_BODY_TOO_LARGE', `request body larger than ${limit} bytes`)
  }
}

/** Raised into the origin request when the client leaves first; never an origin failure. */
export class ClientAbortError extends EdgeError {
  constructor () {
    super('HPX_ERR_CLIENT_ABORT', 'client closed the connection before the response was complete')
  }
}

/** A configuration value that is missing, malformed or contradictory. */
export class ConfigError extends EdgeError {
  constructor (readonly key: string, readonly problem: string) {
    super('HPX_ERR_CONFIG', `config ${key}: ${problem}`)
  }
}

const MAX_CHAIN = 8

/**
 * Every error in a chain, outermost first: `cause`, and the `errors` of an
 * AggregateError (as Node's happy-eyeballs dialling produces). The one walker for
 * classification, for finding the DialError and for the message of the deciding code.
 */
export function causeChain (err: unknown, chain: unknown[] = [], depth = 0): unknown[] {
  if (depth > MAX_CHAIN || typeof err !== 'object' || err === null) return chain
  chain.push(err)
  const errors = (err as { errors?: unknown }).errors
  if (Array.isArray(errors)) for (const inner of errors) causeChain(inner, chain, depth + 1)
  return causeChain((err as { cause?: unknown }).cause, chain, depth + 1)
}

/** The DialError somewhere in an error chain (undici or a caller may wrap it). */
export function dialErrorIn (err: unknown): DialError | null {
  if (err instanceof DialError) return err
  for (const e of causeChain(err)) if (e instanceof DialError) return e
  return null
}
