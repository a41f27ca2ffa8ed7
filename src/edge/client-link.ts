// How a client reached the edge, worked out once per connection: plain HTTP or TLS
// (with the version and cipher negotiated), HTTP/1.x or HTTP/2. The TLS listener stamps
// each connection when its handshake completes (listen/tls/tls-listener.ts); a socket
// without a stamp is plain HTTP. Requests read the stamp; nothing here runs per request.

import type { TLSSocket } from 'node:tls'
import type { ClientRecord } from '../log/log.js'

export interface ClientLink {
  scheme: 'http' | 'https'
  /** `HTTP/1.1`, `HTTP/1.0`, `HTTP/2`. */
  protocol: string
  tls: { protocol: string, cipher: string } | null
  /** The `client` member of the log lines, shared by every request of the connection. */
  log: ClientRecord
}

const kLink = Symbol('highproxy.clientLink')

function link (protocol: string, tls: ClientLink['tls']): ClientLink {
  return {
    scheme: tls === null ? 'http' : 'https',
    protocol,
    tls,
    log: { protocol, tls_protocol: tls?.protocol ?? null, tls_cipher: tls?.cipher ?? null }
  }
}

const PLAIN = new Map(['1.1', '1.0', '0.9'].map(v => [v, link(`HTTP/${v}`, null)]))
const PLAIN_1_1 = PLAIN.get('1.1') as ClientLink

const stampOf = (socket: object | null | undefined): ClientLink | undefined =>
  (socket as { [kLink]?: ClientLink } | null | undefined)?.[kLink]

/** The version and cipher a TLS socket negotiated. */
const tlsOf = (socket: TLSSocket): NonNullable<ClientLink['tls']> =>
  ({ protocol: socket.getProtocol() ?? 'unknown', cipher: socket.getCipher()?.name ?? 'unknown' })

/** Called once per TLS connection, when its handshake is done. */
export function stampTls (socket: TLSSocket): void {
  (socket as TLSSocket & { [kLink]?: ClientLink })[kLink] = link(socket.alpnProtocol === 'h2' ? 'HTTP/2' : 'HTTP/1.1', tlsOf(socket))
}

/** The link of a connection's socket (an HTTP/2 request's socket reads through to its session's). */
export function linkOf (socket: object | null | undefined, httpVersion = '1.1'): ClientLink {
  return stampOf(socket) ?? PLAIN.get(httpVersion) ?? PLAIN_1_1
}
