// An HTTP/2 stream's request, as the edge reads a request (exchange.ts, ClientRequest),
// straight from the stream's headers. The TLS front door hands the edge its HTTP/2
// streams itself: Node's compatibility API (an Http2ServerRequest and an
// Http2ServerResponse around every stream, and Fastify's routing behind them) cost an
// HTTP/2 request more CPU than a whole HTTP/1.1 one (README, Performance).

import type { IncomingHttpHeaders } from 'node:http'
import type { ServerHttp2Stream } from 'node:http2'
import type { Socket } from 'node:net'
import type { Writable } from 'node:stream'
import { ClientAbortError, withoutStack } from '../status/errors.js'

const kProgress = Symbol('highproxy.requestProgress')

/** Bytes of a session's frames that carried requests forward (header blocks, body data). */
export interface Progress { bytes: number }

/** Starts counting what moves the requests of `session` forward (listen/tls/frame-budget.ts reads it). */
export function countProgress (session: object): Progress {
  const progress: Progress = { bytes: 0 }
  ;(session as { [kProgress]?: Progress })[kProgress] = progress
  return progress
}

/** An upper bound of a header block's size on the wire: HPACK never makes it larger than its fields plus a few bytes each. */
function headerBlockBytes (raw: string[]): number {
  let n = 9 + 4 * raw.length
  for (let i = 0; i < raw.length; i++) n += (raw[i] as string).length
  return n
}

export class StreamRequest {
  readonly httpVersion = '2.0'
  readonly httpVersionMajor = 2
  readonly method: string
  /** `:path`: CONNECT has none (the front door refuses it before the edge sees it). */
  readonly url: string
  /** The session's socket (Node's proxy of the TLS socket), where the connection's stamp is read. */
  readonly socket: Socket

  /** Where the body goes (the meter), once the edge reads it. */
  private body: Writable | null = null

  constructor (readonly stream: ServerHttp2Stream, readonly headers: IncomingHttpHeaders, readonly rawHeaders: string[], socket: Socket) {
    this.method = headers[':method'] as string
    this.url = (headers[':path'] as string | undefined) ?? ''
    this.socket = socket
    if (!stream.endAfterHeaders) stream.once('aborted', () => { this.abort() })
    const progress = (stream.session as { [kProgress]?: Progress } | undefined)?.[kProgress]
    if (progress !== undefined) progress.bytes += headerBlockBytes(rawHeaders)
  }

  /** Nothing more will come from the client: its body was read, or the stream is gone. */
  get complete (): boolean { return this.stream.readableEnded || this.stream.destroyed }

  pipe<T extends Writable> (destination: T): T {
    this.body = destination
    if (this.stream.aborted) this.abort()
    const piped = this.stream.pipe(destination)
    // Counted as the edge reads it (after pipe: this listener never starts the flow).
    const progress = (this.stream.session as { [kProgress]?: Progress } | undefined)?.[kProgress]
    if (progress !== undefined) this.stream.on('data', (chunk: Buffer) => { progress.bytes += chunk.length + 9 })
    return piped
  }

  /**
   * The client reset its stream before the end of its body. Even with NO_ERROR it did
   * not send all of it, yet Node would end the body as if it had, and keep the stream
   * open until that body is read, which may be never (a dial that waits): the body is
   * cut, so an origin never gets a complete, shorter request, and the stream goes now
   * (its close ends the exchange).
   */
  private abort (): void {
    this.body?.destroy(withoutStack(() => new ClientAbortError()))
    this.stream.destroy()
  }

  once (event: 'end', listener: () => void): this {
    this.stream.once(event, listener)
    return this
  }
}
