// Which headers cross the proxy, each way. Hop-by-hop headers (RFC 9110 §7.6.1) are
// for one connection only; the X-Forwarded-* set tells the origin who asked.

import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http'

const HOP_BY_HOP = [
  'connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization',
  'te', 'trailer', 'transfer-encoding', 'upgrade'
]

function dropHopByHop (headers: Record<string, unknown>): void {
  const listed = headers.connection
  if (typeof listed === 'string') {
    for (const name of listed.split(',')) delete headers[name.trim().toLowerCase()]
  }
  for (const name of HOP_BY_HOP) delete headers[name]
}

export interface ForwardFacts {
  clientIp: string
  /** The scheme the client used to reach the edge. */
  proto: 'http' | 'https'
  /** The Host the client sent. */
  host: string | undefined
  rayHeader: string
  rayValue: string
  /** Host header for the origin: its own (undefined) or the client's. */
  originHost: string | undefined
}

/** Mutates the copy reply-from made of the client's headers. */
export function toOrigin (headers: IncomingHttpHeaders, facts: ForwardFacts): IncomingHttpHeaders {
  dropHopByHop(headers)
  const prior = headers['x-forwarded-for']
  headers['x-forwarded-for'] = prior === undefined || prior === '' ? facts.clientIp : `${String(prior)}, ${facts.clientIp}`
  headers['x-forwarded-proto'] = facts.proto
  if (facts.host !== undefined) headers['x-forwarded-host'] = facts.host
  headers[facts.rayHeader] = facts.rayValue
  if (facts.originHost !== undefined) headers.host = facts.originHost
  return headers
}

export const SERVER_NAME = 'highproxy'

/** The origin's response headers as the client sees them. */
export function toClient (headers: OutgoingHttpHeaders): OutgoingHttpHeaders {
  dropHopByHop(headers as Record<string, unknown>)
  headers.server = SERVER_NAME
  return headers
}
