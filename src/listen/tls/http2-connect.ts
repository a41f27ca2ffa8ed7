// CONNECT over HTTP/2 (RFC 9113 §8.5) arrives as a stream without :path: the same 405
// refusal as HTTP/1.1's CONNECT gets, written as an HTTP/2 answer, with its access line.

import type { IncomingHttpHeaders } from 'node:http'
import type { ServerHttp2Stream } from 'node:http2'
import type { Socket } from 'node:net'
import type { RefusalOptions } from '../client-errors.js'
import { refusedAccess } from '../../edge/access-log.js'
import { newRayId } from '../../log/ray.js'
import { connectRefusal } from '../../page/refusal.js'
import { writeToStream } from '../../page/write.js'

export function refuseConnect (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, socket: Socket, refusals: RefusalOptions): void {
  const ray = newRayId()
  const answer = connectRefusal(refusals, ray)
  writeToStream(stream, 405, answer.headers, answer.body)
  refusals.access.refusal(refusedAccess(ray, 405, 'connect_method', 'CONNECT', String(headers[':authority'] ?? ''), socket), socket)
}
