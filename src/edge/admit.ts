// What the edge refuses before a request reaches any origin: a request it could not
// route safely, or one past its limits. Each refusal has a status and a short reason
// for the access line; none is ever forwarded.

import type { EscapedSlashes } from '../config/schema.js'
import type { ClientRequest } from './exchange.js'

export interface Refusal {
  status: 400 | 413 | 414 | 417 | 431 | 501 | 505
  /** Which rule refused it (the access line's `refused`). */
  reason: 'http_version' | 'transfer_coding' | 'asterisk_target' | 'target_invalid' | 'method_invalid' | 'upgrade_pipelined' | 'url_too_long' | 'too_many_headers' | 'host_count' | 'host_invalid' | 'escaped_slash' | 'dot_segment'
    | 'body_too_large' | 'upgrade_with_body' | 'expectation' | 'header_list_too_large'
}

export interface AdmitLimits {
  maxUrlLength: number
  maxHeaderCount: number
  maxRequestHeaderBytes: number
}

/**
 * RFC 9110 §7.2 / RFC 3986 §3.2.2: `host [ ":" port ]`, where host is an IP literal in
 * brackets or a reg-name (unreserved, pct-encoded, sub-delims). `evil.com:80@127.0.0.1`,
 * `a b`, `<script>` or `evil.com/../x` are not hosts: they would reach the origin as
 * X-Forwarded-Host, and the edge's own pages.
 */
export const HOST = /^(?:\[[0-9A-Fa-f:.]+\]|(?:[A-Za-z0-9\-._~!$&'()*+,;=]|%[0-9A-Fa-f]{2})+)(?::[0-9]{0,5})?$/

/**
 * A "." or ".." path segment, as an origin may read it: dots percent-encoded or not,
 * segments ended by "/", "\" (Windows servers), their encoded forms (origins that decode
 * %2F before resolving dot segments, as nginx does), or a `;` path parameter (`..;/`,
 * Tomcat). `/api/..%2fadmin` would match a route for /api and reach /admin.
 */
const DOT_SEGMENT = /(?:^|\/|\\|%2f|%5c)(?:\.|%2e){1,2}(?:$|\/|\\|%2f|%5c|;)/i

const ESCAPED_SLASH = /%2f|%5c/i

/** RFC 9110 §5.6.2 token: a method. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/

/** RFC 9112 §3.2.2 absolute-form, as a forward proxy would get it: an http(s) URL. */
const ABSOLUTE = /^https?:\/\/[^/?#\s]+(?:[/?][^\s]*)?$/i

/** Node keeps the first of two Host headers; an edge must refuse the request (RFC 9112 §3.2). */
function hostCount (raw: string[]): number {
  let n = 0
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string
    if (name.length === 4 && name.toLowerCase() === 'host') n++
  }
  return n
}

/**
 * An HTTP/2 request's header list size as RFC 9113 §6.5.2 counts it: each field's name
 * and value, plus 32, pseudo-headers included. Node's HTTP/2 server only announces the
 * limit in SETTINGS (its own cap is 64 KiB); HTTP/1.x's parser enforces it itself.
 */
function headerListSize (raw: string[]): number {
  let n = 16 * raw.length
  for (let i = 0; i < raw.length; i++) n += (raw[i] as string).length
  return n
}

/** The request's own faults, found before routing; null when it may be routed. */
export function refusalOf (req: ClientRequest, http2: boolean, host: string, path: string, escaped: EscapedSlashes, limits: AdmitLimits): Refusal | null {
  // Node's parser takes any `HTTP/d.d` on a request line (HTTP/2.0, HTTP/1.7): only 1.0
  // and 1.1 are HTTP/1 (RFC 9112 §2.3), and the connection closes after the answer.
  if (!http2 && (req.httpVersionMajor !== 1 || (req.httpVersion !== '1.1' && req.httpVersion !== '1.0'))) return { status: 505, reason: 'http_version' }
  const te = req.headers['transfer-encoding']
  if (te !== undefined) {
    // RFC 9112 §6.1: an HTTP/1.0 message with Transfer-Encoding has faulty framing.
    if (req.httpVersion === '1.0') return { status: 400, reason: 'transfer_coding' }
    // Node's parser decodes `chunked` and passes any other coding (gzip, …) on as if the
    // bytes were plain: the origin would get coded bytes with only a Content-Length.
    if (te.trim().toLowerCase() !== 'chunked') return { status: 501, reason: 'transfer_coding' }
  }
  // `*` is the target of OPTIONS only (RFC 9112 §3.2.4, RFC 9113 §8.3.1).
  const url = req.url ?? ''
  if (url === '*') {
    if (req.method !== 'OPTIONS') return { status: 400, reason: 'asterisk_target' }
  } else if (!url.startsWith('/') && (http2 || !ABSOLUTE.test(url))) {
    // Anything else was routed as `/`: a target that is not a path (HTTP/2's :path must
    // be one; HTTP/1.1 also takes the absolute form) is refused, never rewritten.
    return { status: 400, reason: 'target_invalid' }
  }
  // Node's HTTP/1 parser takes only token methods; HTTP/2's :method is any string.
  if (http2 && !TOKEN.test(req.method ?? '')) return { status: 400, reason: 'method_invalid' }
  if ((req.url ?? '').length > limits.maxUrlLength) return { status: 414, reason: 'url_too_long' }
  // Node meets `Expect: 100-continue` itself; nothing else can be met (RFC 9110 §10.1.1).
  const expect = req.headers.expect
  if (expect !== undefined && !/^100-continue$/i.test(expect.trim())) return { status: 417, reason: 'expectation' }
  if (req.rawHeaders.length / 2 > limits.maxHeaderCount) return { status: 431, reason: 'too_many_headers' }
  if (http2) {
    if (headerListSize(req.rawHeaders) > limits.maxRequestHeaderBytes) return { status: 431, reason: 'header_list_too_large' }
  } else if (hostCount(req.rawHeaders) !== 1) {
    // HTTP/2 carries :authority instead, which Node reports as the Host.
    return { status: 400, reason: 'host_count' }
  }
  if (!HOST.test(host) || portOutOfRange(host)) return { status: 400, reason: 'host_invalid' }
  if (escaped === 'reject' && ESCAPED_SLASH.test(path)) return { status: 400, reason: 'escaped_slash' }
  if (DOT_SEGMENT.test(path)) return { status: 400, reason: 'dot_segment' }
  return null
}

/** `x:99999`: the grammar allows five digits, TCP only 0–65535. */
function portOutOfRange (host: string): boolean {
  const colon = host.lastIndexOf(':')
  if (colon === -1 || host.endsWith(']')) return false
  return Number(host.slice(colon + 1)) > 65535
}

/** `unescape`: %2F and %5C become the separators they encode, before routing and forwarding. */
export function unescapeSlashes (path: string): string {
  return ESCAPED_SLASH.test(path) ? path.replace(/%2f/gi, '/').replace(/%5c/gi, '\\') : path
}
