// What each edge status means: data only. Wording follows Cloudflare's public 5xx
// pages so that users' clients and runbooks keep working; nothing here may expose
// origin internals (addresses, error text), because it is shown to visitors.

import { STATUS_CODES } from 'node:http'

export type ErrorCategory = 'origin' | 'ssl' | 'dns' | 'edge'

/** Which hop of the You — Edge — Host diagram failed. */
export type FailedHop = 'browser' | 'edge' | 'host'

export interface EdgeErrorEntry {
  status: number
  /** Stable machine name (`error_name`), listed in the README. */
  name: string
  /** Short title: "Connection timed out". */
  title: string
  category: ErrorCategory
  /** Seconds for `Retry-After`, or null for none. */
  retryAfter: number | null
  retryable: boolean
  ownerActionRequired: boolean
  failedHop: FailedHop
  /** Cloudflare's body error code where it differs from the status (530 → 1016). */
  errorCode: number
  whatHappened: string
  visitorAction: string
  ownerAction: string
  /**
   * What ends it, for `what_you_should_do`: after "If the error persists, " when it is
   * retryable, after "Retrying will not help: " when it is not.
   */
  fix: string
}

/** Reasons behind a 520, each told apart in the log and in `detail`. */
export const UNKNOWN_ERROR_CAUSES = ['reset', 'empty', 'invalid', 'headers_too_large'] as const
export type UnknownErrorCause = typeof UNKNOWN_ERROR_CAUSES[number]

export const UNKNOWN_ERROR_DETAIL: Record<UnknownErrorCause, string> = {
  reset: 'The origin web server reset the connection before sending a response.',
  empty: 'The origin web server closed the connection without sending a response.',
  invalid: 'The origin web server sent a response that is not valid HTTP.',
  headers_too_large: 'The origin web server sent response headers larger than the edge accepts.'
}

const VISITOR_RETRY = 'Please try again in a few minutes.'

const entries: EdgeErrorEntry[] = [
  {
    status: 520,
    name: 'unknown_error',
    title: 'Web server is returning an unknown error',
    category: 'origin',
    retryAfter: 60,
    retryable: true,
    ownerActionRequired: true,
    failedHop: 'host',
    errorCode: 520,
    whatHappened: 'There is an unknown connection issue between the edge and the origin web server. As a result, the web page can not be displayed.',
    visitorAction: VISITOR_RETRY,
    ownerAction: 'Check the origin web server logs for crashes or resets around the time of this request, and check that it answers with a valid HTTP response and headers under the size limit. Quote the Ray ID below.',
    fix: "the website operator should check the origin's logs for crashes or resets at this time, and that it answers with valid HTTP."
  },
  {
    status: 521,
    name: 'web_server_down',
    title: 'Web server is down',
    category: 'origin',
    retryAfter: 120,
    retryable: true,
    ownerActionRequired: true,
    failedHop: 'host',
    errorCode: 521,
    whatHappened: 'The web server is not returning a connection. As a result, the web page is not displaying.',
    visitorAction: VISITOR_RETRY,
    ownerAction: 'Check that the origin web server is running and listening on the configured port, and that no firewall rejects connections from the edge.',
    fix: "the website operator should check that the origin web server is running and accepts connections on the configured port."
  },
  {
    status: 522,
    name: 'connection_timeout',
    title: 'Connection timed out',
    category: 'origin',
    retryAfter: 120,
    retryable: true,
    ownerActionRequired: true,
    failedHop: 'host',
    errorCode: 522,
    whatHappened: 'The initial connection between the edge and the origin web server timed out. As a result, the web page can not be displayed.',
    visitorAction: VISITOR_RETRY,
    ownerAction: 'Check, in order: whether the origin\'s CPU or memory is exhausted so its accept queue overflows; whether a firewall or rate limiter silently drops packets from the edge; whether the return route is broken; whether the link is congested.',
    fix: "the website operator should check whether the origin is overloaded (its accept queue full) or a firewall silently drops the edge's connections."
  },
  {
    status: 523,
    name: 'origin_unreachable',
    title: 'Origin is unreachable',
    category: 'origin',
    retryAfter: 120,
    retryable: true,
    ownerActionRequired: true,
    failedHop: 'host',
    errorCode: 523,
    whatHappened: 'The edge could not reach the origin web server: there is no route to its address.',
    visitorAction: VISITOR_RETRY,
    ownerAction: 'Check that the origin address configured at the edge is correct and that the network route to it is up.',
    fix: "the website operator should check the origin address configured at the edge and the network route to it."
  },
  {
    status: 524,
    name: 'timeout',
    title: 'A timeout occurred',
    category: 'origin',
    retryAfter: 120,
    retryable: true,
    ownerActionRequired: true,
    failedHop: 'host',
    errorCode: 524,
    whatHappened: 'The edge connected to the origin web server, but the origin did not answer with an HTTP response before the response timeout.',
    visitorAction: VISITOR_RETRY,
    ownerAction: 'Look for slow queries or long jobs run inside the request; move long work to a background job, or raise the response timeout for this route.',
    fix: "the website operator should look for slow work done inside the request at the origin."
  },
  {
    status: 525,
    name: 'ssl_handshake_failed',
    title: 'SSL handshake failed',
    category: 'ssl',
    retryAfter: null,
    retryable: false,
    ownerActionRequired: true,
    failedHop: 'host',
    errorCode: 525,
    whatHappened: 'The edge could not negotiate a TLS handshake with the origin web server.',
    visitorAction: 'Please try again later; the site owner has to fix this.',
    ownerAction: 'Check that TLS is enabled on the origin port, that it supports a current protocol version and cipher, and that it answers for the server name (SNI) the edge sends.',
    fix: "the website operator has to fix the origin's TLS configuration (protocol, cipher, server name)."
  },
  {
    status: 526,
    name: 'invalid_ssl_certificate',
    title: 'Invalid SSL certificate',
    category: 'ssl',
    retryAfter: null,
    retryable: false,
    ownerActionRequired: true,
    failedHop: 'host',
    errorCode: 526,
    whatHappened: 'The edge could not validate the TLS certificate of the origin web server.',
    visitorAction: 'Please try again later; the site owner has to fix this.',
    ownerAction: 'Check that the origin certificate is not expired or self-signed, is issued by a trusted CA (or the CA file configured at the edge), and covers the origin host name.',
    fix: "the website operator has to fix the origin's certificate (expired, self-signed, wrong name or unknown CA)."
  },
  {
    status: 530,
    name: 'origin_dns_error',
    title: 'Origin DNS error',
    category: 'dns',
    retryAfter: null,
    retryable: false,
    ownerActionRequired: true,
    failedHop: 'edge',
    errorCode: 1016,
    whatHappened: 'The edge could not resolve the host name of the origin web server.',
    visitorAction: 'Please try again later; the site owner has to fix this.',
    ownerAction: 'Check the DNS record of the origin host name configured at the edge.',
    fix: "the website operator has to fix the DNS record of the origin's host name."
  },
  {
    status: 502,
    name: 'bad_gateway',
    title: 'Bad gateway',
    category: 'origin',
    retryAfter: 60,
    retryable: true,
    ownerActionRequired: true,
    failedHop: 'host',
    errorCode: 502,
    whatHappened: 'The edge could not get a valid response from the origin web server.',
    visitorAction: VISITOR_RETRY,
    ownerAction: 'Look up the Ray ID below in the edge logs for the exact failure.',
    fix: "the website operator should look up the Ray ID in the edge logs."
  },
  {
    status: 503,
    name: 'origin_connection_limit',
    title: 'Origin connection limit reached',
    category: 'origin',
    retryAfter: 5,
    retryable: true,
    ownerActionRequired: true,
    failedHop: 'edge',
    errorCode: 503,
    // Also adaptive concurrency's answer (HPX_ERR_OVERLOADED): the origin has as many requests as it serves well.
    whatHappened: 'The origin web server already has as many connections or requests as the edge lets it have, and none became free in time.',
    visitorAction: VISITOR_RETRY,
    ownerAction: 'Check whether the origin answers slowly (busy connections pile up behind slow answers), then raise the pool\'s connections.max_per_origin if the origin can take more; with adaptive_concurrency on, the edge learned from its latency that it serves no more at once (see the Proxy-Status details).',
    fix: "the website operator should check why the origin answers slowly, or let the edge send it more at once."
  },
  {
    status: 400,
    name: 'bad_request',
    title: 'Bad request',
    category: 'edge',
    retryAfter: null,
    retryable: false,
    ownerActionRequired: false,
    failedHop: 'browser',
    errorCode: 400,
    whatHappened: 'The edge refused this request: its path or Host is malformed, or its path has dot segments (".." or ".", also percent-encoded or behind an encoded slash), which could reach a different resource at the origin than the one routed.',
    visitorAction: 'Check the address you typed.',
    ownerAction: 'No action needed unless your own links produce such paths; the edge log line says which rule refused it.',
    fix: "send the request without the path or header the edge refused."
  },
  {
    status: 413,
    name: 'payload_too_large',
    title: 'Request body too large',
    category: 'edge',
    retryAfter: null,
    retryable: false,
    ownerActionRequired: false,
    failedHop: 'browser',
    errorCode: 413,
    whatHappened: 'The request body is larger than this site accepts.',
    visitorAction: 'Send a smaller request.',
    ownerAction: 'Raise max_body_size for this route if such bodies are expected.',
    fix: "send a smaller request body."
  },
  {
    status: 417,
    name: 'expectation_failed',
    title: 'Expectation failed',
    category: 'edge',
    retryAfter: null,
    retryable: false,
    ownerActionRequired: false,
    failedHop: 'browser',
    errorCode: 417,
    whatHappened: 'The request has an Expect header the edge cannot meet (only 100-continue is understood).',
    visitorAction: 'Send the request without that Expect header.',
    ownerAction: 'No action needed.',
    fix: "send the request without its Expect header."
  },
  {
    // HTTP/2's timeouts.client_request (edge/request-deadline.ts); over HTTP/1.1 Node's
    // parser refuses the same request with a short plain answer (listen/client-errors.ts).
    status: 408,
    name: 'request_timeout',
    title: 'Request timeout',
    category: 'edge',
    retryAfter: null,
    retryable: false,
    ownerActionRequired: false,
    failedHop: 'browser',
    errorCode: 408,
    whatHappened: 'The request body did not all arrive within the time the edge allows for a whole request.',
    visitorAction: 'Check your connection, then send the request again.',
    ownerAction: 'Raise timeouts.client_request if clients on slow links send large bodies.',
    fix: "send the whole request body without pausing."
  },
  {
    status: 414,
    name: 'uri_too_long',
    title: 'Request URL too long',
    category: 'edge',
    retryAfter: null,
    retryable: false,
    ownerActionRequired: false,
    failedHop: 'browser',
    errorCode: 414,
    whatHappened: 'The request URL is longer than the edge accepts.',
    visitorAction: 'Use a shorter address.',
    ownerAction: 'Raise limits.max_url_length if such URLs are expected.',
    fix: "use a shorter URL."
  },
  {
    status: 431,
    name: 'request_header_fields_too_large',
    title: 'Request headers too large',
    category: 'edge',
    retryAfter: null,
    retryable: false,
    ownerActionRequired: false,
    failedHop: 'browser',
    errorCode: 431,
    whatHappened: 'The request has more headers than the edge accepts.',
    visitorAction: 'Clear this site\'s cookies and try again.',
    ownerAction: 'Raise limits.max_header_count if such requests are expected.',
    fix: "send fewer or smaller headers (clear this site's cookies)."
  },
  {
    status: 501,
    name: 'not_implemented',
    title: 'Transfer coding not implemented',
    category: 'edge',
    retryAfter: null,
    retryable: false,
    ownerActionRequired: false,
    failedHop: 'browser',
    errorCode: 501,
    whatHappened: 'The request body is sent with a transfer coding other than chunked (RFC 9112 §6.1), which the edge does not decode and will not pass on as if it were plain.',
    visitorAction: 'Send the request without that transfer coding.',
    ownerAction: 'No action needed.',
    fix: "send the body with Content-Length or chunked only."
  },
  {
    status: 505,
    name: 'http_version_not_supported',
    title: 'HTTP version not supported',
    category: 'edge',
    retryAfter: null,
    retryable: false,
    ownerActionRequired: false,
    failedHop: 'browser',
    errorCode: 505,
    whatHappened: 'The request line names an HTTP version other than HTTP/1.0 or HTTP/1.1 (HTTP/2 is negotiated with TLS ALPN, never written on a request line).',
    visitorAction: 'Use an up-to-date browser or HTTP client.',
    ownerAction: 'No action needed.',
    fix: "send HTTP/1.1 (or HTTP/2 negotiated over TLS)."
  },
  {
    status: 404,
    name: 'no_route',
    title: 'No route for this host',
    category: 'edge',
    retryAfter: null,
    retryable: false,
    ownerActionRequired: true,
    failedHop: 'edge',
    errorCode: 404,
    whatHappened: 'The edge has no route configured for this host and path.',
    visitorAction: 'Check the address you typed.',
    ownerAction: 'Add a route for this host and path to the edge configuration.',
    fix: "check the address; the website operator can add a route for this host and path."
  }
]

export const CATALOG: ReadonlyMap<number, EdgeErrorEntry> = new Map(entries.map(e => [e.status, e]))

/** The statuses a real origin fault can produce (what the lab and fault injection offer). */
export const ORIGIN_FAULT_STATUSES = [520, 521, 522, 523, 524, 525, 526, 530] as const
export type OriginFaultStatus = typeof ORIGIN_FAULT_STATUSES[number]

/**
 * HTTP/1.1 reason phrases for the edge statuses Node's table does not have (it sends an
 * empty phrase for them, or "unknown"): the names these statuses are known by, so that
 * clients, logs and `curl -v` read `522 Connection Timed Out`. HTTP/2 has no phrase.
 */
export const EDGE_REASON_PHRASES: Readonly<Record<number, string>> = {
  520: 'Web Server Returned an Unknown Error',
  521: 'Web Server Is Down',
  522: 'Connection Timed Out',
  523: 'Origin Is Unreachable',
  524: 'A Timeout Occurred',
  525: 'SSL Handshake Failed',
  526: 'Invalid SSL Certificate',
  530: 'Origin DNS Error'
}

/** The reason phrase for a status the edge sends itself: Node's, or the edge's own. */
export function reasonPhrase (status: number): string {
  return STATUS_CODES[status] ?? EDGE_REASON_PHRASES[status] ?? ''
}

export function catalogEntry (status: number): EdgeErrorEntry {
  const entry = CATALOG.get(status)
  if (entry === undefined) throw new RangeError(`no catalog entry for status ${status}`)
  return entry
}
