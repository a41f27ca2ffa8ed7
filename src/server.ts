// One Fastify instance with the edge plugin: what the CLI, the demo and the tests start.

import { METHODS, type IncomingMessage } from 'node:http'
import type { Socket } from 'node:net'
import Fastify, { type FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import { edgeProxy, type EdgeProxyOptions } from './edge/plugin.js'
import { newRayId } from './edge/ray.js'
import { limitConnections } from './edge/connection-limits.js'
import { AccessLog } from './edge/access-log.js'
import { clientErrorHandler, frameworkErrorHandler, refusal, refusedAccess } from './edge/client-errors.js'
import { rawResponse } from './page/raw-response.js'
import { ProxyStatus } from './page/proxy-status.js'
import { resolve, validate } from './config/load.js'
import type { ClientLimits } from './config/schema.js'

/** Client-side limits from the schema's defaults, for callers that give none. */
const defaultClientLimits = (): ClientLimits => resolve(validate({}), false).client

export async function buildServer (edge: Omit<EdgeProxyOptions, 'logger'>, logger: Logger,
  client: ClientLimits = defaultClientLimits()): Promise<FastifyInstance> {
  const refusals = { access: new AccessLog(logger, edge.logFields), rayHeader: edge.rayHeader, edgeName: edge.edgeName, proxyStatus: new ProxyStatus({ edgeName: edge.edgeName }) }
  const app = Fastify({
    http: {
      maxHeaderSize: client.maxHeaderBytes,
      headersTimeout: client.headersTimeoutMs,
      requestTimeout: client.requestTimeoutMs,
      // Node checks the two timeouts above on this interval; its 30 s default lets a
      // slowloris client keep a socket up to 30 s past the limit.
      connectionsCheckingInterval: Math.min(1000, client.headersTimeoutMs),
      // Node answers a request without Host with a bare 400 of its own; the edge's has a
      // ray id and an access line (admit.ts).
      requireHostHeader: false
    },
    keepAliveTimeout: client.keepAliveTimeoutMs,
    requestTimeout: client.requestTimeoutMs,
    // The edge writes its own lines (one access line per request, failure lines, refusals)
    // with `logger`; Fastify's per-request child logger cost more than the rest of a
    // request's bookkeeping.
    logger: false,
    genReqId: newRayId,
    // An edge must not trust forwarding headers from the internet (client-ip.ts decides).
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
  limitConnections(app.server, client, refusals)
  // Node answers CONNECT by dropping the socket; an edge that is not a forward proxy says so.
  app.server.on('connect', (req: IncomingMessage, socket: Socket) => {
    const ray = newRayId()
    const answer = refusal(refusals, 405, ray, ['allow', 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS'])
    socket.end(rawResponse(405, answer.headers, answer.body))
    refusals.access.refusal(refusedAccess(ray, 405, 'connect_method', 'CONNECT', req.headers.host ?? ''), socket, req.url)
  })
  return app
}
