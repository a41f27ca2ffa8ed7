// Every error highproxy raises, one class per failure, each with a stable `code`
// (like undici's UND_ERR_* codes). Classification and tests key on `code`, never on
// `instanceof` or message text; the README lists every code (a test checks that).

export type DialPhase = 'dns' | 'connect' | 'tls'

/** Phase timings of one dial, in ms; null for a phase never reached. */
export interface DialTimings {
  dns_ms: number | null
  connect_ms: number | null
  tls_ms: number | null
}

/** One TCP attempt at one address of the origin. */
export interface DialAttempt {
  address: string
  port: number
  family: number
  /** Error code of the attempt (ECANCELED: another address won first), or null when it connected. */
  code: string | null
  ms: number
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
 * Builds an error without capturing a stack trace. Dial errors are operational: their
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

/**
 * A failure while reaching the origin, before a single request byte was written.
 * "Safe to retry on another origin, for any method" is exactly `err instanceof DialError`
 * for callers that hold the type, and `err.retrySafe === true` for code that only sees
 * the value (both stay true for every subclass).
 */
export class DialError extends Error {
  readonly retrySafe = true
  readonly phase: DialPhase
  readonly timings: DialTimings
  readonly attempts: DialAttempt[]
  readonly address: string | null
  readonly port: number
  readonly localAddress: string | null
  readonly localPort: number | null

  constructor (
    readonly code: string,
    message: string,
    facts: DialFacts,
    options?: { cause?: unknown }
  ) {
    super(message, options)
    this.name = new.target.name
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
  constructor (facts: DialFacts, timeoutMs: number, cause?: unknown) {
    super('HPX_ERR_CONNECT_TIMEOUT', `no TCP handshake within ${timeoutMs} ms`, facts, { cause })
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

/** Connected and sent the request, but no response headers within the response timeout. */
export class ResponseTimeoutError extends Error {
  readonly code = 'HPX_ERR_RESPONSE_TIMEOUT'
  constructor (readonly timeoutMs: number) {
    super(`no response headers within ${timeoutMs} ms`)
    this.name = 'ResponseTimeoutError'
  }
}

/** The origin's response body paused longer than the body idle timeout. */
export class BodyIdleTimeoutError extends Error {
  readonly code = 'HPX_ERR_BODY_IDLE'
  constructor (readonly timeoutMs: number) {
    super(`no response body data for ${timeoutMs} ms`)
    this.name = 'BodyIdleTimeoutError'
  }
}

/** A configuration value that is missing, malformed or contradictory. */
export class ConfigError extends Error {
  readonly code = 'HPX_ERR_CONFIG'
  constructor (readonly key: string, readonly problem: string) {
    super(`config ${key}: ${problem}`)
    this.name = 'ConfigError'
  }
}

/** A fault injected on purpose (x-highproxy-fault); carries the status it stands for. */
export class InjectedFaultError extends Error {
  readonly code = 'HPX_ERR_INJECTED'
  constructor (readonly status: number) {
    super(`fault ${status} injected on request`)
    this.name = 'InjectedFaultError'
  }
}


/** Every origin of a pool is marked down: answered without dialling. */
export class PoolDownError extends Error {
  readonly code = 'HPX_ERR_POOL_DOWN'
  constructor (pool: string, origins: number) {
    super(`all ${origins} origins of pool ${pool} are down`)
    this.name = 'PoolDownError'
  }
}

/** The origin answered 5xx on a route that replaces origin errors with the edge's page. */
export class OriginErrorReplacedError extends Error {
  readonly code = 'HPX_ERR_ORIGIN_5XX'
  constructor (readonly status: number) {
    super(`origin answered ${status}`)
    this.name = 'OriginErrorReplacedError'
  }
}

/** A chunked request body grew past the route's limit while streaming to the origin. */
export class BodyTooLargeError extends Error {
  readonly code = 'HPX_ERR_BODY_TOO_LARGE'
  constructor (readonly limit: number) {
    super(`request body larger than ${limit} bytes`)
    this.name = 'BodyTooLargeError'
  }
}

/** Raised into the origin request when the client leaves first; never an origin failure. */
export class ClientAbortError extends Error {
  readonly code = 'HPX_ERR_CLIENT_ABORT'
  constructor () {
    super('client closed the connection before the response was complete')
    this.name = 'ClientAbortError'
  }
}

/** The DialError somewhere in an error chain (undici or a caller may wrap it). */
export function dialErrorIn (err: unknown): DialError | null {
  for (let e = err, depth = 0; typeof e === 'object' && e !== null && depth < 8; depth++) {
    if ((e as { retrySafe?: unknown }).retrySafe === true) return e as DialError
    e = (e as { cause?: unknown }).cause
  }
  return null
}

/** Every code above, for the documentation test. */
export const ERROR_CODES = [
  'HPX_ERR_DNS',
  'HPX_ERR_CONNECT',
  'HPX_ERR_CONNECT_TIMEOUT',
  'HPX_ERR_TLS_HANDSHAKE',
  'HPX_ERR_TLS_TIMEOUT',
  'HPX_ERR_TLS_CERT',
  'HPX_ERR_RESPONSE_TIMEOUT',
  'HPX_ERR_BODY_IDLE',
  'HPX_ERR_CONFIG',
  'HPX_ERR_INJECTED',
  'HPX_ERR_CLIENT_ABORT',
  'HPX_ERR_POOL_DOWN',
  'HPX_ERR_ORIGIN_5XX',
  'HPX_ERR_BODY_TOO_LARGE'
] as const
