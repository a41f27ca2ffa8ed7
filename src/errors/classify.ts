// Which edge status does a failure get? A pure function over one table.
//
// The input is the error as it reached us (undici's, Node's, or our own DialError)
// and the phase the request was in. We collect every `code` in the error chain (`cause`, and `errors` of an AggregateError, as happy-eyeballs dialling
// produces) and return the first row of RULES that matches the phase and any code.
// Row order is precedence: for a multi-address origin where one address timed out and
// another refused, the timeout row comes first (something is eating packets), and a
// refusal outranks "unreachable" (some address answered "nobody here").

import type { UnknownErrorCause } from './catalog.js'

export type Phase = 'dns' | 'connect' | 'tls' | 'response' | 'body'

export interface Rule {
  /** Error codes; a trailing `*` matches a prefix, a lone `*` matches anything. */
  codes: readonly string[]
  phases: readonly Phase[]
  status: number
  cause: UnknownErrorCause | null
  /** Why, in words an operator reads in the log and in `highproxy probe`. */
  why: string
}

export interface Classification {
  status: number
  cause: UnknownErrorCause | null
  /** The code that decided it, or null when nothing matched. */
  code: string | null
  why: string
  /** False when no row matched and the 502 fallback was used. */
  known: boolean
}

/** 499 is not sent to anyone: it marks a client that left before the origin answered. */
export const CLIENT_ABORT_STATUS = 499

const AFTER_CONNECT: readonly Phase[] = ['response', 'body']
const ANY: readonly Phase[] = ['dns', 'connect', 'tls', 'response', 'body']

export const RULES: readonly Rule[] = [
  {
    codes: ['UND_ERR_ABORTED', 'HPX_ERR_CLIENT_ABORT'],
    phases: ANY,
    status: CLIENT_ABORT_STATUS,
    cause: null,
    why: 'the client went away before the origin answered'
  },
  {
    codes: ['HPX_ERR_BODY_TOO_LARGE'],
    phases: ANY,
    status: 413,
    cause: null,
    why: 'the client sent a request body over the route\'s limit'
  },
  {
    codes: ['HPX_ERR_DNS', 'ENOTFOUND', 'EAI_AGAIN', 'EAI_NONAME', 'EAI_FAIL', 'EAI_NODATA', 'ENODATA', 'ESERVFAIL'],
    phases: ['dns'],
    status: 530,
    cause: null,
    why: 'the origin host name did not resolve'
  },
  {
    codes: ['HPX_ERR_CONNECT_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT', 'ETIMEDOUT'],
    phases: ['connect'],
    status: 522,
    cause: null,
    why: 'SYN sent and no answer within the connect timeout: a firewall dropping packets or an accept queue that is full'
  },
  {
    codes: ['ECONNREFUSED'],
    phases: ['connect'],
    status: 521,
    cause: null,
    why: 'connection refused at once: nothing listens on that port, or a firewall rejects it'
  },
  {
    codes: ['EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'EHOSTDOWN', 'ENETDOWN'],
    phases: ['connect'],
    status: 523,
    cause: null,
    why: 'no route to the origin address'
  },
  {
    codes: [
      'HPX_ERR_TLS_CERT', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN', 'CERT_HAS_EXPIRED',
      'CERT_NOT_YET_VALID', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT',
      'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'ERR_TLS_CERT_ALTNAME_INVALID', 'CERT_UNTRUSTED',
      'CERT_REVOKED', 'CERT_SIGNATURE_FAILURE', 'CERT_CHAIN_TOO_LONG', 'INVALID_CA'
    ],
    phases: ['tls'],
    status: 526,
    cause: null,
    why: 'the origin certificate did not verify (self-signed, expired, wrong name or unknown CA)'
  },
  {
    codes: ['*'],
    phases: ['tls'],
    status: 525,
    cause: null,
    why: 'the TLS handshake with the origin failed (no TLS on that port, no common protocol or cipher, or a stall)'
  },
  {
    codes: ['HPX_ERR_RESPONSE_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT'],
    phases: ['response'],
    status: 524,
    cause: null,
    why: 'connected and sent the request, but no response headers arrived within the response timeout'
  },
  {
    codes: ['UND_ERR_HEADERS_OVERFLOW', 'HPE_HEADER_OVERFLOW'],
    phases: AFTER_CONNECT,
    status: 520,
    cause: 'headers_too_large',
    why: 'the origin sent response headers over the size limit'
  },
  {
    codes: ['HPE_*', 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH', 'HPX_ERR_BAD_STATUS'],
    phases: AFTER_CONNECT,
    status: 520,
    cause: 'invalid',
    why: 'the origin answered with something that is not valid HTTP'
  },
  {
    codes: ['ECONNRESET', 'EPIPE'],
    phases: AFTER_CONNECT,
    status: 520,
    cause: 'reset',
    why: 'the origin reset the connection'
  },
  {
    codes: ['UND_ERR_SOCKET', 'UND_ERR_CLOSED'],
    phases: AFTER_CONNECT,
    status: 520,
    cause: 'empty',
    why: 'the origin closed the connection without a complete response'
  },
  {
    codes: ['HPX_ERR_BODY_IDLE', 'UND_ERR_BODY_TIMEOUT'],
    phases: AFTER_CONNECT,
    status: 520,
    cause: 'empty',
    why: 'the origin stopped sending the response body'
  }
]

const FALLBACK_STATUS = 502
const MAX_DEPTH = 8

/** Every `code` in an error chain, outermost first (cause and AggregateError.errors). */
export function errorCodes (err: unknown): string[] {
  const codes: string[] = []
  const walk = (value: unknown, depth: number): void => {
    if (depth > MAX_DEPTH || typeof value !== 'object' || value === null) return
    const e = value as { code?: unknown, cause?: unknown, errors?: unknown }
    if (typeof e.code === 'string' && !codes.includes(e.code)) codes.push(e.code)
    if (Array.isArray(e.errors)) for (const inner of e.errors) walk(inner, depth + 1)
    walk(e.cause, depth + 1)
  }
  walk(err, 0)
  return codes
}

function matches (pattern: string, code: string): boolean {
  if (pattern === '*') return true
  return pattern.endsWith('*') ? code.startsWith(pattern.slice(0, -1)) : pattern === code
}

export function classify (err: unknown, phase: Phase): Classification {
  // Innermost first: the rule decides the status, the deepest matching code says the most.
  const codes = errorCodes(err).reverse()
  for (const rule of RULES) {
    if (!rule.phases.includes(phase)) continue
    const code = codes.find(c => rule.codes.some(pattern => matches(pattern, c)))
    if (code !== undefined || (rule.codes.includes('*') && codes.length === 0)) {
      return { status: rule.status, cause: rule.cause, code: code ?? null, why: rule.why, known: true }
    }
  }
  return {
    status: FALLBACK_STATUS,
    cause: null,
    code: codes[0] ?? null,
    why: `unclassified failure in the ${phase} phase`,
    known: false
  }
}
