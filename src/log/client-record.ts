// The `client` member of a log line (how the client reached the server), read from a
// socket itself: for `highproxy/fastify`, inside someone else's server, where no edge
// listener stamped the connection (edge/client-link.ts does that for the edge's own).
// Runs once per failure, never per request.

import type { TLSSocket } from 'node:tls'
import type { ClientRecord } from './log-schema.js'

export function clientRecordOf (socket: object | null | undefined, httpVersion: string): ClientRecord {
  const protocol = httpVersion.startsWith('2') ? 'HTTP/2' : `HTTP/${httpVersion}`
  const tls = socket as Partial<TLSSocket> | null | undefined
  if (tls?.encrypted !== true) return { protocol, tls_protocol: null, tls_cipher: null }
  return {
    protocol,
    tls_protocol: (tls as TLSSocket).getProtocol() ?? 'unknown',
    tls_cipher: (tls as TLSSocket).getCipher()?.name ?? 'unknown'
  }
}
