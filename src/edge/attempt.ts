// One try at one origin: it takes a connection from the pool's transport, sends the
// request, and streams the answer to the client. It is undici's dispatch handler (the
// documented controller API), and its fields are the attempt's facts: the connection
// and its dial timings, how far it got (phase), whether request bytes reached the
// origin, whether the status went out to the client, and how it ended. The proxy loop
// reads those facts as the Outcome, classifies a failure, and decides whether to try
// again.

import type { IncomingHttpHeaders } from 'node:http'
import { performance } from 'node:perf_hooks'
import type { Duplex } from 'node:stream'
import type { Dispatcher } from 'undici'
import { typedUndiciError, type OriginConnection } from '../origin/connection.js'
import type { PoolMember } from '../origin/pool.js'
import { switchingHead } from '../page/raw-response.js'
import {
  BadResponseError, BodyIdleTimeoutError, ClientWriteTimeoutError, OriginErrorReplacedError, ResponseTimeoutError, WriteTimeoutError,
  dialErrorIn, withoutStack, type Phase
} from '../status/errors.js'
import type { BodyMeter } from './body.js'
import { watchFlush } from './client-write.js'
import type { RoutedExchange } from './exchange.js'
import { requestHeaders, responseHeaders, type HeaderRules } from './forward-headers.js'
import type { SocketSink } from './sink.js'
import { takeCopy, type CopyTaker, type StaleRoute } from './stale.js'

/** What the proxy loop reads of an attempt once it is over. */
export interface Outcome {
  readonly ok: boolean
  readonly error: Error | null
  readonly phase: Phase
  /** Request bytes may have reached the origin: never retried, whatever the method. */
  readonly requestSent: boolean
  /** The status went out to the client: it cannot change any more. */
  readonly headersSent: boolean
}

/** The settings an attempt runs with, fixed per pool and route when the config loads. */
export interface AttemptSettings {
  headers: HeaderRules
  responseTimeoutMs: number
  bodyIdleTimeoutMs: number
  originWriteTimeoutMs: number
  /** timeouts.client_write: how long the client may read none of the response. */
  clientWriteTimeoutMs: number
  /** Always online for this route; null: off. */
  stale: StaleRoute | null
}

/** The armed timer: the origin's response, its body, its reading of ours; or the client's reading of the response. */
type TimerKind = 'response' | 'body' | 'write' | 'client'

/** RFC 9112 reason-phrase: HTAB, SP, VCHAR, obs-text. Anything else cannot be relayed. */
const INVALID_REASON = /[^\t\x20-\x7e\x80-\xff]/ // eslint-disable-line no-control-regex

export class Attempt implements Dispatcher.DispatchHandler, Outcome {
  ok = false
  error: Error | null = null
  phase: Phase = 'connect'
  requestSent = false
  headersSent = false

  connection: OriginConnection | null = null
  /** The connection was dialled for this attempt: its dial timings are this attempt's. */
  fresh = false
  /** Times from the exchange's arrival (ms): the attempt had its connection, wrote its request head, had the origin's response headers. */
  connectedMs: number | null = null
  sentMs: number | null = null
  ttfbMs: number | null = null
  /** The origin's status, once its headers arrived. */
  originStatus = 0

  private controller: Dispatcher.DispatchController | null = null
  /** The connection to give back to the transport when the attempt ends (not a tunnel's). */
  private lease: OriginConnection | null = null
  private pendingAbort: Error | null = null
  private timer: NodeJS.Timeout | null = null
  private timerKind: TimerKind = 'response'
  /** The origin's status line and headers, held until its first body byte (see onResponseStart). */
  private held: { status: number, text: string, headers: string[] } | null = null
  private settle: ((a: Attempt) => void) | null = null
  /** The copy Always online takes of this response as it streams; null: none. */
  private copy: CopyTaker | null = null
  /** Made on the first backpressure: most responses never need it. */
  private resume: (() => void) | null = null
  /** When adaptive concurrency let it through (performance.now()); null: not admitted by it. */
  private admittedAt: number | null = null
  /** Waiting in adaptive concurrency's queue: what to cancel if the client leaves. */
  private queued: Promise<void> | null = null
  /** The attempt counts in its client's share of the origin (client-share.ts). */
  private inShare = false
  /** The origin answered 101: the tunnel owns the origin's in-flight count from here. */
  private tunnel = false
  /**
   * Set by the pending-connect cap while this attempt's dial waits there (the attempt is
   * the dial's GateOwner): called when the client leaves, the dial leaves the queue at
   * once and never sends its SYN.
   */
  leave: (() => void) | null = null

  private readonly settings: AttemptSettings

  /** @param freshOnly never an idle connection (an upgrade, or a retry after a reused one was dropped) */
  constructor (readonly exchange: RoutedExchange, readonly member: PoolMember, readonly number: number, private readonly freshOnly = false) {
    this.settings = exchange.route.settings
  }

  /**
   * Runs the attempt to its end; the promise resolves with the attempt itself, as the
   * outcome. The origin counts it in flight from here until `finish`, or, for an upgrade,
   * until its tunnel closes.
   */
  run (): Promise<Attempt> {
    this.exchange.trace?.attemptStarted(this)
    this.member.inFlight++
    this.member.health.acquire()
    return new Promise(resolve => {
      this.settle = resolve
      const share = this.member.connections.transport.enterShare(this.member.connections, this.exchange.client.ip)
      if (share === null) this.inClientShare()
      else {
        share.then(() => { this.inClientShare() }, (err: Error) => {
          this.phase = 'queue'
          this.finish(err)
        })
      }
    })
  }

  /** Within its client's share of the origin: adaptive concurrency's gate, then a connection. */
  private inClientShare (): void {
    this.inShare = true
    // The client left while its request waited for its share.
    if (this.pendingAbort !== null) { this.finish(this.pendingAbort); return }
    const limiter = this.member.adaptive
    if (limiter === null) { this.start(); return }
    // Adaptive concurrency: in when the origin is below its learned limit, else queued or shed (503).
    const admitted = limiter.acquire()
    if (admitted === true) { this.admitted(); return }
    this.queued = admitted
    admitted.then(() => {
      this.queued = null
      if (this.settle === null) { limiter.release(performance.now(), null); return }
      this.admitted()
    }, (err: Error) => {
      this.queued = null
      this.phase = 'queue'
      this.finish(err)
    })
  }

  private admitted (): void {
    this.admittedAt = performance.now()
    this.start()
  }

  /** For the pending-connect cap: the client left (its connection closed, or its stream was reset). */
  get released (): boolean {
    return this.pendingAbort !== null || this.exchange.aborted || this.exchange.connection.owner.released
  }

  private start (): void {
    const transport = this.member.connections.transport
    const owner = this.exchange.connection.owner
    // An upgrade leaves its connection to the tunnel: it never takes an idle one.
    const idle = this.exchange.upgrade === null && !this.freshOnly ? transport.idle(this.member.connections, owner) : null
    if (idle !== null) {
      this.send(idle)
      return
    }
    transport.open(this.member.connections, owner, this).then(c => {
      this.fresh = true
      const ms = c.info.timings.connect_ms
      if (ms !== null) this.member.health.condition.connected(ms)
      this.send(c)
    }, (err: Error) => {
      const dial = dialErrorIn(err)
      this.phase = dial?.phase ?? 'queue'
      // Before the proxy loop reads the outcome: its line and page name the condition.
      if (dial !== null) this.member.health.condition.dialFailed(dial, dial.timings.connect_ms ?? 0)
      this.finish(err)
    })
  }

  /** Cancels the attempt (the client left, or the edge answers instead). */
  abort (reason: Error): void {
    if (this.settle === null) return
    // Still queued by adaptive concurrency: it leaves the queue now, taking no slot.
    if (this.queued !== null && this.member.adaptive?.cancel(this.queued) === true) {
      this.queued = null
      this.phase = 'queue'
      this.finish(reason)
      return
    }
    if (this.controller === null) {
      this.pendingAbort ??= reason
      // Waiting at the pending-connect cap: out of its queue now, no SYN (the dial ends as a client abort).
      const leave = this.leave
      if (leave !== null) {
        this.leave = null
        leave()
      }
    } else {
      this.controller.abort(reason)
    }
  }

  private send (c: OriginConnection): void {
    this.connection = c
    this.lease = c
    this.connectedMs = this.exchange.elapsed()
    // The client left, or its body grew past the limit, while we dialled: the connection
    // is good, the request is not sent.
    const stop = this.pendingAbort ?? this.exchange.body?.errored ?? null
    if (stop !== null) { this.finish(stop, true); return }
    c.uses++
    const exchange = this.exchange
    exchange.connection.owner.started = true
    c.client.dispatch({
      path: originPath(exchange),
      method: exchange.method as Dispatcher.HttpMethod,
      headers: requestHeaders(exchange, this.member, this.settings.headers),
      body: exchange.body,
      upgrade: exchange.upgrade
    }, this)
  }

  onRequestStart (controller: Dispatcher.DispatchController): void {
    this.controller = controller
    this.requestSent = true
    // undici writes the request head right after this call, in the same turn.
    this.sentMs = this.exchange.elapsed()
    const body = this.exchange.body as BodyMeter | null
    if (body === null) {
      this.phase = 'response'
      this.arm('response', this.settings.responseTimeoutMs)
      return
    }
    this.phase = 'request'
    body.watch(this)
  }

  /** The whole request body was handed to the origin's socket: the response timeout starts. */
  bodySent (): void {
    // A body that ends after the attempt did (the client's stream ended as the edge answered) starts nothing.
    if (this.settle === null) return
    this.stopTimer()
    // An origin may answer before the upload ends (an echo, an early 413).
    if (this.ttfbMs !== null) return
    this.phase = 'response'
    this.arm('response', this.settings.responseTimeoutMs)
  }

  /** The origin stopped reading the request body (its socket is full) or read again. */
  bodyStalled (stalled: boolean): void {
    if (this.phase !== 'request') return
    if (stalled) this.arm('write', this.settings.originWriteTimeoutMs)
    else this.stopTimer()
  }

  onResponseStart (_controller: Dispatcher.DispatchController, statusCode: number, origin: IncomingHttpHeaders, statusMessage?: string): void {
    // 1xx (e.g. 103 Early Hints) are not forwarded: the final response follows.
    if (statusCode < 200) return
    this.ttfbMs = this.exchange.elapsed()
    this.originStatus = statusCode
    this.phase = 'body'
    this.member.health.succeeded()
    if (this.sentMs !== null) this.member.health.condition.answered(this.ttfbMs - this.sentMs, this.member.inFlight)
    const text = statusMessage ?? ''
    if (INVALID_REASON.test(text)) {
      this.abortWith(new BadResponseError('a control character in the status line'))
      return
    }
    if (this.exchange.route.config.originErrors === 'replace' && statusCode >= 500) {
      this.abortWith(new OriginErrorReplacedError(statusCode))
      return
    }
    const headers = responseHeaders(this.exchange, this.member, statusCode, origin, this.settings.headers)
    // The status and headers wait for the first body byte (or the end): an origin that
    // resets right after its headers still gets an honest 520, since nothing reached the
    // client yet.
    this.held = { status: statusCode, text, headers }
    if (this.settings.stale !== null) this.copy = takeCopy(this.settings.stale, this.exchange, statusCode, text, origin, headers)
    this.arm('body', this.settings.bodyIdleTimeoutMs)
  }

  onResponseData (controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.held === null) return
    this.timer?.refresh()
    if (!this.headersSent && !this.writeHead()) return
    if (this.copy !== null && !this.copy.add(chunk)) this.copy = null
    const sink = this.exchange.sink
    if (!sink.write(chunk)) {
      controller.pause()
      // While the client is not reading, the origin is not the one late: its body timer
      // waits, and the client has timeouts.client_write to read.
      this.arm('client', this.settings.clientWriteTimeoutMs)
      this.resume ??= () => {
        if (this.settle === null || this.controller === null) return
        this.arm('body', this.settings.bodyIdleTimeoutMs)
        this.controller.resume()
      }
      sink.onDrain(this.resume)
    }
  }

  onResponseEnd (): void {
    // The client was not reading the last of it: the rest waits in its stream, and the
    // client still has timeouts.client_write to take it.
    const stalled = this.timerKind === 'client' && this.timer !== null
    this.stopTimer()
    if (this.held === null) return
    if (!this.headersSent && !this.writeHead()) return
    if (stalled) watchFlush(this.exchange, this.settings.clientWriteTimeoutMs)
    this.exchange.sink.end()
    this.copy?.commit()
    this.ok = true
    this.finish(null)
  }

  onResponseError (_controller: Dispatcher.DispatchController, err: Error): void {
    this.stopTimer()
    if (this.phase === 'body' && !this.headersSent) this.phase = 'response'
    this.finish(typedUndiciError(err))
  }

  /** 101: the origin's socket and the client's are spliced; the attempt is done, the tunnel lives on. */
  onRequestUpgrade (_controller: Dispatcher.DispatchController, statusCode: number, originHeaders: IncomingHttpHeaders, origin: Duplex): void {
    this.stopTimer()
    this.ttfbMs = this.exchange.elapsed()
    this.originStatus = statusCode
    this.member.health.succeeded()
    const sink = this.exchange.sink as SocketSink
    const connection = this.lease as OriginConnection
    this.lease = null
    const closed = connection.set.transport.tunnel(connection)
    const client = sink.switched(statusCode)
    const headers = responseHeaders(this.exchange, this.member, statusCode, originHeaders, this.settings.headers, true)
    client.write(switchingHead(statusCode, headers))
    const early = this.exchange.upgradeHead
    if (early !== null && early.length > 0) origin.write(early)
    const member = this.member
    let open = true
    // The tunnel holds the origin's in-flight count from run() until it closes (least_in_flight sees it).
    this.tunnel = true
    const close = (): void => {
      if (!open) return
      open = false
      member.inFlight--
      closed()
      origin.destroy()
      client.destroy()
    }
    origin.on('error', close)
    origin.once('close', close)
    client.once('close', close)
    origin.pipe(client)
    client.pipe(origin)
    this.headersSent = true
    this.ok = true
    this.finish(null)
  }

  /** The held status line and headers go out; false when Node refused them (the origin's fault: 520). */
  private writeHead (): boolean {
    const held = this.held as NonNullable<Attempt['held']>
    try {
      this.exchange.sink.start(held.status, held.text, held.headers)
    } catch (err) {
      this.abortWith(new BadResponseError('a header the edge cannot relay', { cause: err }))
      return false
    }
    this.headersSent = true
    return true
  }

  private abortWith (err: Error): void {
    this.stopTimer()
    this.held = null
    this.phase = 'response'
    this.controller?.abort(err)
  }

  private arm (kind: TimerKind, ms: number): void {
    if (this.timer !== null) clearTimeout(this.timer)
    this.timerKind = kind
    this.timer = setTimeout(expire, ms, this)
  }

  private stopTimer (): void {
    if (this.timer !== null) clearTimeout(this.timer)
    this.timer = null
  }

  /** The armed timer ran out. undici's own timers run on a ~0.5 s clock: a 524 on them would be up to half a second late. */
  timedOut (): void {
    this.timer = null
    const s = this.settings
    // A connection dialled for this request, the request sent, and nothing back: accepted
    // by the kernel but never by the origin, or queued behind work it cannot finish.
    if (this.timerKind === 'response' && this.fresh) this.member.health.condition.noResponse()
    if (this.timerKind === 'client') {
      // A slow reader: its stream is reset (its connection cut, over HTTP/1.x), the origin
      // request cancelled, and the line is the client's (finish in handle-request.ts writes it).
      const exchange = this.exchange
      exchange.clientStalled(s.clientWriteTimeoutMs)
      exchange.sink.cut()
      this.controller?.abort(withoutStack(() => new ClientWriteTimeoutError(s.clientWriteTimeoutMs)))
      return
    }
    const err = withoutStack(() => this.timerKind === 'response'
      ? new ResponseTimeoutError(s.responseTimeoutMs)
      : this.timerKind === 'body'
        ? new BodyIdleTimeoutError(s.bodyIdleTimeoutMs)
        : new WriteTimeoutError(s.originWriteTimeoutMs, (this.exchange.body as BodyMeter).bytes))
    this.controller?.abort(err)
  }

  private releaseSlot (err: Error | null): void {
    const at = this.admittedAt as number
    this.admittedAt = null
    this.member.adaptive?.release(at, originLatency(this, err, at))
  }

  private finish (err: Error | null, reusable = this.ok): void {
    const settle = this.settle
    if (settle === null) return
    this.settle = null
    this.stopTimer()
    this.error = err
    this.controller = null
    // An upgrade's tunnel counts down when it closes.
    if (!this.tunnel) this.member.inFlight--
    if (this.admittedAt !== null) this.releaseSlot(err)
    if (this.inShare) {
      this.inShare = false
      this.member.connections.transport.leaveShare(this.member.connections, this.exchange.client.ip)
    }
    const c = this.lease
    if (c !== null) {
      this.lease = null
      c.set.transport.release(c, reusable)
    }
    this.exchange.trace?.attemptEnded(this)
    settle(this)
  }
}

/** What the origin's latency was, for adaptive concurrency: to its response headers, or to a timeout it caused; null when the attempt says nothing about the origin. */
function originLatency (attempt: Attempt, err: Error | null, admittedAt: number): number | null {
  if (attempt.ttfbMs !== null) return performance.now() - admittedAt - (attempt.exchange.elapsed() - attempt.ttfbMs)
  if (err === null) return null
  const code = (err as { code?: unknown }).code
  // A connect or response timeout is the origin being too busy: the wait counts, in full.
  if (code === 'HPX_ERR_CONNECT_TIMEOUT' || code === 'HPX_ERR_RESPONSE_TIMEOUT') return performance.now() - admittedAt
  return null
}

function expire (attempt: Attempt): void {
  attempt.timedOut()
}


/** The path the origin sees: the route's prefix removed when it says so, and the query. */
function originPath (exchange: RoutedExchange): string {
  const route = exchange.route.config
  if (!route.stripPrefix || route.path === '/') return exchange.path + exchange.query
  const rest = exchange.path.slice(route.path.length)
  return (rest.startsWith('/') ? rest : `/${rest}`) + exchange.query
}
