// HTTP/2 "rapid reset" (CVE-2023-44487): a client opens streams and resets them at once,
// in a loop. Each stream costs the edge a request (routing, often an origin dial) while
// the client pays one frame, and reset streams never count against
// max_concurrent_streams. Node 20's nghttp2 (1.57+) has a limit of its own (a burst of
// 1,000 resets, then 33 a second, then GOAWAY INTERNAL_ERROR), far above what a browser
// ever does. The edge's budget is explicit and smaller: more than `maxClientResets`
// streams reset by the client within `windowMs` on one connection, and that connection
// gets GOAWAY ENHANCE_YOUR_CALM and is closed. Other connections never notice.

import { constants, type Http2Session, type ServerHttp2Stream } from 'node:http2'
import { performance } from 'node:perf_hooks'
import type { Logger } from 'pino'
import type { Http2Limits } from '../../config/schema.js'
import { ResetFloodError } from '../../status/errors.js'

/** How long a client told GOAWAY may take to leave before its connection is destroyed. */
const GOAWAY_GRACE_MS = 1000

const destroy = (session: Http2Session): void => { session.destroy() }

/**
 * GOAWAY, then a close that lets the client see it (a destroy at once drops the frame);
 * a client that ignores it and holds its streams is cut a moment later.
 */
export function sendAway (session: Http2Session, code: number): void {
  session.goaway(code)
  session.close()
  setTimeout(destroy, GOAWAY_GRACE_MS, session).unref()
}

interface Budget { windowStart: number, resets: number, guard: ResetGuard }

const kBudget = Symbol('highproxy.resetBudget')
type Guarded = Http2Session & { [kBudget]?: Budget }

export class ResetGuard {
  constructor (private readonly limits: Pick<Http2Limits, 'maxClientResets' | 'clientResetWindowMs'>, private readonly log: Logger) {}

  /** A new session: its budget, and every stream of it watched. */
  watch (session: Http2Session): void {
    (session as Guarded)[kBudget] = { windowStart: performance.now(), resets: 0, guard: this }
    session.on('stream', watchStream)
  }

  /** A stream of `session` was reset by the client. */
  reset (session: Guarded, budget: Budget): void {
    const now = performance.now()
    if (now - budget.windowStart > this.limits.clientResetWindowMs) {
      budget.windowStart = now
      budget.resets = 0
    }
    if (++budget.resets <= this.limits.maxClientResets || session.destroyed) return
    const flood = new ResetFloodError(this.limits.maxClientResets, this.limits.clientResetWindowMs)
    this.log.warn({
      msg: 'http2 connection cut',
      error: { code: flood.code, message: flood.message },
      why: 'a client resetting streams in a loop (HTTP/2 rapid reset, CVE-2023-44487): GOAWAY ENHANCE_YOUR_CALM, connection closed',
      client: { address: session.socket?.remoteAddress ?? null, port: session.socket?.remotePort ?? null }
    })
    sendAway(session, constants.NGHTTP2_ENHANCE_YOUR_CALM)
  }
}

/**
 * Node announces a stream a tick after its HEADERS; a RST_STREAM read in the same chunk
 * has aborted it by then, before the edge could touch it: the client's reset.
 */
function watchStream (this: Guarded, stream: ServerHttp2Stream): void {
  if (stream.aborted) clientReset(this)
  else stream.once('aborted', onAborted)
}

/**
 * 'aborted': the stream closed before the edge finished its response. When the edge cut
 * it itself (a truncated origin response), the stream is already destroyed; otherwise the
 * client sent RST_STREAM.
 */
function onAborted (this: ServerHttp2Stream): void {
  if (!this.destroyed) clientReset(this.session as Guarded | undefined)
}

function clientReset (session: Guarded | undefined): void {
  const budget = session?.[kBudget]
  if (session !== undefined && budget !== undefined) budget.guard.reset(session, budget)
}
