// One Fastify instance with the edge plugin: what the CLI, the demo and the tests start.

import { METHODS, type IncomingMessage } from 'node:http'
import type { Socket } from 'node:net'
import Fastify, { type FastifyHttpOptions, type FastifyInstance } from 'fastify'
import type { Server } from 'node:http'
import type { Http2SecureServer } from 'node:http2'
import type { Logger } from 'pino'
import { edgeProxy, type EdgeProxyOptions, type StreamHandler } from './plugin.js'
import { newRayId } from '../log/ray.js'
import { limitConnections } from './connection-limits.js'
import { AccessLog, refusedAccess } from '../edge/access-log.js'
import { clientErrorHandler, frameworkErrorHandler } from './client-errors.js'
import { connectRefusal } from '../page/refusal.js'
import { writeToSocket } from '../page/write.js'
import { ProxyStatus } from '../page/proxy-status.js'
import { resolve, validate } from '../config/load.js'
import type { ClientLimits } from '../config/schema.js'
import type { TlsFront, Http1Settings } from './tls/tls-listener.js'

/** Client-side limits from the schema's defaults, for callers that give none. */
const defaultClientLimits = (): ClientLimits => resolve(validate({}), false).client

/** `front`: serve HTTPS (and HTTP/2) with these certificates; null: plain HTTP/1.1. */
export async function buildServer (edge: Omit<EdgeProxyOptions, 'logger'>, logger: Logger,
  client: ClientLimits = defaultClientLimits(), front: TlsFront | null = null): Promise<FastifyInstance> {
  const refusals = { access: new AccessLog(logger, edge.logFields), rayHeader: edge.rayHeader, edgeName: edge.edgeName, proxyStatus: new ProxyStatus({ edgeName: edge.edgeName }) }
  const http1: Http1Settings = {
    maxHeaderSize: client.maxHeaderBytes,
    headersTimeout: client.headersTimeoutMs,
    requestTimeout: client.requestTimeoutMs,
    keepAliveTimeout: client.keepAliveTimeoutMs,
    // Node checks the two timeouts above on this interval; its 30 s default lets a
    // slowloris client keep a socket up to 30 s past the limit.
    connectionsCheckingInterval: Math.min(1000, client.headersTimeoutMs),
    // Node answers a request without Host with a bare 400 of its own; the edge's has a
    // ray id and an access line (admit.ts).
    requireHostHeader: false
  }
  // One instance type for both: the edge uses only what HTTP/1.1 and HTTP/2 servers share.
  const app = Fastify({
    ...(front === null
      ? { http: http1 }
      : { http2: front.http2 as true, https: front.serverOptions(http1, edge.maxHeaderCount), http2SessionTimeout: front.idleTimeoutMs }),
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
  } as FastifyHttpOptions<Server>)
  // Every method Node parses is proxied (LINK, QUERY, …), not only Fastify's usual set.
  for (const method of METHODS) {
    if (method !== 'CONNECT' && !app.supportedMethods.includes(method)) app.addHttpMethod(method, { hasBody: true })
  }
  if (front !== null) {
    front.attach(app.server as unknown as Http2SecureServer, http1, refusals)
    app.addHook('preClose', done => { front.drain(); done() })
  }
  await app.register(edgeProxy, { ...edge, logger, ...(front?.http2 === true ? { exposeStreams: (serve: StreamHandler) => front.serveStreams(serve) } : {}) })
  limitConnections(app.server, client, refusals, front !== null)
  // HTTP/1.1's CONNECT (HTTP/2's is a stream: listen/tls/http2-connect.ts).
  app.server.on('connect', (req: IncomingMessage, socket: Socket) => {
    const ray = newRayId()
    const answer = connectRefusal(refusals, ray)
    writeToSocket(socket, 405, answer.headers, answer.body)
    refusals.access.refusal(refusedAccess(ray, 405, 'connect_method', 'CONNECT', req.headers.host ?? '', socket), socket, req.url)
  })
  return app
}
