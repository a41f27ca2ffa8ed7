// Requests Node's HTTP parser refuses before (or while) they reach a handler: smuggling
// attempts, oversized headers, slow clients. Each gets a short answer with a ray id and
// one access line, like every other request the edge sees.

import type { Socket } from 'node:net'
import { STATUS_CODES } from 'node:http'
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import type { Logger } from 'pino'
import type { AccessRecord } from '../log.js'
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

/** The access line of a request refused before it reached the edge's handler. */
function refusedAccess (ray: string, status: number, code: string, method: string, host: string): AccessRecord & { client_error: string } {
  return { msg: 'access', method, host, path: '', status, ray_id: ray, duration_ms: 0, route: null, edge_status: status, ttfb_ms: null, connect_ms: null, client_error: code }
}

/** Status line text, headers and body of a refusal: short, with the ray id the log line carries. */
function refusal (opts: ClientErrorOptions, status: number, ray: string): { text: string, headers: Record<string, string>, body: string } {
  const text = STATUS_CODES[status] ?? ''
  return {
    text,
    headers: { [opts.rayHeader]: rayHeaderValue(ray, opts.edgeName), server: SERVER_NAME, 'content-type': 'text/plain; charset=utf-8' },
    body: `${status} ${text}: the edge refused this request\n`
  }
}

export function clientErrorHandler (opts: ClientErrorOptions): (err: NodeJS.ErrnoException, socket: Socket) => void {
  return (err, raw) => {
    const socket = raw as ClientSocket
    if (err.code === 'ECONNRESET') return
    const status = statusForClientError(err.code)
    const inflight = socket[kSocketRequest]
    const ray = inflight?.ray ?? newRayId()
    if (inflight !== undefined) {
      // The request already has its access line coming: make it say what happened.
      inflight.clientError = status
    } else {
      opts.log.info(refusedAccess(ray, status, err.code ?? 'ERR', '', ''))
    }
    if (!socket.writable) return
    // A response already under way cannot be followed by another status line: cut it.
    if (inflight !== undefined && (inflight.ttfbMs !== null || inflight.edgeStatus !== null)) {
      socket.destroy()
      return
    }
    const answer = refusal(opts, status, ray)
    let head = `HTTP/1.1 ${status} ${answer.text}\r\n`
    for (const [name, value] of Object.entries(answer.headers)) head += `${name}: ${value}\r\n`
    socket.end(`${head}content-length: ${Buffer.byteLength(answer.body)}\r\nconnection: close\r\n\r\n${answer.body}`)
  }
}

/**
 * Fastify's router refuses paths whose percent-escapes are not UTF-8 (/x%ff): answered
 * 400 like the parser's refusals, with a ray id and an access line.
 */
export function frameworkErrorHandler (opts: ClientErrorOptions): (error: FastifyError, req: FastifyRequest, reply: FastifyReply) => void {
  return (error, req, reply) => {
    reply.hijack()
    const ray = String(req.id)
    const answer = refusal(opts, 400, ray)
    reply.raw.writeHead(400, answer.text, answer.headers)
    reply.raw.end(answer.body)
    opts.log.info(refusedAccess(ray, 400, error.code, req.method, req.headers.host ?? ''))
  }
}
