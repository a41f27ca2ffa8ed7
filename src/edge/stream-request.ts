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

export class StreamRequest {
  readonly httpVersion = '2.0'
  readonly httpVersionMajor = 2
  readonly method: string
  /** `:path`: CONNECT has none (the front door refuses it before the edge sees it). */
  readonly url: string
  /** The session's socket (Node's proxy of the TLS socket), where the connection's stamp is read. */
  readonly socket: Socket

  constructor (readonly stream: ServerHttp2Stream, readonly headers: IncomingHttpHeaders, readonly rawHeaders: string[], socket: Socket) {
    this.method = headers[':method'] as string
    this.url = (headers[':path'] as string | undefined) ?? ''
    this.socket = socket
  }

  /** Nothing more will come from the client: its body was read, or the stream is gone. */
  get complete (): boolean { return this.stream.readableEnded || this.stream.destroyed }

  /**
   * A stream the client resets before the end of its body, even with NO_ERROR, did not
   * send all of it, yet Node ends its readable side as if it had: the body is cut
   * instead, so an origin never gets a complete, shorter request.
   */
  pipe<T extends Writable> (destination: T): T {
    const cut = (): void => { destination.destroy(withoutStack(() => new ClientAbortError())) }
    if (this.stream.aborted) cut()
    else this.stream.once('aborted', cut)
    return this.stream.pipe(destination)
  }

  once (event: 'end', listener: () => void): this {
    this.stream.once(event, listener)
    return this
  }
}
