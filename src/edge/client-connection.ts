// One client connection, as the edge sees it: the requests it sent, answered one at a
// time and in order (HTTP/1.1 pipelining), and the origin connections it owns under the
// reuse policy. Node parses pipelined requests as fast as they arrive and hands every
// one to the handler at once; proxied as they come, 1,000 requests in one write became
// 1,000 origin connections. Here the next request starts when the previous one is over,
// and reading stops while `maxWaiting` requests are queued, so one client can never be
// amplified into many origin connections or unbounded memory. HTTP/2 streams run side
// by side (their concurrency is the session's own limit).

import type { EventEmitter } from 'node:events'
import { ConnectionOwner } from '../origin/transport.js'
import type { Exchange } from './exchange.js'

const kClient = Symbol('highproxy.clientConnection')

/** A TCP socket (HTTP/1.1) or an HTTP/2 session. */
type Carrier = EventEmitter & { pause?: () => void, resume?: () => void, destroyed?: boolean, [kClient]?: ClientConnection }

export interface ExchangeRunner {
  /** Start serving an exchange whose turn it is. */
  run: (exchange: Exchange) => void
  /** The connection closed before this exchange's turn: it still gets its access line. */
  abandon: (exchange: Exchange) => void
}

export class ClientConnection {
  readonly owner = new ConnectionOwner()
  active: Exchange | null = null
  private readonly waiting: Exchange[] = []
  private paused = false
  private closed = false
  /** The active request is the last this connection serves (its answer closes it). */
  private ending = false
  /** Bytes after the requests read so far did not parse (client-errors.ts). */
  private poisoned = false
  /** Runs once no request is active or waiting. */
  private idle: (() => void) | null = null

  private constructor (private readonly carrier: Carrier, private readonly serial: boolean,
    private readonly maxWaiting: number, private readonly runner: ExchangeRunner) {
    // 'close' comes once: `on` spares the wrapper `once` makes per connection.
    carrier.on('close', () => this.close())
  }

  static of (carrier: Carrier, serial: boolean, maxWaiting: number, runner: ExchangeRunner): ClientConnection {
    let conn = carrier[kClient]
    if (conn === undefined) {
      conn = new ClientConnection(carrier, serial, maxWaiting, runner)
      carrier[kClient] = conn
    }
    return conn
  }

  /** The connection's state, if it has sent a request already (for Node's parser errors). */
  static peek (carrier: object): ClientConnection | undefined {
    return (carrier as Carrier)[kClient]
  }

  /** A new request on this connection: served now, or after the ones before it. */
  admit (exchange: Exchange): void {
    if (this.closed || this.ending) { this.runner.abandon(exchange); return }
    if (!this.serial || this.active === null) {
      this.active = exchange
      this.runner.run(exchange)
      return
    }
    this.waiting.push(exchange)
    if (!this.paused && this.waiting.length >= this.maxWaiting && this.carrier.pause !== undefined) {
      this.paused = true
      this.carrier.pause()
    }
  }

  /** The edge decided this connection closes after its active request: nothing after it is read. */
  get closing (): boolean { return this.ending || this.closed }

  /** Marks the connection's later bytes unparseable; false when it was already. */
  poison (): boolean {
    if (this.poisoned) return false
    this.poisoned = true
    return true
  }

  /** `run` once every request this connection sent has been answered (now, if none is left). */
  whenIdle (run: () => void): void {
    if (this.active === null && this.waiting.length === 0) run()
    else this.idle = run
  }

  /** The active request's answer closes the connection: requests behind it are never served. */
  last (): void {
    this.ending = true
  }

  /** An exchange is over: the next one in line starts. */
  done (exchange: Exchange): void {
    if (this.active !== exchange) return
    this.active = null
    const next = this.waiting.shift()
    if (this.paused && this.waiting.length < this.maxWaiting / 2) {
      this.paused = false
      this.carrier.resume?.()
    }
    if (next === undefined) {
      const idle = this.idle
      this.idle = null
      idle?.()
      return
    }
    // The connection is going: its 'close' comes after the last response's.
    if (this.closed || this.ending || this.carrier.destroyed === true) { this.runner.abandon(next); return }
    this.active = next
    this.runner.run(next)
  }

  /** Every request not answered yet gets its access line; the active one's attempt is cancelled. */
  private close (): void {
    if (this.closed) return
    this.closed = true
    this.owner.release()
    if (this.active !== null) this.runner.abandon(this.active)
    for (const e of this.waiting.splice(0)) this.runner.abandon(e)
  }
}
