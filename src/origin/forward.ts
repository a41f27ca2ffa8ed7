// Forwarding one request to an origin and streaming the answer back, straight from
// undici's callbacks to the client's socket. This replaced @fastify/reply-from on the
// hot path (see the README's Performance section for the profile): no per-request URL
// parsing, no copy of the headers into a stream object and back, and the client's
// request stream is never handed to code that destroys it when the origin fails.

import type { IncomingHttpHeaders, ServerResponse } from 'node:http'
import type { Readable } from 'node:stream'
import { performance } from 'node:perf_hooks'
import type { Dispatcher } from 'undici'
import type { EdgeContext } from '../edge/context.js'
import { droppedFromResponse } from '../edge/forward-headers.js'
import { BodyIdleTimeoutError, ResponseTimeoutError, withoutStack } from '../errors.js'
import { normalizeOriginError } from './agent.js'

export interface ForwardRequest {
  origin: string
  path: string
  method: string
  headers: IncomingHttpHeaders
  body: Readable | null
  headersTimeoutMs: number
  /** Longest pause between two chunks of the origin's response body. */
  bodyIdleTimeoutMs: number
}

export interface ForwardCallbacks {
  /** Headers the edge adds to every response (ray id, server), as a flat name/value list, built when the response starts. */
  edgeHeaders: () => string[]
  /**
   * Redirects must not leak the origin's address: a Location (or Content-Location) that
   * starts with `from` is rewritten to start with `to` (nginx's proxy_redirect default).
   */
  redirect: { from: string, to: string }
  /** Response headers arrived; false means the edge answers instead (the origin response is dropped). */
  onHeaders: (statusCode: number) => boolean
  /** The origin failed; `headersSent` tells whether the status could still change. */
  onError: (err: Error, headersSent: boolean) => void
  onDone: () => void
}

const UNDICI_BACKSTOP_MS = 1000

const isLocation = (name: string): boolean =>
  (name.length === 8 || name.length === 16) && /^(content-)?location$/i.test(name)

interface PendingHead { statusCode: number, statusText: string, headers: string[] }

/** undici's callback API (what its own request() uses), written to the client directly. */
class ForwardHandler {
  private resume: (() => void) | null = null
  /** One precise timer: the response timeout until headers arrive, then the body idle timeout. */
  private timer: NodeJS.Timeout | null = null
  /**
   * The origin's status line and headers, held until the first body byte (or the end):
   * an origin that resets right after its headers still gets an honest 520, because
   * nothing has reached the client yet.
   */
  private head: PendingHead | null = null
  private headWritten = false
  /** The edge answered instead of the origin; the abort that follows is ours, not a failure. */
  private dropped = false
  private readonly drain = (): void => { this.resume?.() }

  constructor (private readonly res: ServerResponse, private readonly ctx: EdgeContext,
    private readonly callbacks: ForwardCallbacks, private readonly req: ForwardRequest) {}

  onConnect (abort: (reason?: Error) => void): void {
    this.ctx.abortOrigin = abort
  }

  /** undici's own timers run on a ~0.5 s clock: a 524 would land up to half a second late. */
  private arm (ms: number, reason: () => Error): void {
    this.stopTimer()
    this.timer = setTimeout(() => { this.ctx.abortOrigin?.(withoutStack(reason)) }, ms)
  }

  private stopTimer (): void {
    if (this.timer !== null) clearTimeout(this.timer)
    this.timer = null
  }

  /** The request is on the wire: the response timeout starts now. */
  onRequestSent (): void {
    // An origin may answer before the request body is done (an echo, an early 413).
    if (this.ctx.ttfbMs !== null) return
    const ms = this.req.headersTimeoutMs
    this.arm(ms, () => new ResponseTimeoutError(ms))
  }

  onHeaders (statusCode: number, raw: Buffer[], resume: () => void, statusText: string): boolean {
    // 1xx (e.g. 103 Early Hints) are not forwarded: the final response follows.
    if (statusCode < 200) return true
    this.ctx.ttfbMs = performance.now() - this.ctx.start
    if (!this.callbacks.onHeaders(statusCode)) {
      this.stopTimer()
      this.dropped = true
      this.ctx.abortOrigin?.(new Error('origin response replaced by the edge'))
      return false
    }
    const idle = this.req.bodyIdleTimeoutMs
    this.arm(idle, () => new BodyIdleTimeoutError(idle))
    this.resume = resume
    const headers = this.callbacks.edgeHeaders()
    const { from, to } = this.callbacks.redirect
    for (let i = 0; i < raw.length; i += 2) {
      const name = (raw[i] as Buffer).toString('latin1')
      if (droppedFromResponse(name)) continue
      let value = (raw[i + 1] as Buffer).toString('latin1')
      if (isLocation(name) && value.startsWith(from)) value = to + value.slice(from.length)
      headers.push(name, value)
    }
    this.head = { statusCode, statusText, headers }
    return true
  }

  private writeHead (): void {
    const head = this.head
    if (head === null || this.headWritten) return
    this.headWritten = true
    this.res.writeHead(head.statusCode, head.statusText, head.headers)
  }

  onData (chunk: Buffer): boolean {
    if (this.head === null) return true
    this.timer?.refresh()
    this.writeHead()
    if (this.res.write(chunk)) return true
    this.res.once('drain', this.drain)
    return false
  }

  onComplete (): void {
    this.stopTimer()
    this.writeHead()
    this.res.end()
    this.callbacks.onDone()
  }

  onError (err: Error): void {
    this.stopTimer()
    this.callbacks.onDone()
    if (this.dropped) return
    this.callbacks.onError(normalizeOriginError(err), this.headWritten)
  }

  onUpgrade (): void {
    // Upgrades are never dispatched through this handler.
  }
}

export function forward (dispatcher: Dispatcher, req: ForwardRequest, res: ServerResponse,
  ctx: EdgeContext, callbacks: ForwardCallbacks): void {
  dispatcher.dispatch({
    origin: req.origin,
    path: req.path,
    method: req.method as Dispatcher.HttpMethod,
    headers: req.headers as Record<string, string>,
    body: req.body,
    // Our own timers answer first; undici's coarse ones only back them up.
    headersTimeout: req.headersTimeoutMs + UNDICI_BACKSTOP_MS,
    bodyTimeout: req.bodyIdleTimeoutMs + UNDICI_BACKSTOP_MS
  }, new ForwardHandler(res, ctx, callbacks, req) as unknown as Dispatcher.DispatchHandler)
}
