// The headers every response the edge sends carries, proxied or its own: the ray id,
// our Server, and the extras the configuration adds (a route's response headers, HSTS).
// They take plain values, so the listeners, the edge and the Fastify integration build
// them alike without knowing one another's types.

import { rayHeaderValue } from '../log/ray.js'

export const SERVER_NAME = 'highproxy'

/** Which header carries the ray id, and the edge's name after it. */
export interface EdgeNames {
  readonly rayHeader: string
  readonly edgeName: string
}

/** The edge's own response headers for every route (Strict-Transport-Security), flat; a route's own win. */
export function edgeResponseHeaders (hsts: string | null | undefined): string[] {
  return hsts === null || hsts === undefined ? [] : ['strict-transport-security', hsts]
}

/**
 * Headers on every response the edge sends: the ray id, our Server, then `extra` (flat
 * name/value list). HTTP/2 has no Connection header (RFC 9113 §8.2.2): a draining server
 * sends its sessions GOAWAY instead.
 */
export function edgeHeaders (ray: string, names: EdgeNames, extra: readonly string[], draining: boolean, http2: boolean): string[] {
  const headers = [names.rayHeader, rayHeaderValue(ray, names.edgeName), 'server', SERVER_NAME]
  // A kept-alive connection would hold a draining server open until its idle timeout.
  if (draining && !http2) headers.push('connection', 'close')
  for (let i = 0; i < extra.length; i++) headers.push(extra[i] as string)
  return headers
}
