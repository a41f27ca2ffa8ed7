// Requests Node's HTTP parser refuses before (or while) they reach a handler: smuggling
// attempts, oversized headers, slow clients. Each gets a short answer with a ray id and
// one access line, like every other request the edge sees.

import type { Socket } from 'node:net'
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import { refusal, type RefusalNames } from '../page/refusal.js'
import { writeToResponse, writeToSocket } from '../page/write.js'
import { refusedAccess, type AccessLog } from '../edge/access-log.js'
import { ClientConnection } from '../edge/client-connection.js'
import { newRayId } from '../log/ray.js'

/** A well-formed request line with a version Node's parser does not speak (`HTTP/1.2`, `HTTP/3.0`). */
const OTHER_VERSION = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+ [^ \r\n]+ HTTP\/\d\.\d\r\n/

export function statusForClientError (code: string | undefined, packet?: Buffer): number {
  switch (code) {
    // RFC 9110 §15.6.6; a bare LF after the version fails the same way, and stays a 400.
    case 'HPE_INVALID_VERSION': return packet !== undefined && OTHER_VERSION.test(packet.subarray(0, 8192).toString('latin1')) ? 505 : 400
    case 'HPE_HEADER_OVERFLOW': return 431
    case 'ERR_HTTP_REQUEST_TIMEOUT': return 408
    default: return 400
  }
}

/** What every refusal of the listeners needs: who answers (page/refusal.ts), and the access log. */
export interface RefusalOptions extends RefusalNames { access: AccessLog }

export function clientErrorHandler (opts: RefusalOptions): (err: NodeJS.ErrnoException, socket: Socket) => void {
  return (err, socket) => {
    if (err.code === 'ECONNRESET') return
    const status = statusForClientError(err.code, (err as { rawPacket?: Buffer }).rawPacket)
    const connection = ClientConnection.peek(socket)
    // The edge closes this connection after the answer in flight (a 505, a refused body):
    // the bytes behind it are not read as a request, so they get no answer either.
    if (connection?.closing === true) return
    const inflight = connection?.active ?? null
    // The request in flight was read whole: the bytes that failed came after it. It was
    // (or is being) forwarded and gets its own answer and line; the bytes get theirs.
    if (connection !== undefined && inflight !== null && inflight.req.complete && inflight.clientError === null) {
      afterServed(opts, connection, socket, status, err.code ?? 'client_error')
      return
    }
    const ray = inflight?.ray ?? newRayId()
    if (inflight !== null) {
      // The request already has its access line coming: make it say what the client got.
      // A parser that fails again on bytes sent after that answer must not rewrite it.
      if (!inflight.clientFailed(status, err.code ?? 'client_error')) return
    } else {
      opts.access.refusal(refusedAccess(ray, status, err.code ?? 'client_error', '', '', socket), socket as Socket)
    }
    if (!socket.writable) return
    // A response already under way cannot be followed by another status line: cut it.
    if (inflight !== null && inflight.sink.started) {
      socket.destroy()
      return
    }
    const answer = refusal(opts, status, ray)
    writeToSocket(socket, status, answer.headers, answer.body)
  }
}

/**
 * Bytes that do not parse, behind requests that did: a line of their own now, and their
 * 400 once every request before them is answered (then the connection closes). Only the
 * first failure counts: Node's parser fails again on every later chunk.
 */
function afterServed (opts: RefusalOptions, connection: ClientConnection, socket: Socket, status: number, code: string): void {
  if (!connection.poison()) return
  const ray = newRayId()
  opts.access.refusal(refusedAccess(ray, status, code, '', '', socket), socket)
  // Nothing more is read: the parser is past the point where it can frame a request.
  socket.pause()
  // A request that said `Connection: close` (or HTTP/1.0's default) has Node end the
  // socket as its response finishes, before the 400 could follow: the end is this
  // callback's to make.
  socket.destroySoon = keepOpen
  connection.whenIdle(() => {
    if (!socket.writable || socket.destroyed) return
    const answer = refusal(opts, status, ray)
    writeToSocket(socket, status, answer.headers, answer.body)
  })
}

const keepOpen = (): void => {}

/**
 * Fastify's router refuses paths whose percent-escapes are not UTF-8 (/x%ff): answered
 * 400 like the parser's refusals, with a ray id and an access line.
 */
export function frameworkErrorHandler (opts: RefusalOptions): (error: FastifyError, req: FastifyRequest, reply: FastifyReply) => void {
  return (error, req, reply) => {
    reply.hijack()
    const ray = String(req.id)
    const answer = refusal(opts, 400, ray)
    writeToResponse(reply.raw, 400, answer.headers, answer.body)
    opts.access.refusal(refusedAccess(ray, 400, error.code, req.method, req.headers.host ?? '', req.socket), req.socket, req.url)
  }
}
