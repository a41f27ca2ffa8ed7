// Where an attempt writes the client's response. A request answered through Node's
// ServerResponse (HTTP/1.1, or HTTP/2's compatible response) and an upgrade request,
// which only has its raw socket, are written the same way by the attempt and the
// error pages; only these two classes know the difference.

import type { ServerResponse } from 'node:http'
import { performance } from 'node:perf_hooks'
import type { Http2ServerResponse } from 'node:http2'
import type { Duplex } from 'node:stream'
import { rawHead } from '../page/raw-response.js'

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
  private readonly http2: boolean
  // Http2ServerResponse has ServerResponse's API for everything written here.
  private readonly res: ServerResponse

  constructor (res: NodeResponse) {
    this.http2 = (res as Http2ServerResponse).stream !== undefined
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
    if (this.http2) this.res.writeHead(status, headers)
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
    if (this.http2 && (this.res as unknown as Http2ServerResponse).stream.closed) done()
    else this.res.once('close', done)
  }
}

/** An upgrade request's socket: answers in raw HTTP/1.1, and the connection closes after. */
export class SocketSink implements ClientSink {
  started = false
  status = 0
  startedAt = 0
  completed = false

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
    this.socket.end(body)
  }

  cut (): void { this.socket.destroy() }
  onClose (done: () => void): void { this.socket.once('close', done) }

  /** The 101 went out: the socket is the tunnel's now. */
  switched (status: number): Duplex {
    this.started = true
    this.status = status
    this.startedAt = performance.now()
    return this.socket
  }
}
