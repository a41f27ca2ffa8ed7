// Refusals: requests the edge answers itself before any origin sees them (malformed,
// over a limit, a method it does not serve, too slow, too many connections). One table
// says which RFC 9209 Proxy-Status error type each refusal status carries, for every
// place that refuses: the parser's refusals (listen/client-errors.ts), admission's
// (edge/handle-request.ts), HTTP/2's request deadline, the connection limits.
//
// The rule (RFC 9209 §2.3): a request the edge cannot read or speak — malformed, cut
// short, in a version or coding it does not implement — is `http_request_error`; a
// well-formed request the edge declines by its configuration or policy — a limit, a
// method it does not serve — is `http_request_denied`.

import { STATUS_CODES } from 'node:http'
import type { ProxyErrorType } from '../status/classify.js'
import { edgeHeaders, type EdgeNames } from './edge-headers.js'
import type { ProxyStatus } from './proxy-status.js'

/**
 * Refusal status → Proxy-Status error type. 405 is CONNECT to an edge that is not a
 * forward proxy: a well-formed request, declined by policy (denied). 408 is a request
 * that did not arrive whole in time: what the edge received is incomplete, the client's
 * error (error), like a body cut short.
 */
export const REFUSAL_TYPES: ReadonlyMap<number, ProxyErrorType> = new Map<number, ProxyErrorType>([
  [400, 'http_request_error'],
  [405, 'http_request_denied'],
  [408, 'http_request_error'],
  [413, 'http_request_denied'],
  [414, 'http_request_denied'],
  [417, 'http_request_denied'],
  [429, 'http_request_denied'],
  [431, 'http_request_denied'],
  [501, 'http_request_error'],
  [502, 'proxy_internal_error'],
  [503, 'http_request_denied'],
  [505, 'http_request_error']
])

/** The Proxy-Status type of a refusal with this status; one not in the table is a policy's (denied). */
export function refusalType (status: number): ProxyErrorType {
  return REFUSAL_TYPES.get(status) ?? 'http_request_denied'
}

/** A refusal described as the edge's answers are (edge/answer.ts's EdgeAnswer): for the negotiated page. */
export interface RefusalFacts {
  status: number
  cause: null
  proxyStatus: ProxyErrorType
  why: string
}

/** The refusal of a request the edge read (admission, limits, the HTTP/2 deadline); `reason`: the access line's `refused`. */
export function refusalFacts (status: number, reason: string): RefusalFacts {
  return { status, cause: null, proxyStatus: refusalType(status), why: `the edge refused this request (${reason})` }
}

/** What a short refusal needs beyond its status: who answers, and its Proxy-Status members. */
export interface RefusalNames extends EdgeNames {
  readonly proxyStatus: ProxyStatus
}

/** A short answer the edge made: status, flat headers (no content-length: each writer frames the body its way), body. */
export interface ShortAnswer {
  status: number
  headers: string[]
  body: string
}

const NONE: readonly string[] = []

/**
 * A plain-text refusal for a request the edge could not (or did not) read as one: no
 * route, no Accept to negotiate with. It carries the ray id its access line has.
 */
export function refusal (names: RefusalNames, status: number, ray: string, extra: readonly string[] = NONE): ShortAnswer {
  const text = STATUS_CODES[status]
  const member = names.proxyStatus.forFailure({ proxyStatus: refusalType(status), why: `the edge refused this request (${text ?? status})` }, null, null)
  const headers = edgeHeaders(ray, names, NONE, false, false)
  headers.push('proxy-status', member, 'content-type', 'text/plain; charset=utf-8')
  for (let i = 0; i < extra.length; i++) headers.push(extra[i] as string)
  return { status, headers, body: `${status} ${text ?? ''}: the edge refused this request\n` }
}

/** CONNECT (HTTP/1.1's, or HTTP/2's stream without :path): the edge is not a forward proxy and says so. */
export function connectRefusal (names: RefusalNames, ray: string): ShortAnswer {
  return refusal(names, 405, ray, CONNECT_ALLOW)
}

const CONNECT_ALLOW = ['allow', 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS']
