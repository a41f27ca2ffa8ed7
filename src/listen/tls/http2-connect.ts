// CONNECT over HTTP/2 (RFC 9113 §8.5) arrives as a stream without :path: the same 405
// refusal as HTTP/1.1's CONNECT gets, written as an HTTP/2 answer, with its access line.

import type { IncomingHttpHeaders } from 'node:http'
import type { ServerHttp2Stream } from 'node:http2'
import type { Socket } from 'node:net'
import { connectRefusal, refusedAccess, type RefusalOptions } from '../client-errors.js'
import { newRayId } from '../../log/ray.js'
import { headerObject } from '../../edge/sink.js'

const ignore = (): void => {}

export function refuseConnect (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, socket: Socket, refusals: RefusalOptions): void {
  const ray = newRayId()
  const answer = connectRefusal(refusals, ray)
  stream.on('error', ignore)
  stream.respond(headerObject(405, answer.headers))
  stream.end(answer.body)
  refusals.access.refusal(refusedAccess(ray, 405, 'connect_method', 'CONNECT', String(headers[':authority'] ?? ''), socket), socket)
}
