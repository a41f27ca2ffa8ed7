// Which edge status does a failure get? One table, from (error code, phase) to a status,
// the 520 cause, the RFC 9209 Proxy-Status error type and the words an operator reads.
//
// The input is the error as it reached us (undici's, Node's, or our own) and the phase
// the attempt was in. Every `code` in the error chain is collected (causeChain), and the
// first row that matches the phase and any code wins, the innermost code first: the row
// decides the status, the deepest matching code says the most. Row order is precedence:
// for a multi-address origin where one address timed out and another refused, the timeout
// row comes first (something is eating packets), and a refusal outranks "unreachable"
// (some address answered "nobody here").
//
// Failures the edge decides itself (pool down, a replaced origin 5xx, an injected fault,
// a full connection queue) are errors with codes like any other, so they go through the
// same table. A pool-down error takes the status of the failure it wraps.

import type { UnknownErrorCause } from './catalog.js'
import { PHASES, causeChain, type ErrorCode, type Phase, type StandIn } from './errors.js'

/** IANA "HTTP Proxy-Status Error Types" (RFC 9209 §2.3) that an edge status can carry. */
export type ProxyErrorType =
  | 'dns_error' | 'dns_timeout' | 'connection_refused' | 'connection_timeout' | 'destination_ip_unroutable'
  | 'destination_unavailable' | 'destination_not_found' | 'connection_limit_reached' | 'connection_terminated' | 'connection_write_timeout'
  | 'tls_protocol_error' | 'tls_certificate_error' | 'tls_alert_received' | 'http_response_timeout'
  | 'http_response_incomplete' | 'http_protocol_error' | 'http_response_header_section_size'
  | 'http_request_error' | 'http_request_denied' | 'proxy_internal_error' | 'proxy_internal_response'

export interface Rule {
  /** Error codes; a trailing `*` matches a prefix, a lone `*` matches anything. */
  codes: readonly string[]
  phases: readonly Phase[]
  /** null: the classification of the failure this error stands for (pool down, an injected fault). */
  status: number | null
  cause: UnknownErrorCause | null
  /** For a stand-in, null keeps the Proxy-Status of the failure it stands for. */
  proxyStatus: ProxyErrorType | null
  /** Why, in words an operator reads in the log and in `highproxy probe`. */
  why: string
  /**
   * The documented code a log line reports for this row, when the error chain carries none
   * of the row's own HPX_ERR_* codes (undici's and Node's errors carry only theirs).
   */
  error: ErrorCode
}

export interface Classification {
  status: number
  cause: UnknownErrorCause | null
  proxyStatus: ProxyErrorType | null
  /** The code that decided it, or null when nothing matched. */
  code: string | null
  /** The documented HPX_ERR_* code a log line reports (README, Error codes). */
  errorCode: ErrorCode
  /** The system or library code underneath (ECONNREFUSED, UND_ERR_SOCKET…); null when there is none. */
  causeCode: string | null
  why: string
  /** False when no row matched and the 502 fallback was used. */
  known: boolean
}

/** 499 is not sent to anyone: it marks a client that left before the response was complete. */
export const CLIENT_ABORT_STATUS = 499

const code = (c: ErrorCode): ErrorCode => c

const ANY: readonly Phase[] = ['dns', 'connect', 'tls', 'queue', 'request', 'response', 'body']
const AFTER_CONNECT: readonly Phase[] = ['request', 'response', 'body']

export const RULES: readonly Rule[] = [
  {
    codes: ['UND_ERR_ABORTED', code('HPX_ERR_CLIENT_ABORT')],
    phases: ANY,
    status: CLIENT_ABORT_STATUS,
    cause: null,
    proxyStatus: null,
    why: 'the client went away before the response was complete',
    error: 'HPX_ERR_CLIENT_ABORT'
  },
  {
    codes: [code('HPX_ERR_CLIENT_WRITE_TIMEOUT')],
    phases: ANY,
    status: CLIENT_ABORT_STATUS,
    cause: null,
    proxyStatus: null,
    why: 'the client stopped reading the response (timeouts.client_write): its failure, not the origin\'s',
    error: 'HPX_ERR_CLIENT_WRITE_TIMEOUT'
  },
  {
    codes: [code('HPX_ERR_BODY_TOO_LARGE')],
    phases: ANY,
    status: 413,
    cause: null,
    proxyStatus: 'http_request_denied',
    why: 'the client sent a request body over the route\'s limit',
    error: 'HPX_ERR_BODY_TOO_LARGE'
  },
  {
    codes: [code('HPX_ERR_POOL_DOWN')],
    phases: ANY,
    status: null,
    cause: null,
    proxyStatus: 'destination_unavailable',
    why: 'every origin of the pool is marked down: answered from the last failure without dialling',
    error: 'HPX_ERR_POOL_DOWN'
  },
  {
    codes: [code('HPX_ERR_INJECTED')],
    phases: ANY,
    status: null,
    cause: null,
    proxyStatus: null,
    why: 'injected by x-highproxy-fault',
    error: 'HPX_ERR_INJECTED'
  },
  {
    codes: [code('HPX_ERR_HEALTH_CHECK')],
    phases: ANY,
    status: 502,
    cause: null,
    proxyStatus: 'destination_unavailable',
    why: 'the origin failed its active health check',
    error: 'HPX_ERR_HEALTH_CHECK'
  },
  {
    codes: [code('HPX_ERR_ORIGIN_5XX')],
    phases: ['response'],
    status: 502,
    cause: null,
    // Not the edge's error: Proxy-Status says received-status instead.
    proxyStatus: null,
    why: 'the origin answered with a server error; this route replaces origin errors with the edge\'s page',
    error: 'HPX_ERR_ORIGIN_5XX'
  },
  {
    codes: [code('HPX_ERR_CONNECTION_LIMIT')],
    phases: ['queue'],
    status: 503,
    cause: null,
    proxyStatus: 'connection_limit_reached',
    why: 'every connection the edge may open to this origin is busy and no slot freed in time',
    error: 'HPX_ERR_CONNECTION_LIMIT'
  },
  {
    codes: [code('HPX_ERR_OVERLOADED')],
    phases: ['queue'],
    status: 503,
    cause: null,
    proxyStatus: 'connection_limit_reached',
    why: 'the origin has as many requests in flight as adaptive concurrency learned it serves well, and no slot freed within the queue timeout',
    error: 'HPX_ERR_OVERLOADED'
  },
  {
    codes: [code('HPX_ERR_CLIENT_SHARE')],
    phases: ['queue'],
    status: 503,
    cause: null,
    proxyStatus: 'connection_limit_reached',
    why: 'this client holds its share of the connections to this origin (connections.max_per_client); other clients are served',
    error: 'HPX_ERR_CLIENT_SHARE'
  },
  {
    codes: ['EAI_AGAIN'],
    phases: ['dns'],
    status: 530,
    cause: null,
    proxyStatus: 'dns_timeout',
    why: 'the origin host name did not resolve: the resolver did not answer in time',
    error: 'HPX_ERR_DNS'
  },
  {
    codes: [code('HPX_ERR_DNS'), 'ENOTFOUND', 'EAI_NONAME', 'EAI_FAIL', 'EAI_NODATA', 'ENODATA', 'ESERVFAIL'],
    phases: ['dns'],
    status: 530,
    cause: null,
    proxyStatus: 'dns_error',
    why: 'the origin host name did not resolve',
    error: 'HPX_ERR_DNS'
  },
  {
    codes: [code('HPX_ERR_CONNECT_TIMEOUT'), 'UND_ERR_CONNECT_TIMEOUT', 'ETIMEDOUT'],
    phases: ['connect'],
    status: 522,
    cause: null,
    proxyStatus: 'connection_timeout',
    why: 'SYN sent and no answer within the connect timeout: a firewall dropping packets or an accept queue that is full',
    error: 'HPX_ERR_CONNECT_TIMEOUT'
  },
  {
    codes: ['ECONNREFUSED'],
    phases: ['connect'],
    status: 521,
    cause: null,
    proxyStatus: 'connection_refused',
    why: 'connection refused at once: nothing listens on that port, or a firewall rejects it',
    error: 'HPX_ERR_CONNECT'
  },
  {
    codes: ['EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'EHOSTDOWN', 'ENETDOWN'],
    phases: ['connect'],
    status: 523,
    cause: null,
    proxyStatus: 'destination_ip_unroutable',
    why: 'no route to the origin address',
    error: 'HPX_ERR_CONNECT'
  },
  {
    codes: [
      code('HPX_ERR_TLS_CERT'), 'DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN', 'CERT_HAS_EXPIRED',
      'CERT_NOT_YET_VALID', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT',
      'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'ERR_TLS_CERT_ALTNAME_INVALID', 'CERT_UNTRUSTED',
      'CERT_REVOKED', 'CERT_SIGNATURE_FAILURE', 'CERT_CHAIN_TOO_LONG', 'INVALID_CA'
    ],
    phases: ['tls'],
    status: 526,
    cause: null,
    proxyStatus: 'tls_certificate_error',
    why: 'the origin certificate did not verify (self-signed, expired, wrong name or unknown CA)',
    error: 'HPX_ERR_TLS_CERT'
  },
  {
    codes: ['ERR_SSL_*ALERT*'],
    phases: ['tls'],
    status: 525,
    cause: null,
    proxyStatus: 'tls_alert_received',
    why: 'the origin ended the TLS handshake with an alert (no common protocol or cipher, or it refused the server name)',
    error: 'HPX_ERR_TLS_HANDSHAKE'
  },
  {
    codes: [code('HPX_ERR_TLS_TIMEOUT'), code('HPX_ERR_TLS_HANDSHAKE'), '*'],
    phases: ['tls'],
    status: 525,
    cause: null,
    proxyStatus: 'tls_protocol_error',
    why: 'the TLS handshake with the origin failed (no TLS on that port, no common protocol or cipher, or a stall)',
    error: 'HPX_ERR_TLS_HANDSHAKE'
  },
  {
    codes: [code('HPX_ERR_WRITE_TIMEOUT')],
    phases: ['request'],
    status: 524,
    cause: null,
    proxyStatus: 'connection_write_timeout',
    why: 'connected, but the origin stopped reading the request body: the rest of it was not sent',
    error: 'HPX_ERR_WRITE_TIMEOUT'
  },
  {
    codes: [code('HPX_ERR_RESPONSE_TIMEOUT'), 'UND_ERR_HEADERS_TIMEOUT'],
    phases: ['response'],
    status: 524,
    cause: null,
    proxyStatus: 'http_response_timeout',
    why: 'connected and sent the request, but no response headers arrived within the response timeout',
    error: 'HPX_ERR_RESPONSE_TIMEOUT'
  },
  {
    codes: ['UND_ERR_HEADERS_OVERFLOW', 'HPE_HEADER_OVERFLOW'],
    phases: AFTER_CONNECT,
    status: 520,
    cause: 'headers_too_large',
    proxyStatus: 'http_response_header_section_size',
    why: 'the origin sent response headers over the size limit',
    error: 'HPX_ERR_HEADERS_TOO_LARGE'
  },
  {
    codes: ['HPE_*', 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH', code('HPX_ERR_BAD_RESPONSE'), code('HPX_ERR_STRAY_RESPONSE')],
    phases: AFTER_CONNECT,
    status: 520,
    cause: 'invalid',
    proxyStatus: 'http_protocol_error',
    why: 'the origin answered with something that is not valid HTTP',
    error: 'HPX_ERR_BAD_RESPONSE'
  },
  {
    codes: ['ECONNRESET', 'EPIPE'],
    phases: AFTER_CONNECT,
    status: 520,
    cause: 'reset',
    proxyStatus: 'connection_terminated',
    why: 'the origin reset the connection',
    error: 'HPX_ERR_ORIGIN_RESET'
  },
  {
    codes: ['UND_ERR_SOCKET', 'UND_ERR_CLOSED'],
    phases: AFTER_CONNECT,
    status: 520,
    cause: 'empty',
    proxyStatus: 'http_response_incomplete',
    why: 'the origin closed the connection without a complete response',
    error: 'HPX_ERR_EMPTY_RESPONSE'
  },
  {
    codes: [code('HPX_ERR_BODY_IDLE'), 'UND_ERR_BODY_TIMEOUT'],
    phases: AFTER_CONNECT,
    status: 520,
    cause: 'empty',
    proxyStatus: 'http_response_incomplete',
    why: 'the origin stopped sending the response body',
    error: 'HPX_ERR_BODY_IDLE'
  }
]

const FALLBACK_STATUS = 502

function matches (pattern: string, c: string): boolean {
  if (pattern === '*') return true
  const star = pattern.indexOf('*')
  if (star === -1) return pattern === c
  // `PREFIX*` or `PREFIX*PART*`: the prefix, then the part anywhere after it.
  if (!c.startsWith(pattern.slice(0, star))) return false
  const rest = pattern.slice(star + 1, pattern.endsWith('*') ? -1 : undefined)
  return rest === '' || c.includes(rest, star)
}

/** Every `code` in an error chain, innermost first. */
function codesOf (err: unknown): string[] {
  // Most edge-made errors (a connect timeout, a waiter's) are one error with one code.
  const e = err as { code?: unknown, cause?: unknown, errors?: unknown } | null
  if (e !== null && typeof e === 'object' && typeof e.code === 'string' && e.cause === undefined && e.errors === undefined) return [e.code]
  const codes: string[] = []
  for (const e of causeChain(err)) {
    const c = (e as { code?: unknown }).code
    if (typeof c === 'string' && !codes.includes(c)) codes.unshift(c)
  }
  return codes
}

/** Stand-ins are matched on their own code, before the codes of what they stand for. */
const STAND_INS = new Set(RULES.filter(r => r.status === null).flatMap(r => r.codes))

export function classify (err: unknown, phase: Phase): Classification {
  const own = (err as { code?: unknown } | null)?.code
  if (typeof own === 'string' && STAND_INS.has(own)) {
    const rule = RULES.find(r => r.status === null && r.codes.includes(own)) as Rule
    const { cause, causePhase } = err as StandIn
    const stood = classify(cause, causePhase)
    // Frozen like every other answer: no reader may change what another reads.
    return Object.freeze({
      ...stood,
      proxyStatus: rule.proxyStatus ?? stood.proxyStatus,
      code: own,
      errorCode: own as ErrorCode,
      // What it stands for: the real fault's code (an injected one's) or the last failure's.
      causeCode: stood.code,
      why: `${rule.why}: ${stood.why}`
    })
  }
  const codes = codesOf(err)
  // The same codes in the same phase always read the same: a 522 storm classified one
  // failure a thousand times, each a walk of the table with closures per row.
  const seen = CLASSIFIED.get(phase)
  // A phase the table does not know (a caller of the public API): its 502, not memoized.
  if (seen === undefined) return byTable(codes, phase)
  // No code at all is a key of its own, apart from a code that is the empty string.
  const key = codes.length === 1 ? codes[0] as string : codes.length === 0 ? '\0' : codes.join('\n')
  const known = seen.get(key)
  if (known !== undefined) return known
  const c = Object.freeze(byTable(codes, phase))
  // Codes come from errors, and a library may coin new ones: the memo stays small.
  if (seen.size >= CLASSIFIED_MAX) seen.clear()
  seen.set(key, c)
  return c
}

/** The classifications made so far, per phase, by the codes they were made on: shared, so frozen. */
const CLASSIFIED = new Map<Phase, Map<string, Classification>>(PHASES.map(p => [p, new Map()]))
const CLASSIFIED_MAX = 256

function byTable (codes: string[], phase: Phase): Classification {
  for (const rule of RULES) {
    if (rule.status === null || !rule.phases.includes(phase)) continue
    const found = codes.find(c => rule.codes.some(pattern => matches(pattern, c)))
    if (found === undefined && !(rule.codes.includes('*') && codes.length === 0)) continue
    // Our own code when the chain has one the row names (a TLS timeout, a stray response),
    // the outermost first; otherwise the row's: a line never reports a bare system code.
    const ours = codes.findLast(c => c.startsWith(OWN_PREFIX) && rule.codes.includes(c)) as ErrorCode | undefined
    return {
      status: rule.status,
      cause: rule.cause,
      proxyStatus: rule.proxyStatus,
      code: found ?? null,
      errorCode: ours ?? rule.error,
      causeCode: found === undefined || found.startsWith(OWN_PREFIX) ? null : found,
      why: rule.why,
      known: true
    }
  }
  const ours = codes.findLast(c => c.startsWith(OWN_PREFIX)) as ErrorCode | undefined
  return {
    status: FALLBACK_STATUS,
    cause: null,
    proxyStatus: 'proxy_internal_error',
    code: codes[codes.length - 1] ?? null,
    errorCode: ours ?? 'HPX_ERR_UNCLASSIFIED',
    causeCode: codes.find(c => !c.startsWith(OWN_PREFIX)) ?? null,
    why: `unclassified failure in the ${phase} phase`,
    known: false
  }
}

const OWN_PREFIX = 'HPX_ERR_'

/** The message of the error whose code decided the classification, not a wrapper's text. */
export function messageFor (err: unknown, decided: string | null): string {
  const own = err as { code?: unknown, message?: unknown } | null
  if (own !== null && typeof own === 'object' && own.code === decided) return String(own.message ?? '')
  for (const e of causeChain(err)) {
    if ((e as { code?: unknown }).code === decided) return String((e as { message?: unknown }).message ?? '')
  }
  return String((err as { message?: unknown })?.message ?? err)
}
