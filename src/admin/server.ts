// The operations listener: a small Fastify instance on its own port (default
// 127.0.0.1:9090), apart from the edge so that a probe or a scrape never queues behind
// visitor traffic and is never routed to an origin.
//
//   GET /healthz    200 {"status":"ok"}: the process (with --workers: every worker) is up
//   GET /readyz     200 {"status":"ready"}, or 503 while starting or draining
//   GET /metrics    Prometheus text exposition (see metrics.ts for the names)
//   GET /rays/<id>  200 {"ray_id", "attempts": [failure records]}, 404 unknown, 400 not a ray id
//   GET /origins    200 {"pools": [{"pool", "origins": [{"origin", "condition", "since", "evidence",
//                   "in_flight", "limit", "pending_connects", "connects_waiting", "queued", "shed"}]}]}:
//                   each origin's condition and load (origins.ts)
//   GET /cache      200 {"entries", "bytes", "max_bytes", "max_entry_bytes"}: Always online's store
//   DELETE /cache?route=&path=   200 {"purged"}: drops stored copies (no route / path: any)
//
// Anything else is a 404. What each answers comes from a view (view.ts): this process's
// own state, or with --workers the primary's view over all of them (cluster-view.ts).

import type { AddressInfo } from 'node:net'
import Fastify, { LogController, type FastifyBaseLogger, type FastifyReply } from 'fastify'
import type { Logger } from 'pino'
import { rayIdIn } from '../log/ray.js'
import type { AdminView, Reply } from './view.js'

export interface AdminOptions {
  host: string
  port: number
  view: AdminView
  /** Admin problems are logged at warn and above; requests are not logged. */
  logger?: Logger
}

export interface AdminServer {
  url: string
  close: () => Promise<void>
}

const WARN = 40

export async function startAdmin (opts: AdminOptions): Promise<AdminServer> {
  const logger = opts.logger === undefined
    ? undefined
    : opts.logger.child({ component: 'admin' }, { level: opts.logger.levelVal > WARN ? opts.logger.level : 'warn' })
  const app = Fastify({
    ...(logger === undefined ? { logger: false } : { loggerInstance: logger as FastifyBaseLogger }),
    logController: new LogController({ disableRequestLogging: true }),
    return503OnClosing: true
  })

  // Probes and lookups are about now: nothing here may be cached by anything in between.
  app.addHook('onSend', async (_req, reply) => { reply.header('cache-control', 'no-store') })

  const { view } = opts
  const send = (reply: FastifyReply, { status, body }: Reply): FastifyReply => reply.code(status).send(body)

  app.get('/healthz', async (_req, reply) => send(reply, await view.health()))

  app.get('/readyz', async (_req, reply) => send(reply, await view.ready()))

  app.get('/metrics', async (_req, reply) => reply.type(view.contentType).send(await view.metrics()))

  app.get<{ Params: { id: string } }>('/rays/:id', async (req, reply) => {
    const id = rayIdIn(req.params.id)
    if (id === null) return reply.code(400).send({ error: 'not a ray id: expected 16 lowercase hex digits, alone or as the cf-ray value (<id>-HPX)' })
    return send(reply, await view.ray(id))
  })

  app.get('/cache', async (_req, reply) => send(reply, await view.cache()))
  app.get('/origins', async (_req, reply) => send(reply, await view.origins()))

  app.delete<{ Querystring: Record<string, unknown> }>('/cache', async (req, reply) => {
    const { route, path } = req.query
    return send(reply, await view.purge(typeof route === 'string' && route !== '' ? route : null, typeof path === 'string' && path !== '' ? path : null))
  })

  app.setNotFoundHandler(async (_req, reply) => reply.code(404).send({ error: 'not found' }))

  await app.listen({ host: opts.host, port: opts.port })
  const address = app.server.address() as AddressInfo
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address
  return {
    url: `http://${host}:${address.port}`,
    close: () => app.close()
  }
}
