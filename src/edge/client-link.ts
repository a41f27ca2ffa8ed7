// How a client reached the edge, worked out once per connection: plain HTTP or TLS
// (with the version and cipher negotiated), HTTP/1.x or HTTP/2. The TLS listener stamps
// each connection when its handshake completes (front/tls-listener.ts); a socket
// without a stamp is plain HTTP. Requests read the stamp; nothing here runs per request.

import type { TLSSocket } from 'node:tls'
import type { ClientRecord } from '../log.js'

export interface ClientLink {
  scheme: 'http' | 'https'
  /** `HTTP/1.1`, `HTTP/1.0`, `HTTP/2`. */
  protocol: string
  http2: boolean
  tls: { protocol: string, cipher: string } | null
  /** The `client` member of the log lines, shared by every request of the connection. */
  log: ClientRecord
}

const kLink = Symbol('highproxy.clientLink')

function link (protocol: string, tls: ClientLink['tls']): ClientLink {
  return {
    scheme: tls === null ? 'http' : 'https',
    protocol,
    http2: protocol === 'HTTP/2',
    tls,
    log: { protocol, tls_protocol: tls?.protocol ?? null, tls_cipher: tls?.cipher ?? null }
  }
}

const PLAIN = new Map(['1.1', '1.0', '0.9'].map(v => [v, link(`HTTP/${v}`, null)]))
const PLAIN_1_1 = PLAIN.get('1.1') as ClientLink

/** Called once per TLS connection, when its handshake is done. */
export function stampTls (socket: TLSSocket): void {
  const tls = { protocol: socket.getProtocol() ?? 'unknown', cipher: socket.getCipher()?.name ?? 'unknown' };
  (socket as TLSSocket & { [kLink]?: ClientLink })[kLink] = link(socket.alpnProtocol === 'h2' ? 'HTTP/2' : 'HTTP/1.1', tls)
}

/**
 * The `client` member of a line for a socket no edge listener stamped (highproxy/fastify
 * inside someone else's server): read from the socket itself, once per failure.
 */
export function clientRecordOf (socket: object | null | undefined, httpVersion: string): ClientRecord {
  const stamped = (socket as { [kLink]?: ClientLink } | null | undefined)?.[kLink]
  if (stamped !== undefined) return stamped.log
  const protocol = httpVersion.startsWith('2') ? 'HTTP/2' : `HTTP/${httpVersion}`
  const tls = socket as Partial<TLSSocket> | null | undefined
  if (tls?.encrypted !== true) return { protocol, tls_protocol: null, tls_cipher: null }
  return { protocol, tls_protocol: tls.getProtocol?.() ?? 'unknown', tls_cipher: tls.getCipher?.()?.name ?? 'unknown' }
}

/** The link of a connection's socket (an HTTP/2 request's socket reads through to its session's). */
export function linkOf (socket: object | null | undefined, httpVersion = '1.1'): ClientLink {
  const stamped = (socket as { [kLink]?: ClientLink } | null | undefined)?.[kLink]
  if (stamped !== undefined) return stamped
  return PLAIN.get(httpVersion) ?? PLAIN_1_1
}
