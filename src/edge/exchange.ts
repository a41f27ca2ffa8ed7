// One client request, from arrival to its access line: the state every step reads, with
// a fixed shape and one owner. Attempts at origins are objects of their own (a retry is
// a new Attempt, never a reset of fields here).

import { performance } from 'node:perf_hooks'
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http'
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

export class Exchange {
  readonly start = performance.now()
  readonly method: string
  /** The Host (or :authority) as received; validated by admit before anything trusts it. */
  readonly host: string
  readonly headers: IncomingHttpHeaders
  /** The target's path without its query (absolute-form targets reduced to their path); admit may unescape it. */
  path: string
  readonly query: string

  route: ActiveRoute | null = null
  pool: OriginPool | null = null
  /** The body the origin gets, when the request has one: our own stream (see body.ts). */
  body: Readable | null = null
  /** The Upgrade the client asked for (lower case), when the request came as an upgrade. */
  upgradeAsked: string | null = null
  /** The bytes that followed an upgrade request's head: the origin gets them after its 101. */
  upgradeHead: Buffer | null = null
  /** The upgrade protocol forwarded to the origin, when the route allows the one asked for. */
  upgrade: string | null = null

  /** Origins tried, in order; the next attempt goes elsewhere. */
  readonly tried: PoolMember[] = []
  attempt: Attempt | null = null
  /** The failure line of the last failed attempt (a Logpush-shaped access line repeats its facts). */
  failure: FailureRecord | null = null
  /** The edge status answered, when the edge answered (also when rewritten on the wire). */
  edgeStatus: number | null = null
  /** What admit refused, for the access line. */
  refused: string | null = null
  /** Node's parser refused the rest of this request (e.g. a bad chunk): the status it got. */
  clientError: number | null = null
  /** The client read none of its response for timeouts.client_write (ms): it was cut, and the line is the client's. */
  clientWriteTimedOut: number | null = null
  /** The origin failed after the status was sent: the client got a cut connection. */
  truncated = false
  /** The client left before the response was complete. */
  aborted = false
  /** The access line is written: the exchange is over. */
  finished = false
  /** Its spans, when tracing is on (trace.ts); null: off, and nothing traces. */
  trace: ExchangeTrace | null = null

  constructor (readonly ray: string, readonly req: ClientRequest, readonly sink: ClientSink,
    readonly client: ClientFacts, readonly connection: ClientConnection, target: { path: string, query: string }) {
    this.method = req.method ?? 'GET'
    this.headers = req.headers
    // HTTP/2 names the authority in a pseudo-header (RFC 9113 §8.3.1); routed like Host.
    this.host = (req.headers[':authority'] as string | undefined) ?? req.headers.host ?? ''
    this.path = target.path
    this.query = target.query
  }

  /** The client left: the origin request in flight is cancelled, and it is not the origin's failure. */
  abort (): void {
    if (this.aborted) return
    this.aborted = true
    this.attempt?.abort(new ClientAbortError())
  }

  /** Milliseconds since arrival. */
  elapsed (): number {
    return performance.now() - this.start
  }
}
