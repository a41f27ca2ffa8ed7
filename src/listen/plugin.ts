// How Fastify sees the edge: one encapsulated plugin. Every request Fastify routes here
// is hijacked and served by handle-request.ts; upgrade requests, which Node hands to the
// server rather than to Fastify, and requests with an `Expect` Node cannot meet, take the
// same path from the server's own events, as do HTTP/2 streams when the TLS front door
// hands them over (`exposeStreams`).

import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http'
import type { ServerHttp2Stream } from 'node:http2'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import type { FastifyInstance, FastifyPluginAsync } from 'fastify'
import type { Logger } from 'pino'
import type { StaleStore } from '../cache/stale-store.js'
import type { EdgeConfig } from '../config/schema.js'
import type { MemberHealth } from '../origin/pool.js'
import { handleRequest, handleStream, handleUpgrade, runner } from '../edge/handle-request.js'
import { EdgeRuntime, type EdgeHooks } from '../edge/runtime.js'

export type EdgeProxyOptions = EdgeConfig & EdgeHooks & {
  /** Where access and failure lines go; default the Fastify instance's logger. */
  logger?: Logger
  /** Receives a function that reports every origin's health (metrics, admin). */
  exposeHealth?: (health: () => MemberHealth[]) => void
  /** Always online's store, when the caller keeps it (admin); default one of the edge's own from `cache`. */
  store?: StaleStore
  /** Receives a function that swaps in new routes and pools (SIGHUP). */
  exposeReload?: (reload: (edge: Pick<EdgeConfig, 'routes' | 'pools'>) => void) => void
  /** Receives the edge's handler of HTTP/2 streams, for a server that gives them to it directly. */
  exposeStreams?: (serve: StreamHandler) => void
}

/** An HTTP/2 stream, its headers as Node decoded them and as received, and its session's socket. */
export type StreamHandler = (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, rawHeaders: string[], socket: Socket) => void

export const edgeProxy: FastifyPluginAsync<EdgeProxyOptions> = async (app: FastifyInstance, opts) => {
  const edge = new EdgeRuntime(opts, opts.logger ?? (app.log as Logger), { onAccess: opts.onAccess, onFailure: opts.onFailure, tracing: opts.tracing }, opts.store)
  const run = runner(edge)
  opts.exposeHealth?.(() => edge.snapshot())
  opts.exposeReload?.(next => edge.reload(next.routes, next.pools))
  opts.exposeStreams?.((stream, headers, rawHeaders, socket) => handleStream(edge, run, stream, headers, rawHeaders, socket))

  app.addHook('preClose', (done) => {
    edge.flags.draining = true
    done()
  })
  app.addHook('onClose', async () => {
    app.server.off('upgrade', onUpgrade)
    app.server.off('checkExpectation', onExpectation)
    edge.close()
  })

  // A proxy forwards bodies as they come: nothing is parsed or buffered.
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', (_req, payload, done) => done(null, payload))

  app.all('/*', (req, reply) => {
    reply.hijack()
    handleRequest(edge, run, req.raw, reply.raw, req.id)
  })

  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => handleUpgrade(edge, run, req, socket, head)
  app.server.on('upgrade', onUpgrade)

  // Node answers an `Expect` other than 100-continue with a bare 417 of its own; the
  // edge refuses it like every other request it cannot serve (admit.ts), ray id and
  // access line included.
  const onExpectation = (req: IncomingMessage, res: ServerResponse): void => handleRequest(edge, run, req, res, '')
  app.server.on('checkExpectation', onExpectation)
}
