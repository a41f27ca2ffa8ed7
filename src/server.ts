// One Fastify instance with the edge plugin: what the CLI, the demo and the tests start.

import { METHODS } from 'node:http'
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import { edgeProxy, type EdgeProxyOptions } from './edge/plugin.js'
import { newRayId } from './edge/ray.js'
import { limitConnections } from './edge/connection-limits.js'
import { clientErrorHandler, frameworkErrorHandler } from './edge/client-errors.js'
import { resolve, validate } from './config/load.js'
import type { ClientLimits } from './config/schema.js'

/** Client-side limits from the schema's defaults, for callers that give none. */
const defaultClientLimits = (): ClientLimits => resolve(validate({}), false).client

export async function buildServer (edge: Omit<EdgeProxyOptions, 'logger'>, logger: Logger,
  client: ClientLimits = defaultClientLimits()): Promise<FastifyInstance> {
  const refusals = { log: logger, rayHeader: edge.rayHeader, edgeName: edge.edgeName }
  const app = Fastify({
    http: {
      maxHeaderSize: client.maxHeaderBytes,
      headersTimeout: client.headersTimeoutMs,
      requestTimeout: client.requestTimeoutMs,
      // Node checks the two timeouts above on this interval; its 30 s default lets a
      // slowloris client keep a socket up to 30 s past the limit.
      connectionsCheckingInterval: Math.min(1000, client.headersTimeoutMs)
    },
    keepAliveTimeout: client.keepAliveTimeoutMs,
    requestTimeout: client.requestTimeoutMs,
    loggerInstance: logger as FastifyBaseLogger,
    // The plugin writes one access line per request itself.
    logController: new LogController({ disableRequestLogging: true }),
    genReqId: newRayId,
    // An edge must not trust forwarding headers from the internet.
    trustProxy: false,
    return503OnClosing: true,
    clientErrorHandler: clientErrorHandler(refusals),
    frameworkErrors: frameworkErrorHandler(refusals)
  })
  // Every method Node parses is proxied (LINK, QUERY, …), not only Fastify's usual set.
  for (const method of METHODS) {
    if (method !== 'CONNECT' && !app.supportedMethods.includes(method)) app.addHttpMethod(method, { hasBody: true })
  }
  await app.register(edgeProxy, { ...edge, logger })
  limitConnections(app.server, client)
  // Node answers CONNECT by dropping the socket; an edge that is not a forward proxy says so.
  app.server.on('connect', (_req, socket: import('node:net').Socket) => {
    socket.end('HTTP/1.1 405 Method Not Allowed\r\nallow: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS\r\nconnection: close\r\ncontent-length: 0\r\n\r\n')
  })
  return app
}
