// The request body the origin gets: the client's body piped through a meter of our own.
// - A chunked body has no declared size: it is counted as it streams, and cut at the
//   route's limit (413).
// - The attempt learns when the whole body was handed to the origin's socket (the
//   response timeout starts then) and when the origin stops reading it: undici pauses
//   its source when the origin's socket is full, and a pause that lasts
//   `timeouts.origin_write` is a 524.
// - undici destroys the body it was given when an origin fails mid-upload. Were that the
//   client's request itself, the client's connection would die with it, before the edge
//   could answer; the meter is what it destroys instead.

import { Transform, type TransformCallback } from 'node:stream'
import { BodyTooLargeError, withoutStack } from '../status/errors.js'
import type { ClientRequest, Exchange } from './exchange.js'

/** What the meter tells the attempt that is sending it. */
export interface BodyWatcher {
  bodySent (): void
  bodyStalled (stalled: boolean): void
}

export class BodyMeter extends Transform {
  /** Bytes passed on to the origin side so far. */
  bytes = 0
  private watcher: BodyWatcher | null = null

  constructor (private readonly limit: number) {
    super()
    this.on('pause', () => this.watcher?.bodyStalled(true))
    this.on('resume', () => this.watcher?.bodyStalled(false))
    this.on('end', () => this.watcher?.bodySent())
    // Over the limit before undici reads it (while the attempt dials): the attempt finds
    // it in `errored` and answers 413; undici listens for errors once it has the body.
    this.on('error', () => {})
  }

  /** Only the attempt that dispatched the body hears of it (a retry never sent any). */
  watch (watcher: BodyWatcher): void {
    this.watcher = watcher
  }

  override _transform (chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.bytes += chunk.length
    if (this.limit > 0 && this.bytes > this.limit) done(withoutStack(() => new BodyTooLargeError(this.limit)))
    else done(null, chunk)
  }
}

/** Whether a request carries a body (HTTP/1.1 framing; an HTTP/2 stream that did not end with its headers). */
export function hasBody (exchange: Pick<Exchange, 'stream' | 'headers'>): boolean {
  const stream = exchange.stream
  if (stream !== null) return !stream.endAfterHeaders
  const length = exchange.headers['content-length']
  return exchange.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0')
}

export function meterBody (req: ClientRequest, limit: number): BodyMeter {
  return req.pipe(new BodyMeter(limit))
}
