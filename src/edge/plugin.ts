// How Fastify sees us: one encapsulated plugin. A request reads top to bottom:
// onRequest (ray id) → route → select an origin of the route's pool → forward through
// our agent → on failure: classify → retry once elsewhere if nothing was sent → render
// → log. The access line is written when the response closes, whichever way it ends.

import type { IncomingMessage, ServerResponse } from 'node:http'
import { Transform, type Duplex, type Readable } from 'node:stream'
import { performance } from 'node:perf_hooks'
import type { FastifyInstance, FastifyPluginAsync, FastifyRequest } from 'fastify'
import type { Logger } from 'pino'
import type { EdgeConfig, PoolConfig, RouteConfig } from '../config/schema.js'
import { BodyTooLargeError, ClientAbortError, OriginErrorReplacedError, PoolDownError, dialErrorIn } from '../errors.js'
import type { OriginFaultStatus } from '../errors/catalog.js'
import { CLIENT_ABORT_STATUS, classify, type Classification, type Phase } from '../errors/classify.js'
import type { AccessRecord, FailureRecord } from '../log.js'
import { OriginAgent } from '../origin/agent.js'
import { forward } from '../origin/forward.js'
import { OriginPool, type MemberHealth, type PoolMember } from '../origin/pool.js'
import { newContext, type EdgeContext } from './context.js'
import { FAULT_HEADER, applies, injectedFailure, parseFault } from './fault-injection.js'
import { isRayId, newRayId } from './ray.js'
import { headersFor, mayTryElsewhere, takeOrigin } from './attempts.js'
import { accessRecord, failureRecord, type FailureExtras } from './records.js'
import { Responder } from './respond.js'
import { Router, hostOnly } from './router.js'
import { kSocketRequest, type ClientSocket } from './client-errors.js'
import { upgrade } from './upgrade.js'

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
  /** Called with every access record (metrics). */
  onAccess?: (record: AccessRecord) => void
  /** Receives a function that reports every origin's health (metrics, admin). */
  exposeHealth?: (health: () => MemberHealth[]) => void
  /** Receives a function that swaps in new routes and pools (SIGHUP). */
  exposeReload?: (reload: (edge: Pick<EdgeConfig, 'routes' | 'pools'>) => void) => void
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

/** Node keeps the first of two Host headers; an edge must refuse the request (RFC 9112 §3.2). */
function hostCount (raw: string[]): number {
  let n = 0
  for (let i = 0; i < raw.length; i += 2) if ((raw[i] as string).length === 4 && (raw[i] as string).toLowerCase() === 'host') n++
  return n
}

/** What is wrong with the request itself, as an edge status, or null. */
function refusal (req: IncomingMessage, path: string, opts: EdgeConfig): number | null {
  if ((req.url ?? '').length > opts.maxUrlLength) return 414
  if (req.rawHeaders.length / 2 > opts.maxHeaderCount) return 431
  if (hostCount(req.rawHeaders) !== 1 || hostOnly(req.headers.host) === '' || DOT_SEGMENT.test(path)) return 400
  return null
}

export const edgeProxy: FastifyPluginAsync<EdgeProxyOptions> = async (app: FastifyInstance, opts) => {
  const log: Logger = opts.logger ?? (app.log as Logger)
  const respond = new Responder(opts.rayHeader, opts.edgeName)
  const agent = new OriginAgent({
    dial: { connectTimeoutMs: 15_000, tlsTimeoutMs: opts.tlsTimeoutMs, tls: { verify: true } },
    bodyIdleTimeoutMs: opts.bodyIdleTimeoutMs,
    keepAliveTimeoutMs: opts.keepAliveTimeoutMs,
    maxResponseHeaderBytes: opts.maxResponseHeaderBytes,
    rayHeader: opts.rayHeader
  })

  /** Routes and pools: swapped whole on reload; a request in flight keeps the ones it started with. */
  interface State { router: Router, pools: Map<PoolConfig, OriginPool> }
  const build = (routes: RouteConfig[], configs: PoolConfig[]): State => {
    const pools = new Map<PoolConfig, OriginPool>()
    for (const config of configs) {
      const pool = new OriginPool(config)
      pools.set(config, pool)
      for (const url of config.origins) {
        agent.register(url, { connectTimeoutMs: config.connectTimeoutMs, tlsTimeoutMs: opts.tlsTimeoutMs, tls: config.tls })
      }
      if (!config.tls.verify) log.warn({ pool: config.name }, 'origin certificate verification is off for this pool: 526 cannot happen')
      pool.startChecks(agent.dispatcher)
    }
    return { router: new Router(routes), pools }
  }
  let state = build(opts.routes, opts.pools)
  opts.exposeReload?.((edge) => {
    const old = state
    state = build(edge.routes, edge.pools)
    for (const pool of old.pools.values()) pool.stopChecks()
  })
  opts.exposeHealth?.(() => [...state.pools.values()].flatMap(p => p.snapshot()))
  app.addHook('preClose', (done) => {
    respond.draining = true
    done()
  })
  app.addHook('onClose', async () => {
    for (const pool of state.pools.values()) pool.stopChecks()
    await agent.close()
  })

  // A proxy forwards bodies as they come: nothing is parsed or buffered.
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', (_req, payload, done) => done(null, payload))

  app.decorateRequest('edge', null as unknown as EdgeContext)
  app.addHook('onRequest', (req, _reply, done) => {
    // Fastify's request id is the ray id when the host app generates ray ids (ours does).
    req.edge = newContext(isRayId(req.id) ? req.id : newRayId(), performance.now(), req.ip)
    done()
  })

  const logFailure = (ctx: EdgeContext, err: unknown, phase: Phase, c: Classification, extra?: FailureExtras): void => {
    const record = failureRecord(ctx, err, dialErrorIn(err), phase, c, extra)
    if (c.known) log.warn(record)
    else log.error(record, 'origin failure')
    opts.onFailure?.(record)
  }

  const logAccess = (ctx: EdgeContext, req: IncomingMessage, status: number): void => {
    const record = accessRecord(ctx, req.method ?? '', req.headers.host ?? '', ctx.path, status)
    log.info(record)
    opts.onAccess?.(record)
  }

  const onClosed = (req: FastifyRequest, res: ServerResponse): void => {
    const ctx = req.edge
    if (!res.writableFinished && !ctx.truncated) {
      ctx.clientAborted = true
      ctx.abortOrigin?.(new ClientAbortError())
    }
    const socket = req.raw.socket as ClientSocket | null
    if (socket !== null && socket[kSocketRequest] === ctx) socket[kSocketRequest] = undefined
    logAccess(ctx, req.raw, ctx.clientError ?? (res.headersSent ? res.statusCode : CLIENT_ABORT_STATUS))
  }

  /** One attempt at one origin of the route's pool; a failed dial may try one more. */
  const attempt = (req: FastifyRequest, res: ServerResponse, route: RouteConfig, pool: OriginPool, path: string): void => {
    const ctx = req.edge
    const member = takeOrigin(ctx, pool)
    if (member === null) {
      const status = pool.downStatus() ?? 502
      const c: Classification = { status, cause: null, code: 'HPX_ERR_POOL_DOWN', why: 'every origin of the pool is marked down: answered from the last failure without dialling', known: true }
      logFailure(ctx, new PoolDownError(pool.config.name, pool.members.length), 'connect', c)
      respond.error(req, res, route, status, null)
      return
    }
    member.inFlight++
    agent.track(ctx)
    forward(agent.dispatcher, {
      origin: member.origin,
      path,
      method: req.method,
      headers: headersFor(req.headers, ctx, route, member, req.protocol === 'https' ? 'https' : 'http', opts),
      body: bodyOf(req.raw, route),
      headersTimeoutMs: pool.config.responseTimeoutMs,
      bodyIdleTimeoutMs: opts.bodyIdleTimeoutMs
    }, res, ctx, {
      edgeHeaders: () => respond.edgeHeaders(ctx, route),
      redirect: {
        from: member.origin,
        to: `${req.protocol}://${req.headers.host ?? ''}${route.stripPrefix ? route.path.replace(/\/$/, '') : ''}`
      },
      onHeaders: status => {
        member.health.succeeded()
        if (route.originErrors === 'replace' && status >= 500) {
          logFailure(ctx, new OriginErrorReplacedError(status), 'response',
            { status: 502, cause: null, code: 'HPX_ERR_ORIGIN_5XX', why: `the origin answered ${status}; this route replaces origin errors`, known: true })
          respond.error(req, res, route, 502, null)
          return false
        }
        return true
      },
      onDone: () => {
        member.inFlight--
        agent.release(ctx)
      },
      onError: (err, headersSent) => onOriginError(req, res, route, pool, member, path, err, headersSent)
    })
  }

  /** A chunked body has no declared size: it is counted as it streams, and cut at the limit. */
  const bodyOf = (raw: IncomingMessage, route: RouteConfig): Readable | null => {
    if (!hasBody(raw)) return null
    if (route.maxBodyBytes === 0 || raw.headers['content-length'] !== undefined) return raw
    let seen = 0
    const limit = route.maxBodyBytes
    return raw.pipe(new Transform({
      transform (chunk: Buffer, _enc, done) {
        seen += chunk.length
        if (seen > limit) done(new BodyTooLargeError(limit))
        else done(null, chunk)
      }
    }))
  }

  const onOriginError = (req: FastifyRequest, res: ServerResponse, route: RouteConfig, pool: OriginPool,
    member: PoolMember, path: string, err: Error, headersSent: boolean): void => {
    const ctx = req.edge
    const dialErr = dialErrorIn(err)
    const phase: Phase = dialErr?.phase ?? (headersSent ? 'body' : 'response')
    const c = classify(err, phase)
    if (c.status === 413) {
      // The client's fault, not the origin's: no failure line, no health penalty.
      member.health.released()
      respond.error(req, res, route, 413, null)
      res.once('finish', () => req.raw.socket?.destroy())
      return
    }
    // A client that left is not an origin failure, whatever the origin was doing.
    if (ctx.clientAborted || c.status === CLIENT_ABORT_STATUS) {
      member.health.released()
      return
    }
    if (dialErr !== null) member.health.failed(c.status)
    logFailure(ctx, err, phase, c, { truncated: headersSent })
    if (headersSent) {
      // The status is on the wire: the only honest signal left is a cut connection.
      ctx.truncated = true
      res.destroy()
      return
    }
    // Nothing reached the origin: any method may try another origin, once.
    if (mayTryElsewhere(ctx, pool, dialErr)) {
      ctx.socket = null
      ctx.socketFresh = false
      attempt(req, res, route, pool, path)
      return
    }
    respond.error(req, res, route, c.status, c.cause)
  }

  const injectFault = (req: FastifyRequest, res: ServerResponse, route: RouteConfig, status: OriginFaultStatus): void => {
    const fault = injectedFailure(status, route.pool)
    const fire = (): void => {
      if (req.edge.clientAborted) return
      logFailure(req.edge, fault.error, fault.phase, fault.classification, fault.extras)
      respond.error(req, res, route, status, fault.classification.cause)
    }
    if (fault.waitMs === 0) { fire(); return }
    const timer = setTimeout(fire, fault.waitMs)
    res.once('close', () => clearTimeout(timer))
  }

  // Upgrades bypass Fastify's request handling in Node; they are routed the same way.
  const deps = { agent, respond, edge: opts, logFailure, logAccess }
  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    const ctx = newContext(newRayId(), performance.now(), req.socket.remoteAddress ?? '')
    const { path, query } = splitTarget(req.url ?? '/')
    ctx.path = path
    const { router, pools } = state
    const refused = refusal(req, path, opts)
    const route = refused === null ? router.match(hostOnly(req.headers.host), path) : null
    if (route === null) {
      socket.once('close', () => logAccess(ctx, req, ctx.edgeStatus ?? 404))
      respond.errorOnSocket(req, socket, ctx, null, refused ?? 404, null)
      return
    }
    ctx.route = route.name
    upgrade(deps, req, socket, head, ctx, route, pools.get(route.pool) as OriginPool, Router.originPath(route, path) + query)
  }
  app.server.on('upgrade', onUpgrade)
  app.addHook('onClose', async () => { app.server.off('upgrade', onUpgrade) })

  // Fastify's own error logging stays on the request logger at error level; the access
  // and failure lines are ours.
  app.all('/*', { logLevel: 'error' }, (req, reply) => {
    reply.hijack()
    const res = reply.raw
    const ctx = req.edge
    ;(req.raw.socket as ClientSocket)[kSocketRequest] = ctx
    res.once('close', () => onClosed(req, res))
    const { path, query } = splitTarget(req.url)
    ctx.path = path
    const refused = refusal(req.raw, path, opts)
    if (refused !== null) {
      respond.error(req, res, null, refused, null)
      return
    }
    const { router, pools } = state
    const route = router.match(hostOnly(req.headers.host), path)
    if (route === null) {
      respond.error(req, res, null, 404, null)
      return
    }
    ctx.route = route.name
    const pool = pools.get(route.pool) as OriginPool
    const declared = Number(req.headers['content-length'] ?? 0)
    if (route.maxBodyBytes > 0 && declared > route.maxBodyBytes) {
      respond.error(req, res, route, 413, null)
      return
    }

    const faultHeader = req.headers[FAULT_HEADER]
    if (faultHeader !== undefined) {
      const fault = parseFault(faultHeader)
      if (!route.faultInjection || fault === null) {
        log.info({ ray_id: ctx.ray, header: String(faultHeader).slice(0, 64), enabled: route.faultInjection }, 'fault injection header ignored')
      } else if (applies(fault)) {
        ctx.originUrl = pool.members[0]?.origin ?? null
        injectFault(req, res, route, fault.status)
        return
      }
    }
    attempt(req, res, route, pool, Router.originPath(route, path) + query)
  })
}
