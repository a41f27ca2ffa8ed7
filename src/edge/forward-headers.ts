// Which headers cross the proxy, each way. Hop-by-hop headers (RFC 9110 §7.6.1) are
// for one connection only; the X-Forwarded-* set tells the origin who asked.

import type { IncomingHttpHeaders } from 'node:http'

const HOP_BY_HOP = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization',
  'te', 'trailer', 'transfer-encoding', 'upgrade',
  // The edge answers `Expect: 100-continue` itself; undici refuses to send it on.
  'expect'
])

/** Origin response headers the client never sees: hop-by-hop, and Server (the edge's own). */
export function droppedFromResponse (name: string): boolean {
  const lower = name.toLowerCase()
  return HOP_BY_HOP.has(lower) || lower === 'server'
}

export interface ForwardFacts {
  clientIp: string
  /** The scheme the client used to reach the edge. */
  proto: 'http' | 'https'
  rayHeader: string
  rayValue: string
  /** Host header for the origin. */
  host: string
  /** The route's own request headers, a flat name/value list. */
  extra: string[]
}

/** The request headers the origin receives. */
export function toOrigin (incoming: IncomingHttpHeaders, facts: ForwardFacts): IncomingHttpHeaders {
  const headers: IncomingHttpHeaders = {}
  const listed = incoming.connection
  const dropped = listed === undefined ? null : new Set(listed.split(',').map(n => n.trim().toLowerCase()))
  for (const name in incoming) {
    if (HOP_BY_HOP.has(name) || dropped?.has(name) === true) continue
    headers[name] = incoming[name]
  }
  const prior = incoming['x-forwarded-for']
  headers['x-forwarded-for'] = prior === undefined || prior === '' ? facts.clientIp : `${String(prior)}, ${facts.clientIp}`
  headers['x-forwarded-proto'] = facts.proto
  if (incoming.host !== undefined) headers['x-forwarded-host'] = incoming.host
  for (let i = 0; i < facts.extra.length; i += 2) headers[facts.extra[i] as string] = facts.extra[i + 1]
  headers[facts.rayHeader] = facts.rayValue
  headers.host = facts.host
  return headers
}

export const SERVER_NAME = 'highproxy'
