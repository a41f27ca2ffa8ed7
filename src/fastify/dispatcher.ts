// edgeDispatcher: an undici Agent whose connections are opened by highproxy's own dialer
// (origin/dial.ts), for @fastify/reply-from's and @fastify/http-proxy's `undici` option.
// With it the connect timeout is the TCP handshake only, on a precise timer (undici's
// own runs over TCP+TLS and fires up to ~0.5 s late), a TLS failure is a TLS failure,
// late addresses only start the next attempt (RFC 8305), and certificates are verified
// (reply-from turns undici's verification off unless told otherwise). The response
// timeout is precise too, as the edge's is.
//
// Its failures are the dialer's typed errors; edgeOnError classifies them. Each error
// that reaches a request is tagged with the origin it was for, so the failure line can
// name it without the app repeating its upstream.

import { IncomingMessage } from 'node:http'
import { PassThrough } from 'node:stream'
import { Agent, type Dispatcher } from 'undici'
import { UNDICI_BACKSTOP_MS } from '../origin/connection.js'
import { dial, originTarget, type DialOptions } from '../origin/dial.js'
import { ResponseTimeoutError, causeChain, withoutStack } from '../status/errors.js'
import { DEFAULTS, msOption, type Duration } from './options.js'

type AgentOptions = Omit<Agent.Options, 'connect' | 'connectTimeout' | 'headersTimeout' | 'bodyTimeout' | 'keepAliveTimeout' | 'maxHeaderSize' | 'connections'>

export interface EdgeDispatcherOptions extends AgentOptions {
  /** The TCP handshake, on a precise timer; none in time → 522. Default 15s (`timeouts.connect`). */
  connectTimeout?: Duration
  /** The TLS handshake; failing or stalling → 525. Default 10s (`timeouts.tls`). */
  tlsTimeout?: Duration
  /** From request sent to response headers, on a precise timer; none in time → 524. Default 120s (`timeouts.response`). */
  headersTimeout?: Duration
  /** Longest pause in a response body (undici's timer). Default 100s (`timeouts.body_idle`). */
  bodyTimeout?: Duration
  /** How long an idle origin connection is kept. Default 4s (`timeouts.keep_alive`). */
  keepAliveTimeout?: Duration
  /** Delay before the next address of a name is tried in parallel (RFC 8305). Default 250ms. */
  attemptDelay?: Duration
  /** Verify origin certificates (chain and name); false makes 526 impossible. Default true. */
  verify?: boolean
  /** Extra CA certificates (PEM) trusted for origins. */
  ca?: string | Buffer
  /** SNI and the name the certificate must carry; default the origin's host name. */
  servername?: string
  /** Bytes of origin response headers; more → 520. Default 131072 (`limits.max_response_header_size`). */
  maxHeaderSize?: number
  /** Connections per origin. Default 1024 (`connections.max_per_origin`). */
  connections?: number
}

const FN = 'edgeDispatcher'

/** The origin each failed request was for, by its error (see EdgeHandler). */
const origins = new WeakMap<object, string>()

/** The origin an error of an edge dispatcher was for, looking through wrappers' `cause`s. */
export function originOf (err: unknown): string | null {
  for (const e of causeChain(err)) {
    const origin = origins.get(e as object)
    if (origin !== undefined) return origin
  }
  return null
}

type Handler = Required<Dispatcher.DispatchHandler>

function expire (h: EdgeHandler, controller: Dispatcher.DispatchController): void {
  h.timer = null
  controller.abort(withoutStack(() => new ResponseTimeoutError(h.responseTimeoutMs)))
}

/**
 * Passes everything on, with the edge's response timeout on a precise timer (undici's
 * own stays behind it as a backstop), and on an error remembers the origin the request
 * was for.
 */
class EdgeHandler implements Dispatcher.DispatchHandler {
  timer: NodeJS.Timeout | null = null

  constructor (private readonly handler: Dispatcher.DispatchHandler, private readonly origin: string, readonly responseTimeoutMs: number) {}

  /** On its way to the origin (again, if undici retries it on another connection). */
  onRequestStart (controller: Dispatcher.DispatchController, context: unknown): void {
    this.stop()
    this.handler.onRequestStart?.(controller, context)
    if (this.responseTimeoutMs > 0 && !controller.aborted) this.timer = setTimeout(expire, this.responseTimeoutMs, this, controller)
  }

  onRequestUpgrade (...args: Parameters<Handler['onRequestUpgrade']>): void {
    this.stop()
    this.handler.onRequestUpgrade?.(...args)
  }

  onResponseStart (...args: Parameters<Handler['onResponseStart']>): void {
    this.stop()
    this.handler.onResponseStart?.(...args)
  }

  onResponseData (...args: Parameters<Handler['onResponseData']>): void { this.handler.onResponseData?.(...args) }
  onResponseEnd (...args: Parameters<Handler['onResponseEnd']>): void { this.handler.onResponseEnd?.(...args) }

  onResponseError (controller: Dispatcher.DispatchController, error: Error): void {
    this.stop()
    origins.set(error, this.origin)
    this.handler.onResponseError?.(controller, error)
  }

  private stop (): void {
    if (this.timer !== null) clearTimeout(this.timer)
    this.timer = null
  }
}

/**
 * The client's request body, as undici may have it. When the origin request fails,
 * undici's request() destroys the body it was given; given the client's own
 * IncomingMessage (what http-proxy and reply-from pass on), that stops reading the
 * client's socket, and Node closes the connection after the error answer while the
 * client is still sending: most clients (Node's own among them) then see EPIPE or a
 * reset, not the answer. undici gets a relay instead; if the relay goes before the
 * body is all there, the rest is read and thrown away, and the answer arrives on a
 * connection that stays usable.
 */
function relayed (body: IncomingMessage): PassThrough {
  const relay = new PassThrough()
  // undici destroys it with the request's own error, which the request's callback reports.
  relay.on('error', () => {})
  body.pipe(relay)
  body.once('error', err => relay.destroy(err))
  relay.once('close', () => {
    if (body.complete) return
    body.unpipe(relay)
    body.resume()
  })
  return relay
}

type Callback<T> = (err: Error | null, data: Dispatcher.ResponseData<T>) => void

class EdgeAgent extends Agent {
  override request<T = null> (options: Dispatcher.RequestOptions<T>, callback: Callback<T>): void
  override request<T = null> (options: Dispatcher.RequestOptions<T>): Promise<Dispatcher.ResponseData<T>>
  override request<T = null> (options: Dispatcher.RequestOptions<T>, callback?: Callback<T>): Promise<Dispatcher.ResponseData<T>> | void {
    const body = options.body
    const opts = body instanceof IncomingMessage && !body.complete ? { ...options, body: relayed(body) } : options
    return callback === undefined ? super.request(opts) : super.request(opts, callback)
  }
}

/** A request's own headersTimeout (reply-from's `timeout`) replaces the default, and gets its backstop. */
const edgeInterceptor = (responseTimeoutMs: number): Dispatcher.DispatcherComposeInterceptor => dispatch => (opts, handler) => {
  const origin = typeof opts.origin === 'string' ? opts.origin : opts.origin?.origin ?? ''
  const own = opts.headersTimeout
  const ms = own ?? responseTimeoutMs
  const sent = own === undefined || own === null || own === 0 ? opts : { ...opts, headersTimeout: own + UNDICI_BACKSTOP_MS }
  return dispatch(sent, new EdgeHandler(handler, origin, ms))
}

/**
 * An undici dispatcher for reply-from's `undici` option. It is not closed with the app
 * unless reply-from's `destroyAgent` is set: close it in an onClose hook, or set that.
 */
export function edgeDispatcher (options: EdgeDispatcherOptions = {}): Dispatcher {
  const {
    connectTimeout = DEFAULTS.timeouts.connect, tlsTimeout = DEFAULTS.timeouts.tls,
    headersTimeout = DEFAULTS.timeouts.response, bodyTimeout = DEFAULTS.timeouts.body_idle,
    keepAliveTimeout = DEFAULTS.timeouts.keep_alive, attemptDelay, verify = DEFAULTS.tls.verify, ca, servername,
    maxHeaderSize = DEFAULTS.limits.max_response_header_size, connections = DEFAULTS.connections.max_per_origin,
    ...agent
  } = options
  const dialOptions: DialOptions = {
    connectTimeoutMs: msOption(FN, 'connectTimeout', connectTimeout),
    tlsTimeoutMs: msOption(FN, 'tlsTimeout', tlsTimeout),
    tls: { verify, ca, servername },
    ...(attemptDelay === undefined ? {} : { attemptDelayMs: msOption(FN, 'attemptDelay', attemptDelay) })
  }
  const responseTimeoutMs = msOption(FN, 'headersTimeout', headersTimeout)
  return new EdgeAgent({
    // HTTP/1.1 to origins unless the caller asks otherwise (undici 8's default is HTTP/2).
    allowH2: false,
    ...agent,
    connections,
    maxHeaderSize,
    headersTimeout: responseTimeoutMs + UNDICI_BACKSTOP_MS,
    bodyTimeout: msOption(FN, 'bodyTimeout', bodyTimeout),
    keepAliveTimeout: msOption(FN, 'keepAliveTimeout', keepAliveTimeout),
    connect: (params, callback) => {
      dial(originTarget(new URL(`${params.protocol}//${params.hostname}:${params.port}`)), dialOptions)
        .then(dialled => callback(null, dialled.socket), (err: Error) => callback(err, null))
    }
  }).compose(edgeInterceptor(responseTimeoutMs))
}
