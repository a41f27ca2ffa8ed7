// One client request, from arrival to its access line: the state every step reads, with
// a fixed shape and one owner. Every step reads its fields; none writes them but through
// the methods below, so what can happen to a request is listed here, in one place.
// Attempts at origins are objects of their own (a retry is a new Attempt, never a reset
// of fields here).

import { performance } from 'node:perf_hooks'
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http'
import type { ServerHttp2Stream } from 'node:http2'
import type { Readable, Writable } from 'node:stream'
import type { RouteConfig } from '../config/schema.js'
import type { FailureRecord } from '../log/log.js'
import type { OriginPool, PoolMember } from '../origin/pool.js'
import { ClientAbortError } from '../status/errors.js'
import type { Attempt, AttemptSettings } from './attempt.js'
import type { ClientConnection } from './client-connection.js'
import type { ClientLink } from './client-link.js'
import type { ClientSink } from './sink.js'
import type { ExchangeTrace } from './trace.js'

/**
 * What the edge reads of a client's request: Node's IncomingMessage (HTTP/1.x, and
 * HTTP/2 through Node's compatibility API inside someone else's Fastify), or the
 * request of an HTTP/2 stream the TLS front door hands over (stream-request.ts).
 */
export type ClientRequest = Pick<IncomingMessage, 'method' | 'url' | 'headers' | 'rawHeaders' | 'httpVersion' | 'httpVersionMajor' | 'socket' | 'complete'> & {
  /** Its body, for the origin. */
  pipe: <T extends Writable>(destination: T) => T
  /** 'end': the whole body was read. */
  once: (event: 'end', listener: () => void) => unknown
}

/** Who the client is and how it reached the edge: what X-Forwarded-* and the logs say. */
export interface ClientFacts extends ClientLink {
  /** The address the edge decided is the client's (the peer, or from X-Forwarded-For via trusted proxies). */
  ip: string
  /** The TCP peer. */
  peer: string
  /** X-Forwarded-For for the origin: the peer, after the chain a trusted proxy sent. */
  forwardedFor: string
  /** X-Forwarded-Proto for the origin: the edge's scheme, or a trusted proxy's. */
  forwardedProto: string
}

/** A configured route with what it runs with, built once per config (load or reload). */
export interface ActiveRoute {
  readonly host: string
  readonly path: string
  readonly config: RouteConfig
  readonly pool: OriginPool
  readonly settings: AttemptSettings
}

/**
 * An exchange the router matched (`Exchange.routed`): its route and pool are set, for
 * the steps after routing (the proxy loop, its attempts, Always online, fault injection).
 */
export interface RoutedExchange extends Exchange {
  readonly route: ActiveRoute
  readonly pool: OriginPool
}

/**
 * The exchange as its own methods see it: everyone else reads its fields (readonly to
 * them), only the methods below write them. The same object, seen writable.
 */
type Own = { -readonly [K in keyof Exchange]: Exchange[K] }
const own = (exchange: Exchange): Own => exchange

export class Exchange {
  readonly start = performance.now()
  readonly method: string
  /**
   * The request came on an HTTP/2 stream (the front door's, or one of Node's compatibility
   * API): what it is, known once at arrival from the object that carried it, never from
   * what the request says (an HTTP/1 request line may claim `HTTP/2.0`).
   */
  readonly http2: boolean
  /** The Host (or :authority) as received; validated by admit before anything trusts it. */
  readonly host: string
  readonly headers: IncomingHttpHeaders
  /** The target's path without its query (absolute-form targets reduced to their path); admit may unescape it. */
  readonly path: string
  readonly query: string

  readonly route: ActiveRoute | null = null
  readonly pool: OriginPool | null = null
  /** The body the origin gets, when the request has one: our own stream (see body.ts). */
  readonly body: Readable | null = null
  /** The Upgrade the client asked for (lower case), when the request came as an upgrade. */
  readonly upgradeAsked: string | null = null
  /** The bytes that followed an upgrade request's head: the origin gets them after its 101. */
  readonly upgradeHead: Buffer | null = null
  /** The upgrade protocol forwarded to the origin, when the route allows the one asked for. */
  readonly upgrade: string | null = null

  /** Origins tried, in order; the next attempt goes elsewhere. */
  readonly tried: PoolMember[] = []
  readonly attempt: Attempt | null = null
  /** The failure line of the last failed attempt (a Logpush-shaped access line repeats its facts). */
  readonly failure: FailureRecord | null = null
  /** The edge status answered, when the edge answered (also when rewritten on the wire). */
  readonly edgeStatus: number | null = null
  /** What admit refused, for the access line. */
  readonly refused: string | null = null
  /** Node's parser refused the rest of this request (e.g. a bad chunk): the status it got. */
  readonly clientError: number | null = null
  /** The client read none of its response for timeouts.client_write (ms): it was cut, and the line is the client's. */
  readonly clientWriteTimedOut: number | null = null
  /** The origin failed after the status was sent: the client got a cut connection. */
  readonly truncated: boolean = false
  /** The client left before the response was complete. */
  readonly aborted: boolean = false
  /** The access line is written: the exchange is over. */
  readonly finished: boolean = false
  /** Its spans, when tracing is on (trace.ts); null: off, and nothing traces. */
  readonly trace: ExchangeTrace | null = null

  constructor (readonly ray: string, readonly req: ClientRequest, readonly sink: ClientSink,
    readonly client: ClientFacts, readonly connection: ClientConnection, target: { path: string, query: string },
    /** The HTTP/2 stream the request came on; null over HTTP/1.x. */
    readonly stream: ServerHttp2Stream | null) {
    this.method = req.method ?? 'GET'
    this.http2 = stream !== null
    this.headers = req.headers
    // HTTP/2 names the authority in a pseudo-header (RFC 9113 §8.3.1); routed like Host.
    this.host = (req.headers[':authority'] as string | undefined) ?? req.headers.host ?? ''
    this.path = target.path
    this.query = target.query
  }

  /** Tracing is on: the spans of this exchange. */
  traced (trace: ExchangeTrace): void {
    own(this).trace = trace
  }

  /** It came as an Upgrade request (`protocol` lower case), with the bytes that followed its head. */
  upgradeRequested (protocol: string, head: Buffer): void {
    own(this).upgradeAsked = protocol
    own(this).upgradeHead = head
  }

  /** Admit's reading of the path (escaped slashes unescaped) replaces the path as received. */
  admitPath (path: string): void {
    own(this).path = path
  }

  /** The router matched it: from here on it has a route and a pool. */
  routed (route: ActiveRoute): RoutedExchange {
    own(this).route = route
    own(this).pool = route.pool
    return this as RoutedExchange
  }

  /** Its body goes to the origin through our own stream (body.ts). */
  sendsBody (body: Readable): void {
    own(this).body = body
  }

  /** The route allows the upgrade asked for: it is forwarded to the origin. */
  forwardUpgrade (): void {
    own(this).upgrade = this.upgradeAsked
  }

  /** The edge refused it (admit, the router, a body over the limit): the access line's `refused`. */
  refuse (reason: string): void {
    own(this).refused = reason
  }

  /**
   * The client broke the request off: Node's parser refused the bytes that followed its
   * head, or its body did not arrive in time. `status` is what it gets; false when it got
   * one already (a parser fails again on every later chunk, and must not rewrite it).
   */
  clientFailed (status: number, reason: string): boolean {
    if (this.clientError !== null) return false
    own(this).clientError = status
    own(this).refused = reason
    return true
  }

  /** The client read none of its response for `ms` (timeouts.client_write): the line is the client's. */
  clientStalled (ms: number): void {
    own(this).clientWriteTimedOut = ms
  }

  /** An attempt at `attempt.member` starts: the origin is tried, and the attempt is the current one. */
  attempting (attempt: Attempt): void {
    this.tried.push(attempt.member)
    own(this).attempt = attempt
  }

  /** A failed attempt's (or an answer's) failure line was written: the access line repeats its facts. */
  failed (record: FailureRecord): void {
    own(this).failure = record
  }

  /** The edge answered for the origin (an error page, a stored copy) with this edge status. */
  answered (status: number): void {
    own(this).edgeStatus = status
  }

  /** The origin failed after the status was sent: the client gets a cut connection, the only honest signal left. */
  cut (): void {
    own(this).truncated = true
    this.sink.cut()
  }

  /**
   * The response is over, whichever way it ended: true the first time only (the caller
   * writes the access line). An origin request still in flight is cancelled, unless the
   * response was complete or cut on purpose.
   */
  end (): boolean {
    if (this.finished) return false
    own(this).finished = true
    if (!this.sink.completed && !this.truncated) this.abort()
    return true
  }

  /** The client left: the origin request in flight is cancelled, and it is not the origin's failure. */
  abort (): void {
    if (this.aborted) return
    own(this).aborted = true
    this.attempt?.abort(new ClientAbortError())
  }

  /** Milliseconds since arrival. */
  elapsed (): number {
    return performance.now() - this.start
  }
}
