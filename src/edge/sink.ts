// Where an attempt writes the client's response. A request answered through Node's
// ServerResponse (HTTP/1.1, or HTTP/2's compatible response), an HTTP/2 stream the TLS
// front door hands over, and an upgrade request, which only has its raw socket, are
// written the same way by the attempt and the error pages; only these classes know the
// difference.

import type { ServerResponse } from 'node:http'
import { performance } from 'node:perf_hooks'
import { constants, type Http2ServerResponse, type ServerHttp2Stream } from 'node:http2'
import type { Duplex } from 'node:stream'
import { rawHead } from '../page/raw-response.js'
import { headerObject } from '../page/write.js'

export interface ClientSink {
  /** The status line went out: the status can no longer change. */
  readonly started: boolean
  /** The status the client got, once started. */
  readonly status: number
  /** When the status line went out (performance.now()): the client's time to first byte. */
  readonly startedAt: number
  /** The client is gone (or the response was cut): writing is pointless. */
  readonly gone: boolean
  /** The response was written to the end. */
  readonly completed: boolean
  start (status: number, text: string, headers: string[]): void
  /** False: the client is not keeping up; `onDrain` says when to write again. */
  write (chunk: Buffer): boolean
  onDrain (resume: () => void): void
  end (body?: string): void
  /** The only honest signal left once the status was sent: a cut connection. */
  cut (): void
  /** Called once when the response is over, whichever way it ended. */
  onClose (done: () => void): void
}

type NodeResponse = ServerResponse | Http2ServerResponse

export class ResponseSink implements ClientSink {
  startedAt = 0
  private ended = false
  // Http2ServerResponse has ServerResponse's API for everything written here.
  private readonly res: ServerResponse

  /** @param stream the HTTP/2 stream behind `res` (Node's compatibility API), null over HTTP/1.x: the caller knows which */
  constructor (res: NodeResponse, private readonly stream: ServerHttp2Stream | null) {
    this.res = res as ServerResponse
  }

  get started (): boolean { return this.res.headersSent }
  get status (): number { return this.res.statusCode }
  get gone (): boolean { return this.res.destroyed || this.res.writableEnded }
  // A stream the HTTP/2 client reset is ended by Node itself: finished, but not by us.
  get completed (): boolean { return this.ended && this.res.writableFinished }

  start (status: number, text: string, headers: string[]): void {
    this.startedAt = performance.now()
    // HTTP/2 has no reason phrase; Node warns when one is given.
    if (this.stream !== null) this.res.writeHead(status, headers)
    else this.res.writeHead(status, text, headers)
  }

  write (chunk: Buffer): boolean { return this.res.write(chunk) }
  onDrain (resume: () => void): void { this.res.once('drain', resume) }
  end (body?: string): void {
    this.ended = true
    this.res.end(body)
  }

  cut (): void { this.res.destroy() }
  onClose (done: () => void): void {
    // An HTTP/2 stream the client reset before its request reached the edge (rapid
    // reset) is closed already: its 'close' event is past.
    if (this.stream?.closed === true) done()
    // 'close' comes once: `on` spares the wrapper `once` makes (a storm makes thousands).
    else this.res.on('close', done)
  }
}

/**
 * An HTTP/2 stream, answered with Node's core API: the status and headers are one
 * HEADERS frame, the body DATA frames, and the end of the body ends the stream (the
 * compatible response holds END_STREAM for trailers it never has).
 */
export class StreamSink implements ClientSink {
  started = false
  status = 0
  startedAt = 0
  private ended = false

  constructor (private readonly stream: ServerHttp2Stream) {}

  // Not writableEnded alone: Node ends a HEAD stream's writable side when it arrives,
  // and the edge's own answer to it (a 404, a 521) must still be sent.
  get gone (): boolean { return this.stream.closed || this.stream.destroyed || (this.stream.writableEnded && this.stream.headersSent) }
  // A stream the client reset is ended by Node itself: finished, but not by us.
  get completed (): boolean { return this.ended && this.stream.writableFinished }

  start (status: number, _text: string, headers: string[]): void {
    // The client reset the stream meanwhile: there is no one to answer (its close ends
    // the exchange). A closed stream may outlive the reset while its buffered body is
    // read, and respond() on it throws.
    if (this.stream.closed || this.stream.destroyed) return
    this.startedAt = performance.now()
    this.stream.respond(headerObject(status, headers))
    this.started = true
    this.status = status
  }

  // Node ends a HEAD, 204 or 304 stream with its headers: a body after them goes nowhere.
  write (chunk: Buffer): boolean { return this.stream.writableEnded || this.stream.destroyed || this.stream.write(chunk) }
  onDrain (resume: () => void): void { this.stream.once('drain', resume) }
  end (body?: string): void {
    this.ended = true
    if (!this.stream.writableEnded && !this.stream.destroyed) this.stream.end(body, this.stopReading)
  }

  /**
   * A complete response while the client is still sending its body (a 408 or 413, an
   * origin that answered early): RST_STREAM NO_ERROR asks it to stop (RFC 9113 §8.1).
   * Node does this itself only for a stream whose body nobody read.
   */
  private readonly stopReading = (): void => {
    if (this.stream.closed || this.stream.readableEnded) return
    this.stream.close(constants.NGHTTP2_NO_ERROR)
    // Node destroys a stream closed with NO_ERROR only once its body is read to the end,
    // and nobody reads it now (the meter left): drop what is buffered, so it closes.
    this.stream.unpipe()
    this.stream.resume()
  }

  /** RST_STREAM INTERNAL_ERROR: the client sees a response that did not end. */
  cut (): void { this.stream.close(constants.NGHTTP2_INTERNAL_ERROR) }
  onClose (done: () => void): void {
    // Node announces a stream before it handles the frames behind its HEADERS, so it is
    // open here; one handed over closed would never emit the 'close' that ends the exchange.
    if (this.stream.closed) done()
    else this.stream.on('close', done)
  }
}

/** An upgrade request's socket: answers in raw HTTP/1.1, and the connection closes after. */
export class SocketSink implements ClientSink {
  started = false
  status = 0
  startedAt = 0
  completed = false
  private next: string | null = null

  constructor (private readonly socket: Duplex) {
    socket.on('error', () => socket.destroy())
  }

  get gone (): boolean { return this.socket.destroyed || this.socket.writableEnded }

  start (status: number, text: string, headers: string[]): void {
    this.switched(status)
    // Without a content-length the body ends when the connection closes, as it will.
    this.socket.write(rawHead(status, headers, null, text))
  }

  write (chunk: Buffer): boolean { return this.socket.write(chunk) }
  onDrain (resume: () => void): void { this.socket.once('drain', resume) }
  end (body?: string): void {
    this.completed = true
    if (this.next === null) this.socket.end(body)
    else {
      if (body !== undefined) this.socket.write(body)
      this.socket.end(this.next)
    }
  }

  /**
   * A whole second answer, written after this one before the socket closes (bytes
   * pipelined behind a refused upgrade); false when this answer would not be framed
   * (it has started already, and may end at close).
   */
  follow (answer: string): boolean {
    if (this.started || this.gone) return false
    this.next = answer
    return true
  }

  cut (): void { this.socket.destroy() }
  onClose (done: () => void): void { this.socket.on('close', done) }

  /** The 101 went out: the socket is the tunnel's now. */
  switched (status: number): Duplex {
    this.started = true
    this.status = status
    this.startedAt = performance.now()
    return this.socket
  }
}
