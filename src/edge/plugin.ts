// How Fastify sees us: one encapsulated plugin. A request reads top to bottom:
// onRequest (ray id) → route → forward (dial through our agent) → on failure:
// classify → render → log; the access line is written when the request ends.

import { performance } from 'node:perf_hooks'
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import replyFrom from '@fastify/reply-from'
import type { Logger } from 'pino'
import type { EdgeConfig, RouteConfig } from '../config/schema.js'
import { ClientAbortError, dialErrorIn } from '../errors.js'
import { catalogEntry, type UnknownErrorCause } from '../errors/catalog.js'
import { CLIENT_ABORT_STATUS, classify, type Classification, type Phase } from '../errors/classify.js'
import { negotiate } from '../errors/negotiate.js'
import { ErrorRenderer } from '../errors/render.js'
import type { AccessRecord, FailureRecord, Timings } from '../log.js'
import { OriginAgent, kEdgeContext } from '../origin/agent.js'
import { kDialInfo, type DialOptions } from '../origin/dial.js'
import { newContext, type EdgeContext } from './context.js'
import { FAULT_HEADER, applies, parseFault } from './fault-injection.js'
import { SERVER_NAME, toClient, toOrigin } from './forward-headers.js'
import { isRayId, newRayId, rayHeaderValue } from './ray.js'
import { Router, hostOnly } from './router.js'

declare module 'fastify' {
  interface FastifyRequest {
    edge: EdgeContext
  }
}

export type EdgeProxyOptions = EdgeConfig & {
  /** Where access and failure lines go; default the Fastify instance's logger. */
  logger?: Logger
}

const ms = (value: number): number => Math.round(value * 10) / 10

/**
 * The path of the request target. An absolute-form target (`GET http://other.host/x`)
 * is routed by its path and the Host header like any other: its authority is never
 * dialled, so the edge cannot be used as an open proxy.
 */
const pathOf = (url: string): string => {
  let path = url
  if (!url.startsWith('/')) {
    try {
      path = new URL(url).pathname
    } catch {
      return '/'
    }
  }
  const q = path.indexOf('?')
  return q === -1 ? path : path.slice(0, q)
}

function dialOptionsFor (route: RouteConfig, opts: EdgeConfig): DialOptions {
  return { connectTimeoutMs: route.connectTimeoutMs, tlsTimeoutMs: opts.tlsTimeoutMs, tls: route.tls }
}

/** The failure's message where its code was found, not reply-from's wrapper text. */
function messageFor (err: unknown, code: string | null): string {
  for (let e = err, depth = 0; typeof e === 'object' && e !== null && depth < 8; depth++) {
    const { code: c, message, cause } = e as { code?: unknown, message?: unknown, cause?: unknown }
    if (c === code || cause === undefined) return String(message ?? '')
    e = cause
  }
  return String(err)
}

export const edgeProxy: FastifyPluginAsync<EdgeProxyOptions> = async (app: FastifyInstance, opts) => {
  const log: Logger = opts.logger ?? (app.log as Logger)
  const router = new Router(opts.routes)
  const renderer = new ErrorRenderer({ edgeName: opts.edgeName })
  const rayHeader = opts.rayHeader
  const agent = new OriginAgent({
    dial: {
      connectTimeoutMs: opts.routes[0]?.connectTimeoutMs ?? 15_000,
      tlsTimeoutMs: opts.tlsTimeoutMs,
      tls: opts.routes[0]?.tls ?? { verify: true, ca: undefined, servername: undefined }
    },
    responseTimeoutMs: Math.max(...opts.routes.map(r => r.responseTimeoutMs), 1),
    bodyIdleTimeoutMs: opts.bodyIdleTimeoutMs,
    keepAliveTimeoutMs: opts.keepAliveTimeoutMs,
    maxResponseHeaderBytes: opts.maxResponseHeaderBytes,
    rayHeader
  })
  for (const route of opts.routes) {
    agent.register(route.origin, dialOptionsFor(route, opts))
    if (!route.tls.verify) log.warn({ route: route.name }, 'origin certificate verification is off for this route: 526 cannot happen')
  }

  // A proxy forwards bodies as they come: no parsing, no buffering.
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', (_req, payload, done) => done(null, payload))
  await app.register(replyFrom, { undici: agent as never, disableRequestLogging: true })
  app.addHook('onClose', async () => { await agent.destroy() })

  app.decorateRequest('edge', null as unknown as EdgeContext)

  app.addHook('onRequest', (req, reply, done) => {
    // Reuse Fastify's request id when the host app generates ray ids (our server does).
    const ctx = newContext(isRayId(req.id) ? req.id : newRayId(), performance.now())
    req.edge = ctx
    reply.header(rayHeader, rayHeaderValue(ctx.ray, opts.edgeName))
    reply.header('server', SERVER_NAME)
    done()
  })

  const writeAccess = (req: FastifyRequest, status: number): void => {
    const ctx = req.edge
    if (ctx.logged) return
    ctx.logged = true
    const record: AccessRecord = {
      msg: 'access',
      method: req.method,
      host: req.headers.host ?? '',
      path: pathOf(req.url),
      status,
      ray_id: ctx.ray,
      duration_ms: ms(performance.now() - ctx.start),
      route: ctx.route,
      edge_status: ctx.edgeStatus
    }
    log.info(record)
  }

  app.addHook('onResponse', (req, reply, done) => {
    writeAccess(req, reply.statusCode)
    done()
  })

  app.addHook('onRequestAbort', (req, done) => {
    const ctx = req.edge
    ctx.clientAborted = true
    ctx.abortOrigin?.(new ClientAbortError())
    writeAccess(req, CLIENT_ABORT_STATUS)
    done()
  })

  const sendEdgeError = (req: FastifyRequest, reply: FastifyReply, status: number,
    cause: UnknownErrorCause | null): void => {
    const ctx = req.edge
    ctx.edgeStatus = status
    const rendered = renderer.render({
      status,
      cause,
      host: req.headers.host ?? '',
      ray: ctx.ray,
      clientIp: req.ip,
      time: new Date()
    }, negotiate(req.headers.accept))
    reply.code(status).headers(rendered.headers).send(req.method === 'HEAD' ? undefined : rendered.body)
  }

  const recordFailure = (req: FastifyRequest, err: unknown, phase: Phase, c: Classification,
    extra: { truncated?: boolean, injected?: boolean, timings?: Partial<Timings> } = {}): void => {
    const ctx = req.edge
    const dialErr = dialErrorIn(err)
    const info = ctx.socket?.[kDialInfo]
    const fresh = info !== undefined && ctx.socketFresh
    const dialTimings = dialErr?.timings ?? (fresh ? info.timings : null)
    const record: FailureRecord = {
      msg: 'origin failure',
      edge_status: c.status,
      ray_id: ctx.ray,
      origin: {
        url: ctx.originUrl ?? '',
        address: dialErr?.address ?? info?.address ?? null,
        port: dialErr?.port ?? info?.port ?? null
      },
      error: { code: c.code, message: messageFor(err, c.code) },
      timings: {
        dns_ms: dialTimings?.dns_ms ?? null,
        connect_ms: dialTimings?.connect_ms ?? null,
        tls_ms: dialTimings?.tls_ms ?? null,
        ttfb_ms: ctx.ttfbMs === null ? null : ms(ctx.ttfbMs),
        total_ms: ms(performance.now() - ctx.start),
        ...extra.timings
      },
      attempt: ctx.attempt,
      phase,
      why: c.why,
      cause: c.cause,
      classified: c.known,
      dialled: dialErr?.attempts ?? info?.attempts ?? [],
      source: dialErr?.localAddress != null
        ? { address: dialErr.localAddress, port: dialErr.localPort ?? 0 }
        : info?.localAddress != null ? { address: info.localAddress, port: info.localPort ?? 0 } : null,
      truncated: extra.truncated ?? false,
      injected: extra.injected ?? false,
      route: ctx.route
    }
    if (c.known) log.warn(record)
    else log.error(record, 'origin failure')
  }

  const onOriginError = (reply: FastifyReply, err: unknown): void => {
    const req = reply.request
    const ctx = req.edge
    const phase: Phase = dialErrorIn(err)?.phase ?? (ctx.ttfbMs === null ? 'response' : 'body')
    const c = classify(err, phase)
    // A client that left is not an origin failure, whatever the origin was doing.
    if (ctx.clientAborted || c.status === CLIENT_ABORT_STATUS) return
    recordFailure(req, err, phase, c)
    sendEdgeError(req, reply, c.status, c.cause)
  }

  const injectFault = (req: FastifyRequest, reply: FastifyReply, route: RouteConfig, status: number): void => {
    const entry = catalogEntry(status)
    const waitMs = status === 522 ? route.connectTimeoutMs : status === 524 ? route.responseTimeoutMs : 0
    const fire = (): void => {
      if (req.edge.clientAborted) return
      const c: Classification = { status, cause: status === 520 ? 'reset' : null, code: 'HPX_ERR_INJECTED', why: `injected: ${entry.title}`, known: true }
      const phase: Phase = status === 530 ? 'dns' : status === 525 || status === 526 ? 'tls' : status === 522 || status === 521 || status === 523 ? 'connect' : 'response'
      recordFailure(req, { code: 'HPX_ERR_INJECTED', message: `fault ${status} injected on request` }, phase, c, {
        injected: true,
        timings: status === 522 ? { connect_ms: waitMs } : {}
      })
      sendEdgeError(req, reply, status, c.cause)
    }
    if (waitMs === 0) { fire(); return }
    const timer = setTimeout(fire, waitMs)
    req.raw.once('close', () => { if (req.edge.clientAborted) clearTimeout(timer) })
  }

  // reply-from logs every origin error at warn on the request logger; our failure line
  // says more, so the route's own logger only speaks for errors.
  app.all('/*', { logLevel: 'error' }, (req, reply) => {
    const ctx = req.edge
    const path = pathOf(req.url)
    const route = router.match(hostOnly(req.headers.host), path)
    if (route === null) {
      sendEdgeError(req, reply, 404, null)
      return reply
    }
    ctx.route = route.name
    ctx.originUrl = route.origin.origin

    const faultHeader = req.headers[FAULT_HEADER]
    if (faultHeader !== undefined) {
      const fault = parseFault(faultHeader)
      if (!route.faultInjection || fault === null) {
        log.info({ ray_id: ctx.ray, header: String(faultHeader).slice(0, 64), enabled: route.faultInjection }, 'fault injection header ignored')
      } else if (applies(fault)) {
        injectFault(req, reply, route, fault.status)
        return reply
      }
    }

    ctx.attempt = 1
    const rayValue = rayHeaderValue(ctx.ray, opts.edgeName)
    return reply.from(Router.originPath(route, path), {
      getUpstream: () => route.origin.origin,
      rewriteRequestHeaders: (request, headers) => {
        const out = toOrigin(headers, {
          clientIp: request.ip,
          proto: request.protocol === 'https' ? 'https' : 'http',
          host: request.headers.host,
          rayHeader,
          rayValue,
          originHost: route.hostHeader === 'keep' ? request.headers.host : undefined
        })
        ;(out as Record<symbol, unknown>)[kEdgeContext] = request.edge
        return out
      },
      rewriteHeaders: headers => toClient(headers) as typeof headers,
      onResponse: (rawRequest, rawReply, res) => {
        const request = rawRequest as FastifyRequest
        const stream = res.stream as NodeJS.ReadableStream
        stream.once('error', (err: Error) => {
          const c = classify(err, 'body')
          if (!request.edge.clientAborted && c.status !== CLIENT_ABORT_STATUS) {
            recordFailure(request, err, 'body', c, { truncated: true })
          }
        })
        rawReply.send(stream)
      },
      onError: (r, { error }) => onOriginError(r as FastifyReply, error)
    })
  })
}
