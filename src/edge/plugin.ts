// How Fastify sees us: one encapsulated plugin. A request reads top to bottom:
// onRequest (ray id) → route → forward (dial through our agent) → on failure:
// classify → render → log; the access line is written when the response closes.

import type { IncomingMessage, ServerResponse } from 'node:http'
import { performance } from 'node:perf_hooks'
import type { FastifyInstance, FastifyPluginAsync, FastifyRequest } from 'fastify'
import type { Logger } from 'pino'
import type { EdgeConfig, RouteConfig } from '../config/schema.js'
import { ClientAbortError, dialErrorIn } from '../errors.js'
import type { OriginFaultStatus, UnknownErrorCause } from '../errors/catalog.js'
import { CLIENT_ABORT_STATUS, classify, type Classification, type Phase } from '../errors/classify.js'
import { negotiate } from '../errors/negotiate.js'
import { ErrorRenderer } from '../errors/render.js'
import type { FailureRecord } from '../log.js'
import { OriginAgent } from '../origin/agent.js'
import { forward } from '../origin/forward.js'
import { newContext, type EdgeContext } from './context.js'
import { FAULT_HEADER, applies, injectedFailure, parseFault } from './fault-injection.js'
import { SERVER_NAME, toOrigin } from './forward-headers.js'
import { isRayId, newRayId, rayHeaderValue } from './ray.js'
import { accessRecord, failureRecord, type FailureExtras } from './records.js'
import { Router, hostOnly } from './router.js'

declare module 'fastify' {
  interface FastifyRequest {
    edge: EdgeContext
  }
}

export type EdgeProxyOptions = EdgeConfig & {
  /** Where access and failure lines go; default the Fastify instance's logger. */
  logger?: Logger
  /** Called with every failure record (the admin listener keeps them by ray id). */
  onFailure?: (record: FailureRecord) => void
}

/**
 * The path of the request target. An absolute-form target (`GET http://other.host/x`)
 * is routed by its path and the Host header like any other: its authority is never
 * dialled, so the edge cannot be used as an open proxy.
 */
function splitTarget (url: string): { path: string, query: string } {
  let target = url
  if (!url.startsWith('/')) {
    try {
      const parsed = new URL(url)
      target = parsed.pathname + parsed.search
    } catch {
      target = '/'
    }
  }
  const q = target.indexOf('?')
  return q === -1 ? { path: target, query: '' } : { path: target.slice(0, q), query: target.slice(q) }
}

/**
 * `/api/../admin` would match a route for /api and reach /admin at an origin that
 * normalizes paths: dot segments (plain or percent-encoded) are refused outright.
 */
const DOT_SEGMENT = /(?:^|\/)(?:\.|%2e){1,2}(?:\/|$)/i

const hasBody = (req: IncomingMessage): boolean =>
  req.headers['transfer-encoding'] !== undefined ||
  (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0')

export const edgeProxy: FastifyPluginAsync<EdgeProxyOptions> = async (app: FastifyInstance, opts) => {
  const log: Logger = opts.logger ?? (app.log as Logger)
  const router = new Router(opts.routes)
  const renderer = new ErrorRenderer({ edgeName: opts.edgeName })
  const rayHeader = opts.rayHeader
  const agent = new OriginAgent({
    dial: { connectTimeoutMs: 15_000, tlsTimeoutMs: opts.tlsTimeoutMs, tls: { verify: true } },
    bodyIdleTimeoutMs: opts.bodyIdleTimeoutMs,
    keepAliveTimeoutMs: opts.keepAliveTimeoutMs,
    maxResponseHeaderBytes: opts.maxResponseHeaderBytes,
    rayHeader
  })
  for (const route of opts.routes) {
    agent.register(route.origin, { connectTimeoutMs: route.connectTimeoutMs, tlsTimeoutMs: opts.tlsTimeoutMs, tls: route.tls })
    if (!route.tls.verify) log.warn({ route: route.name }, 'origin certificate verification is off for this route: 526 cannot happen')
  }
  app.addHook('onClose', async () => { await agent.close() })

  // A proxy forwards bodies as they come: nothing is parsed or buffered.
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', (_req, payload, done) => done(null, payload))

  app.decorateRequest('edge', null as unknown as EdgeContext)
  app.addHook('onRequest', (req, _reply, done) => {
    // Fastify's request id is the ray id when the host app generates ray ids (ours does).
    req.edge = newContext(isRayId(req.id) ? req.id : newRayId(), performance.now(), req.ip)
    done()
  })

  const edgeHeaders = (ctx: EdgeContext): string[] =>
    [rayHeader, rayHeaderValue(ctx.ray, opts.edgeName), 'server', SERVER_NAME]

  const respondError = (req: FastifyRequest, res: ServerResponse, status: number, cause: UnknownErrorCause | null): void => {
    const ctx = req.edge
    ctx.edgeStatus = status
    if (res.headersSent || res.destroyed) return
    const rendered = renderer.render({
      status,
      cause,
      host: req.headers.host ?? '',
      ray: ctx.ray,
      clientIp: ctx.clientIp,
      time: new Date()
    }, negotiate(req.headers.accept))
    const headers = edgeHeaders(ctx)
    for (const name in rendered.headers) headers.push(name, rendered.headers[name] as string)
    res.writeHead(status, headers)
    res.end(req.method === 'HEAD' ? undefined : rendered.body)
  }

  const logFailure = (ctx: EdgeContext, err: unknown, phase: Phase, c: Classification, extra?: FailureExtras): void => {
    const record = failureRecord(ctx, err, dialErrorIn(err), phase, c, extra)
    if (c.known) log.warn(record)
    else log.error(record, 'origin failure')
    opts.onFailure?.(record)
  }

  const onOriginError = (req: FastifyRequest, res: ServerResponse, err: Error, headersSent: boolean): void => {
    const ctx = req.edge
    const phase: Phase = dialErrorIn(err)?.phase ?? (headersSent ? 'body' : 'response')
    const c = classify(err, phase)
    // A client that left is not an origin failure, whatever the origin was doing.
    if (ctx.clientAborted || c.status === CLIENT_ABORT_STATUS) return
    logFailure(ctx, err, phase, c, { truncated: headersSent })
    if (headersSent) {
      // The status is on the wire: the only honest signal left is a cut connection.
      ctx.truncated = true
      res.destroy()
      return
    }
    respondError(req, res, c.status, c.cause)
  }

  const onClosed = (req: FastifyRequest, res: ServerResponse): void => {
    const ctx = req.edge
    if (!res.writableFinished && !ctx.truncated) {
      ctx.clientAborted = true
      ctx.abortOrigin?.(new ClientAbortError())
    }
    const status = res.headersSent ? res.statusCode : CLIENT_ABORT_STATUS
    log.info(accessRecord(ctx, req.method, req.headers.host ?? '', splitTarget(req.url).path, status))
  }

  const send = (req: FastifyRequest, res: ServerResponse, route: RouteConfig, path: string): void => {
    const ctx = req.edge
    ctx.attempt++
    agent.track(ctx)
    forward(agent.dispatcher, {
      origin: route.origin.origin,
      path,
      method: req.method,
      headers: toOrigin(req.headers, {
        clientIp: ctx.clientIp,
        proto: req.protocol === 'https' ? 'https' : 'http',
        rayHeader,
        rayValue: rayHeaderValue(ctx.ray, opts.edgeName),
        host: route.hostHeader === 'keep' ? req.headers.host ?? route.origin.host : route.origin.host
      }),
      body: hasBody(req.raw) ? req.raw : null,
      headersTimeoutMs: route.responseTimeoutMs
    }, res, ctx, {
      edgeHeaders: edgeHeaders(ctx),
      onDone: () => agent.release(ctx),
      onError: (err, headersSent) => onOriginError(req, res, err, headersSent)
    })
  }

  const injectFault = (req: FastifyRequest, res: ServerResponse, route: RouteConfig, status: OriginFaultStatus): void => {
    const fault = injectedFailure(status, route)
    const fire = (): void => {
      if (req.edge.clientAborted) return
      logFailure(req.edge, fault.error, fault.phase, fault.classification, fault.extras)
      respondError(req, res, status, fault.classification.cause)
    }
    if (fault.waitMs === 0) { fire(); return }
    const timer = setTimeout(fire, fault.waitMs)
    res.once('close', () => clearTimeout(timer))
  }

  // Fastify's own error logging stays on the request logger at error level; the access
  // and failure lines are ours.
  app.all('/*', { logLevel: 'error' }, (req, reply) => {
    reply.hijack()
    const res = reply.raw
    const ctx = req.edge
    res.once('close', () => onClosed(req, res))
    const { path, query } = splitTarget(req.url)
    if (DOT_SEGMENT.test(path)) {
      respondError(req, res, 400, null)
      return
    }
    const route = router.match(hostOnly(req.headers.host), path)
    if (route === null) {
      respondError(req, res, 404, null)
      return
    }
    ctx.route = route.name
    ctx.originUrl = route.origin.origin

    const faultHeader = req.headers[FAULT_HEADER]
    if (faultHeader !== undefined) {
      const fault = parseFault(faultHeader)
      if (!route.faultInjection || fault === null) {
        log.info({ ray_id: ctx.ray, header: String(faultHeader).slice(0, 64), enabled: route.faultInjection }, 'fault injection header ignored')
      } else if (applies(fault)) {
        injectFault(req, res, route, fault.status)
        return
      }
    }
    send(req, res, route, Router.originPath(route, path) + query)
  })
}
