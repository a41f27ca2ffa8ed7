// timeouts.client_headers on HTTP/2. Over HTTP/1.x, Node's parser answers 408 to a
// connection whose request headers are not all in within the limit, a silent one
// included. An HTTP/2 stream is only announced once its headers are complete, so the
// edge cannot see a slow header block; what it can see is a connection that has not
// completed its first request in time (opened and left silent, or trickling a HEADERS
// frame's CONTINUATIONs). That connection gets GOAWAY and is closed, with the access line
// Node's 408 gets on HTTP/1.x. Later requests on a connection are bounded by the idle
// timeout and the stream limits.

import { constants, type Http2Session } from 'node:http2'
import type { Socket } from 'node:net'
import type { RefusalOptions } from '../client-errors.js'
import { refusedAccess } from '../../edge/access-log.js'
import { newRayId } from '../../log/ray.js'
import { sendAway } from './reset-guard.js'

export function watchFirstRequest (session: Http2Session, headersTimeoutMs: number, refusals: RefusalOptions): void {
  const timer = setTimeout(tooSlow, headersTimeoutMs, session, refusals)
  const clear = (): void => { clearTimeout(timer) }
  session.once('stream', clear)
  session.once('close', clear)
}

function tooSlow (session: Http2Session, refusals: RefusalOptions): void {
  if (session.destroyed) return
  const socket = session.socket as Socket
  refusals.access.refusal(refusedAccess(newRayId(), 408, 'ERR_HTTP_REQUEST_TIMEOUT', '', '', socket), socket)
  sendAway(session, constants.NGHTTP2_NO_ERROR)
}
