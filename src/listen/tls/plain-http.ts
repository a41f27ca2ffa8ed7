// Plain HTTP sent to the TLS port (http://host:443/, or a client that forgot TLS). OpenSSL
// fails the handshake on the first bytes (ERR_SSL_HTTP_REQUEST) and the client got an
// empty reply. Like nginx, the edge answers it in plain HTTP: a 400 page that says what
// happened, with a ray id, and an access line whose `refused` names the cause. The
// request line itself was eaten by the TLS layer, so method and path stay empty.

import type { EventEmitter } from 'node:events'
import type { Socket } from 'node:net'
import type { TLSSocket } from 'node:tls'
import type { RefusalOptions } from '../client-errors.js'
import { refusedAccess } from '../../edge/access-log.js'
import { newRayId } from '../../log/ray.js'
import { refusal } from '../../page/refusal.js'
import { writeToSocket } from '../../page/write.js'

/** OpenSSL's code for an HTTP request where a ClientHello was expected. */
export const PLAIN_HTTP_ERROR = 'ERR_SSL_HTTP_REQUEST'
/** The access line's `refused` for it. */
export const PLAIN_HTTP_REFUSED = 'plain_http_to_https_port'

const TITLE = '400 The plain HTTP request was sent to HTTPS port'

function page (ray: string): string {
  return '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>' + TITLE + '</title></head>\n' +
    '<body><h1>400 Bad Request</h1>\n<p>The plain HTTP request was sent to HTTPS port. Use an <code>https://</code> address for this port.</p>\n' +
    `<p>Ray ID: <code>${ray}</code></p></body></html>\n`
}

/**
 * Answers the plain HTTP request on the TCP socket under the failed TLS one (Node keeps it
 * as `_parent`; nothing was written on it, so a plain answer reaches the client as is).
 */
export function answerPlainHttp (socket: TLSSocket, refusals: RefusalOptions): void {
  const ray = newRayId()
  refusals.access.refusal(refusedAccess(ray, 400, PLAIN_HTTP_REFUSED, '', '', socket), socket as Socket)
  const tcp = (socket as unknown as { _parent?: Socket })._parent
  if (tcp === undefined || tcp === null || tcp.destroyed || !tcp.writable) { socket.destroy(); return }
  const { headers } = refusal(refusals, 400, ray)
  const at = headers.indexOf('content-type')
  if (at !== -1) headers[at + 1] = 'text/html; charset=utf-8'
  writeToSocket(tcp, 400, headers, page(ray))
}

/**
 * Puts the plain-HTTP answer in front of the server's other clientError listeners
 * (Fastify's, which would log a bare 400 and find the TLS socket unwritable).
 */
export function answerPlainHttpOn (server: EventEmitter, refusals: RefusalOptions): void {
  const others = server.listeners('clientError')
  server.removeAllListeners('clientError')
  server.on('clientError', function (this: unknown, err: NodeJS.ErrnoException, socket: TLSSocket) {
    if (err.code === PLAIN_HTTP_ERROR) { answerPlainHttp(socket, refusals); return }
    for (const listener of others) (listener as (e: Error, s: TLSSocket) => void).call(this, err, socket)
  })
}
