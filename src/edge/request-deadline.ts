// timeouts.client_request on HTTP/2. Node's HTTP/1 parser enforces it itself (a 408
// through client-errors.ts); its HTTP/2 server has no such timer, so a client could
// hold a stream open by sending its body one byte a minute, keeping an origin request
// (and its connection) waiting. A stream whose body is not all in within the limit gets
// the same 408 as over HTTP/1.1, or a reset when its response had already begun, and
// its origin request is cancelled. Only streams with a body are watched: one that ended
// with its headers is complete when it arrives. The 408 is the edge's own answer like
// any refusal of a request it read: the negotiated page, the route's headers and its
// status rewrite.

import { refusalFacts } from '../page/refusal.js'
import { answerError } from './answer.js'
import type { ClientRequest, Exchange } from './exchange.js'
import type { EdgeRuntime } from './runtime.js'

/** Node's code for the same timeout on HTTP/1.x: the access line's `refused` is the same. */
const REQUEST_TIMEOUT = 'ERR_HTTP_REQUEST_TIMEOUT'
const TIMED_OUT = refusalFacts(408, REQUEST_TIMEOUT)

export function watchRequestDeadline (edge: EdgeRuntime, exchange: Exchange, req: ClientRequest): void {
  const timer = setTimeout(timedOut, edge.config.clientRequestTimeoutMs, edge, exchange)
  const clear = (): void => { clearTimeout(timer) }
  req.once('end', clear)
  exchange.sink.onClose(clear)
}

function timedOut (edge: EdgeRuntime, exchange: Exchange): void {
  // Answered already (a 413, an origin that answered early), or reset by the client.
  if (exchange.finished || exchange.sink.gone || !exchange.clientFailed(408, REQUEST_TIMEOUT)) return
  exchange.abort()
  const sink = exchange.sink
  if (sink.started) { sink.cut(); return }
  answerError(edge, exchange, TIMED_OUT)
}
