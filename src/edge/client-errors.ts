// Requests Node's HTTP parser refuses before (or while) they reach a handler: smuggling
// attempts, oversized headers, slow clients. Each gets a short answer with a ray id and
// one access line, like every other request the edge sees.

import type { Socket } from 'node:net'
import { STATUS_CODES } from 'node:http'
import type { Logger } from 'pino'
import type { EdgeContext } from './context.js'
import { SERVER_NAME } from './forward-headers.js'
import { newRayId, rayHeaderValue } from './ray.js'

/** The request in flight on a client socket, so a parser error mid-body is logged with it. */
export const kSocketRequest = Symbol('highproxy.socketRequest')
export type ClientSocket = Socket & { [kSocketRequest]?: EdgeContext | undefined }

export function statusForClientError (code: string | undefined): number {
  switch (code) {
    case 'HPE_HEADER_OVERFLOW': return 431
    case 'ERR_HTTP_REQUEST_TIMEOUT': return 408
    default: return 400
  }
}

export interface ClientErrorOptions { log: Logger, rayHeader: string, edgeName: string }

export function clientErrorHandler (opts: ClientErrorOptions): (err: NodeJS.ErrnoException, socket: Socket) => void {
  return (err, raw) => {
    const socket = raw as ClientSocket
    if (err.code === 'ECONNRESET') return
    const status = statusForClientError(err.code)
    const inflight = socket[kSocketRequest]
    if (inflight !== undefined) {
      // The request already has its access line coming: make it say what happened.
      inflight.clientError = status
    } else {
      opts.log.info({ msg: 'access', method: '', host: '', path: '', status, ray_id: newRayId(), duration_ms: 0, route: null, edge_status: status, client_error: err.code ?? 'ERR' })
    }
    if (!socket.writable) return
    // A response already under way cannot be followed by another status line: cut it.
    if (inflight !== undefined && (inflight.ttfbMs !== null || inflight.edgeStatus !== null)) {
      socket.destroy()
      return
    }
    const body = `${status} ${STATUS_CODES[status] ?? ''}: the edge refused this request\n`
    socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\n` +
      `${opts.rayHeader}: ${rayHeaderValue(inflight?.ray ?? newRayId(), opts.edgeName)}\r\nserver: ${SERVER_NAME}\r\n` +
      `content-type: text/plain; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`)
  }
}
