// The undici Agent we own: its connector is our dial(), its limits are ours (not
// @fastify/reply-from's defaults, which turn certificate checks off), and a thin
// dispatcher in front of it ties each origin request back to the edge request that
// caused it, so the failure record can name the socket, time to first byte and the
// abort of a request whose client left.

import diagnostics from 'node:diagnostics_channel'
import { performance } from 'node:perf_hooks'
import type { Socket } from 'node:net'
import { Agent, Dispatcher, errors as undiciErrors, type buildConnector } from 'undici'
import { dial, kDialInfo, type DialOptions, type DialTarget, type DialedSocket } from './dial.js'
import type { EdgeContext } from '../edge/context.js'

/** Carried on the outgoing headers object (a symbol key: never sent on the wire). */
export const kEdgeContext = Symbol('highproxy.edgeContext')

export interface OriginAgentOptions {
  /** Dial options for origins that were not registered with their own. */
  dial: DialOptions
  /** No response headers within this → 524. */
  responseTimeoutMs: number
  /** Longest pause between two body chunks from the origin. */
  bodyIdleTimeoutMs: number
  keepAliveTimeoutMs: number
  maxResponseHeaderBytes: number
  /** Name of the ray header sent to origins (lower case). */
  rayHeader: string
}

/**
 * undici 7 builds HTTPParserError with `code: undefined` (it indexes llhttp's name→number
 * table by number), so a response that is not HTTP would carry no code at all. We type
 * it here, where undici hands it over, so classification can stay on codes.
 */
export function normalizeOriginError (err: Error): Error {
  if (err instanceof undiciErrors.HTTPParserError && err.code === undefined) {
    (err as { code?: string }).code = 'HPE_INVALID_RESPONSE'
  }
  return err
}

const originKey = (protocol: string, hostname: string, port: number | string): string =>
  `${protocol}//${hostname}:${port}`

const defaultPort = (protocol: string): number => protocol === 'https:' ? 443 : 80

/** undici hands us URL host names, where IPv6 literals keep their brackets. */
const bare = (hostname: string): string =>
  hostname.startsWith('[') ? hostname.slice(1, -1) : hostname

export function originTarget (url: URL): DialTarget {
  const protocol = url.protocol === 'https:' ? 'https:' : 'http:'
  return { protocol, hostname: bare(url.hostname), port: Number(url.port) || defaultPort(protocol) }
}

// undici 7 still drives handlers written to its legacy callback API (reply-from's are);
// forwarding that API avoids converting headers twice per response.
type LegacyHandler = Record<string, ((...args: any[]) => unknown) | undefined>

/** Forwards every callback to undici's own handler, noting what the edge needs on the way. */
class TrackingHandler {
  constructor (private readonly inner: LegacyHandler, private readonly ctx: EdgeContext,
    private readonly done: (ctx: EdgeContext) => void) {}

  onConnect (abort: (reason?: Error) => void, context?: unknown): unknown {
    this.ctx.abortOrigin = abort
    return this.inner.onConnect?.(abort, context)
  }

  onHeaders (statusCode: number, headers: Buffer[], resume: () => void, statusText: string): unknown {
    this.ctx.ttfbMs = performance.now() - this.ctx.start
    return this.inner.onHeaders?.(statusCode, headers, resume, statusText)
  }

  onData (chunk: Buffer): unknown { return this.inner.onData?.(chunk) }
  onResponseStarted (): unknown { return this.inner.onResponseStarted?.() }
  onBodySent (chunk: Buffer): unknown { return this.inner.onBodySent?.(chunk) }
  onRequestSent (): unknown { return this.inner.onRequestSent?.() }
  onUpgrade (statusCode: number, headers: Buffer[], socket: Socket): unknown {
    this.done(this.ctx)
    return this.inner.onUpgrade?.(statusCode, headers, socket)
  }

  onComplete (trailers: Buffer[]): unknown {
    this.done(this.ctx)
    return this.inner.onComplete?.(trailers)
  }

  onError (err: Error): unknown {
    this.done(this.ctx)
    return this.inner.onError?.(normalizeOriginError(err))
  }
}

export class OriginAgent extends Dispatcher {
  readonly agent: Agent
  private readonly dialOptions = new Map<string, DialOptions>()
  /** Edge requests whose origin request is in flight, by ray id: for the sendHeaders channel. */
  private readonly inflight = new Map<string, EdgeContext>()
  private readonly release = (ctx: EdgeContext): void => { this.inflight.delete(ctx.ray) }
  private readonly onSendHeaders: (message: unknown) => void

  constructor (private readonly opts: OriginAgentOptions) {
    super()
    const connect: buildConnector.connector = (params, callback) => {
      const protocol = params.protocol === 'https:' ? 'https:' : 'http:'
      const hostname = bare(params.hostname)
      const port = Number(params.port) || defaultPort(protocol)
      const options = this.dialOptions.get(originKey(protocol, hostname, port)) ?? opts.dial
      dial({ protocol, hostname, port }, options).then(
        socket => callback(null, socket as never),
        (err: Error) => callback(err, null)
      )
    }
    this.agent = new Agent({
      connect,
      // A pending connect must never hold a slot other requests queue behind.
      connections: null,
      pipelining: 1,
      headersTimeout: opts.responseTimeoutMs,
      bodyTimeout: opts.bodyIdleTimeoutMs,
      keepAliveTimeout: opts.keepAliveTimeoutMs,
      maxHeaderSize: opts.maxResponseHeaderBytes
    })
    const rayHeader = opts.rayHeader
    this.onSendHeaders = (message: unknown) => {
      const { request, socket } = message as { request: { headers: unknown[] }, socket: DialedSocket }
      const headers = request.headers
      for (let i = 0; i < headers.length; i += 2) {
        if (headers[i] === rayHeader) {
          const ctx = this.inflight.get(String(headers[i + 1]).slice(0, 16))
          const info = socket[kDialInfo]
          if (ctx === undefined || info === undefined) return
          info.uses++
          ctx.socket = socket
          ctx.socketFresh = info.uses === 1
          return
        }
      }
    }
    diagnostics.subscribe('undici:client:sendHeaders', this.onSendHeaders)
  }

  /** Per-origin dial options (a pool's own timeouts and TLS settings). */
  register (url: URL, options: DialOptions): void {
    const t = originTarget(url)
    this.dialOptions.set(originKey(t.protocol, t.hostname, t.port), options)
  }

  override dispatch (opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    const ctx = (opts.headers as Record<symbol, EdgeContext | undefined> | null)?.[kEdgeContext]
    if (ctx === undefined) return this.agent.dispatch(opts, handler)
    this.inflight.set(ctx.ray, ctx)
    return this.agent.dispatch(opts, new TrackingHandler(handler as unknown as LegacyHandler, ctx, this.release) as never)
  }

  override async close (): Promise<void> {
    diagnostics.unsubscribe('undici:client:sendHeaders', this.onSendHeaders)
    await this.agent.close()
  }

  override async destroy (): Promise<void> {
    diagnostics.unsubscribe('undici:client:sendHeaders', this.onSendHeaders)
    await this.agent.destroy()
  }
}
