// Which headers cross the proxy, each way. Hop-by-hop headers (RFC 9110 §7.6.1) are for
// one connection only. Identity headers (who the client is) are the edge's to set: from
// a peer it does not trust, a client's X-Forwarded-For, X-Real-IP, Forwarded, True-Client-IP
// or CF-Connecting-IP are forgeries, so they are dropped and rebuilt from what the edge
// saw (see client-ip.ts for trusted proxies).
//
// What depends only on the route (which names to drop, what to add) is built once per
// route as HeaderRules; per request only the values are filled in.

import type { IncomingHttpHeaders } from 'node:http'
import type { RouteConfig } from '../config/schema.js'
import type { PoolMember } from '../origin/pool.js'
import { edgeHeaders } from '../page/edge-headers.js'
import { appendMember, type ProxyStatus } from '../page/proxy-status.js'
import { rayHeaderValue } from '../log/ray.js'
import type { Exchange } from './exchange.js'

const HOP_BY_HOP = [
  'connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization',
  'te', 'trailer', 'transfer-encoding', 'upgrade',
  // The edge answers `Expect: 100-continue` itself; undici refuses to send it on.
  'expect',
  // Only meaningful with an Upgrade: h2c, which is never forwarded.
  'http2-settings'
]

/** Who the client is, as a client might claim it: the edge sets these itself. */
const IDENTITY = [
  'forwarded', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'x-forwarded-port',
  'x-real-ip', 'true-client-ip', 'cf-connecting-ip', 'x-client-ip', 'x-cluster-client-ip'
]

/** Flags shared by every route, changed at run time. */
export interface EdgeFlags {
  /** Set when the server starts draining: every later response closes its connection. */
  draining: boolean
}

export interface HeaderRules {
  readonly rayHeader: string
  readonly edgeName: string
  /** The header the decided client address goes in; null: none. */
  readonly clientIpHeader: string | null
  readonly hostHeader: 'origin' | 'keep'
  /** The route's own headers, flat name/value lists, lower-case names. */
  readonly requestExtra: readonly string[]
  readonly responseExtra: readonly string[]
  /** Incoming request headers never forwarded as they are. */
  readonly dropRequest: ReadonlySet<string>
  /** Origin response headers the client never sees as they are. */
  readonly dropResponse: ReadonlySet<string>
  /** The route's prefix, added back to rewritten redirects when it is stripped. */
  readonly redirectPrefix: string
  /** When relayed responses carry our Proxy-Status member (received-status). */
  readonly receivedStatus: ProxyStatus | null
  readonly flags: EdgeFlags
}

export interface EdgeIdentity {
  rayHeader: string
  edgeName: string
  clientIpHeader: string | null
  /** Tracing is on: the origin gets the edge's traceparent, never the client's as it came. */
  traced?: boolean
}

const TRACE_CONTEXT = ['traceparent', 'tracestate']

export function headerRules (route: RouteConfig, edge: EdgeIdentity, flags: EdgeFlags, receivedStatus: ProxyStatus | null,
  edgeExtra: readonly string[] = []): HeaderRules {
  const names = (flat: readonly string[]): string[] => flat.filter((_, i) => i % 2 === 0)
  const own = new Set(names(route.responseHeaders))
  const responseExtra = [...route.responseHeaders]
  for (let i = 0; i < edgeExtra.length; i += 2) {
    if (!own.has(edgeExtra[i] as string)) responseExtra.push(edgeExtra[i] as string, edgeExtra[i + 1] as string)
  }
  return {
    rayHeader: edge.rayHeader,
    edgeName: edge.edgeName,
    clientIpHeader: edge.clientIpHeader,
    hostHeader: route.hostHeader,
    requestExtra: route.requestHeaders,
    responseExtra,
    dropRequest: new Set([...HOP_BY_HOP, ...IDENTITY, 'host', edge.rayHeader, ...(edge.clientIpHeader === null ? [] : [edge.clientIpHeader]), ...names(route.requestHeaders),
      ...(edge.traced === true ? TRACE_CONTEXT : [])]),
    dropResponse: new Set([...HOP_BY_HOP, 'server', edge.rayHeader, ...names(responseExtra), ...(receivedStatus === null ? [] : ['proxy-status'])]),
    redirectPrefix: route.stripPrefix ? route.path.replace(/\/$/, '') : '',
    receivedStatus,
    flags
  }
}

/** `Connection: keep-alive, x-secret-hop` names more hop-by-hop headers for this request. */
function listedByConnection (value: string | undefined): Set<string> | null {
  if (value === undefined || value === 'keep-alive' || value === 'close') return null
  return new Set(value.split(',').map(n => n.trim().toLowerCase()))
}

const COLON = 0x3a

/** The request headers this origin receives, as the flat list undici takes. */
export function requestHeaders (exchange: Exchange, member: PoolMember, rules: HeaderRules): string[] {
  const incoming = exchange.headers
  const out: string[] = []
  const listed = listedByConnection(incoming.connection)
  const drop = rules.dropRequest
  for (const name in incoming) {
    // HTTP/2's pseudo-headers (:method, :path, :authority, :scheme) are the request line
    // and Host, which the origin gets from the request itself.
    if (drop.has(name) || (listed !== null && listed.has(name)) || name.charCodeAt(0) === COLON) continue
    const value = incoming[name]
    if (typeof value === 'string') out.push(name, value)
    else if (value !== undefined) for (const v of value) out.push(name, v)
  }
  const client = exchange.client
  out.push('x-forwarded-for', client.forwardedFor, 'x-forwarded-proto', client.forwardedProto, 'x-forwarded-host', exchange.host)
  if (rules.clientIpHeader !== null) out.push(rules.clientIpHeader, client.ip)
  for (let i = 0; i < rules.requestExtra.length; i++) out.push(rules.requestExtra[i] as string)
  out.push(rules.rayHeader, rayHeaderValue(exchange.ray, rules.edgeName))
  if (exchange.trace !== null) exchange.trace.inject(out)
  out.push('host', rules.hostHeader === 'keep' && exchange.host !== '' ? exchange.host : member.url.host)
  return out
}

/**
 * The origin's response headers for the client, after the edge's own, from the headers
 * undici already decoded (lower-case names, latin1 values, repeats as arrays). Redirects
 * must not leak the origin's address: a Location (or Content-Location) that starts with
 * the origin is rewritten to the client's host (nginx's proxy_redirect default).
 */
export function responseHeaders (exchange: Exchange, member: PoolMember, status: number, origin: IncomingHttpHeaders, rules: HeaderRules,
  upgrade = false): string[] {
  const headers = edgeHeaders(exchange.ray, rules, rules.responseExtra, rules.flags.draining, exchange.http2)
  if (rules.receivedStatus !== null) headers.push('proxy-status', appendMember(origin['proxy-status'], rules.receivedStatus.forRelayed(status)))
  const drop = rules.dropResponse
  // Fields the origin's Connection header names are for its hop only (RFC 9110 §7.6.1).
  const listed = listedByConnection(origin.connection)
  for (const name in origin) {
    if ((drop.has(name) || (listed !== null && listed.has(name))) && !(upgrade && name === 'upgrade')) continue
    const value = origin[name] as string | string[]
    if (typeof value !== 'string') {
      for (const v of value) headers.push(name, v)
    } else if ((name === 'location' || name === 'content-location') && value.startsWith(member.origin)) {
      headers.push(name, `${exchange.client.scheme}://${exchange.host}${rules.redirectPrefix}${value.slice(member.origin.length)}`)
    } else {
      headers.push(name, value)
    }
  }
  return headers
}
