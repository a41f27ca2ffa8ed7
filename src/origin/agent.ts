// The undici Agent we own: its connector is our dial(), its limits are ours (not a
// library's defaults; @fastify/reply-from's turn certificate checks off), and undici's
// sendHeaders channel tells us which socket carried which edge request, so a failure
// after connect can still name the address, the source port and the dial timings.

import diagnostics from 'node:diagnostics_channel'
import { Agent, errors as undiciErrors, type buildConnector } from 'undici'
import { dial, kDialInfo, type DialOptions, type DialTarget, type DialedSocket } from './dial.js'
import type { EdgeContext } from '../edge/context.js'

export interface OriginAgentOptions {
  /** Dial options for origins that were not registered with their own. */
  dial: DialOptions
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

/** URL host names keep the brackets of IPv6 literals; sockets want them bare. */
const bare = (hostname: string): string =>
  hostname.startsWith('[') ? hostname.slice(1, -1) : hostname

export function originTarget (url: URL): DialTarget {
  const protocol = url.protocol === 'https:' ? 'https:' : 'http:'
  return { protocol, hostname: bare(url.hostname), port: Number(url.port) || defaultPort(protocol) }
}

export class OriginAgent {
  readonly dispatcher: Agent
  private readonly dialOptions = new Map<string, DialOptions>()
  /** Edge requests whose origin request is in flight, by ray id: for the sendHeaders channel. */
  private readonly inflight = new Map<string, EdgeContext>()
  private readonly onSendHeaders: (message: unknown) => void

  constructor (opts: OriginAgentOptions) {
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
    this.dispatcher = new Agent({
      connect,
      // A pending connect must never hold a slot other requests queue behind.
      connections: null,
      pipelining: 1,
      bodyTimeout: opts.bodyIdleTimeoutMs,
      keepAliveTimeout: opts.keepAliveTimeoutMs,
      maxHeaderSize: opts.maxResponseHeaderBytes
    })
    const rayHeader = opts.rayHeader
    this.onSendHeaders = (message: unknown) => {
      const { request, socket } = message as { request: { headers: unknown[] }, socket: DialedSocket }
      const headers = request.headers
      for (let i = 0; i < headers.length; i += 2) {
        if (headers[i] !== rayHeader) continue
        const ctx = this.inflight.get(String(headers[i + 1]).slice(0, 16))
        const info = socket[kDialInfo]
        if (ctx === undefined || info === undefined) return
        info.uses++
        ctx.socket = socket
        ctx.socketFresh = info.uses === 1
        return
      }
    }
    diagnostics.subscribe('undici:client:sendHeaders', this.onSendHeaders)
  }

  /** Per-origin dial options (a route's own timeouts and TLS settings). */
  register (url: URL, options: DialOptions): void {
    const t = originTarget(url)
    this.dialOptions.set(originKey(t.protocol, t.hostname, t.port), options)
  }

  track (ctx: EdgeContext): void { this.inflight.set(ctx.ray, ctx) }
  release (ctx: EdgeContext): void { this.inflight.delete(ctx.ray) }

  async close (): Promise<void> {
    diagnostics.unsubscribe('undici:client:sendHeaders', this.onSendHeaders)
    await this.dispatcher.destroy()
  }
}
