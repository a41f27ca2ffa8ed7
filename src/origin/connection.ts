// One connection to an origin: the socket our dialer opened, and the undici Client that
// speaks HTTP/1.1 over it. The Client is made only once the dial has succeeded, so a
// refused or timed-out connect never reaches undici (its error path was most of the cost
// of a 522), and the transport knows exactly which socket an attempt rode: the failure
// record names its addresses, source port and dial timings without watching undici's
// diagnostics channel from the side.

import type { Socket } from 'node:net'
import { Client, errors } from 'undici'
import { withoutStack } from '../status/errors.js'
import type { DialInfo, Dialled } from './dial.js'
import type { ConnectionOwner, ConnectionSet } from './transport.js'

/**
 * undici's timers back ours up by this much; ours always answer first. The edge's origin
 * connections and highproxy/fastify's dispatcher both set their undici clients with it.
 */
export const UNDICI_BACKSTOP_MS = 1000

export interface ConnectionOptions {
  keepAliveTimeoutMs: number
  maxResponseHeaderBytes: number
  /**
   * undici's own headers/body timers, as a backstop behind our precise ones (its clock
   * ticks every ~0.5 s: a 524 on it would be up to half a second late).
   */
  backstopMs: number
}

/** What made a connection go, as far as the transport cares. */
export type ConnectionEnd = 'closed' | 'stray'

export class OriginConnection {
  readonly client: Client
  /** The socket in use and what its dial learned (replaced if undici reconnects). */
  info: DialInfo
  /** Requests started on the current socket: 0 until the first one, which owns the dial timings. */
  uses = 0
  busy = false
  closed = false
  owner: ConnectionOwner | null = null
  /** An upgrade took the socket: it lives on outside undici until the tunnel closes. */
  tunnelled = false
  /**
   * Our dialled socket until undici asks for it with the first request. A connection
   * closed before any request (its client left while it was dialled) still owns it.
   */
  private unclaimed: Socket | null

  /**
   * @param redial a fresh socket for the rare case undici reconnects this Client (the
   *   origin closed an idle connection just as a request was handed to it)
   * @param onEnd the connection is gone; `stray` when the origin sent bytes with no
   *   request outstanding (undici destroys the socket: the stream is out of sync)
   */
  constructor (readonly set: ConnectionSet, dialled: Dialled, opts: ConnectionOptions,
    redial: () => Promise<Dialled>, private readonly onEnd: (c: OriginConnection, why: ConnectionEnd, err: Error | null) => void) {
    this.info = dialled.info
    this.unclaimed = dialled.socket
    this.client = new Client(set.key, {
      connect: (_params, callback) => {
        if (this.unclaimed !== null) {
          const ready = this.unclaimed
          this.unclaimed = null
          // undici expects its connector to answer asynchronously, as a real dial does.
          process.nextTick(callback, null, ready)
          return
        }
        redial().then(next => {
          this.info = next.info
          this.uses = 0
          callback(null, next.socket)
        }, (err: Error) => callback(err, null))
      },
      pipelining: 1,
      // HTTP/1.1 to origins, said outright: undici 8 turns HTTP/2 on by default, and the
      // classification of 520s (and connection reuse) is built on HTTP/1.1's failures.
      allowH2: false,
      keepAliveTimeout: opts.keepAliveTimeoutMs,
      maxHeaderSize: opts.maxResponseHeaderBytes,
      headersTimeout: opts.backstopMs,
      bodyTimeout: opts.backstopMs
    })
    this.client.on('disconnect', (_origin, _clients, err: Error) => {
      const stray = !this.busy && (err as { code?: string }).code === 'UND_ERR_SOCKET' && err.message === 'bad response'
      this.end(stray ? 'stray' : 'closed', err)
    })
    // A Client with no socket and no requests is idle for ever: nothing to do on its errors.
    this.client.on('connectionError', () => {})
  }

  /**
   * The socket is gone (or must go). A request still on the Client finishes first: undici
   * may carry it on a fresh socket if none of its bytes were written; the transport
   * destroys the Client when that request ends.
   */
  private end (why: ConnectionEnd, err: Error | null): void {
    if (this.closed) return
    this.closed = true
    this.onEnd(this, why, err)
    if (!this.busy) this.destroy()
  }

  /** Closes the connection now (idle eviction, reload, shutdown). */
  close (): void {
    this.end('closed', null)
  }

  destroy (): void {
    this.closed = true
    this.unclaimed?.destroy()
    this.unclaimed = null
    // undici's own ClientDestroyedError captures a stack trace on every close: under
    // `reuse: never` that is once per client connection, for an error nobody reads.
    void this.client.destroy(withoutStack(() => new errors.ClientDestroyedError())).catch(() => {})
  }
}

/**
 * undici 7 builds HTTPParserError with `code: undefined` (it indexes llhttp's name→number
 * table by number), so a response that is not HTTP would carry no code at all. Typed
 * here, where undici hands its errors over, so classification can stay on codes.
 */
export function typedUndiciError (err: Error): Error {
  if (err.name === 'HTTPParserError' && (err as { code?: unknown }).code === undefined) {
    (err as { code?: string }).code = 'HPE_INVALID_RESPONSE'
  }
  return err
}
