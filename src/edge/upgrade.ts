// WebSocket (and other HTTP/1.1 upgrade) requests: routed and dialled like any other
// request, so a refused or timed-out upgrade gets the same 521/522 answer and log
// line; once the origin says 101 the two sockets are piped together.

import type { IncomingMessage } from 'node:http'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import type { Dispatcher } from 'undici'
import type { RouteConfig } from '../config/schema.js'
import { dialErrorIn } from '../errors.js'
import { classify, type Classification, type Phase } from '../errors/classify.js'
import { normalizeOriginError, type OriginAgent } from '../origin/agent.js'
import type { OriginPool } from '../origin/pool.js'
import type { EdgeContext } from './context.js'
import { headersFor, mayTryElsewhere, takeOrigin, type EdgeIdentity } from './attempts.js'
import type { Responder } from './respond.js'

export interface UpgradeDeps {
  agent: OriginAgent
  respond: Responder
  edge: EdgeIdentity
  logFailure: (ctx: EdgeContext, err: unknown, phase: Phase, c: Classification) => void
  logAccess: (ctx: EdgeContext, req: IncomingMessage, status: number) => void
}

export function upgrade (deps: UpgradeDeps, req: IncomingMessage, client: Duplex, head: Buffer,
  ctx: EdgeContext, route: RouteConfig, pool: OriginPool, path: string): void {
  client.on('error', () => client.destroy())
  let status = 0
  client.once('close', () => deps.logAccess(ctx, req, status === 0 ? 499 : status))

  const attempt = (): void => {
    const member = takeOrigin(ctx, pool)
    if (member === null) {
      status = pool.downStatus() ?? 502
      deps.respond.errorOnSocket(req, client, ctx, route, status, null)
      return
    }
    const handler = {
      onConnect: (abort: (err?: Error) => void) => { ctx.abortOrigin = abort },
      onHeaders: () => true,
      onData: () => true,
      onComplete: () => {},
      onUpgrade: (statusCode: number, raw: Buffer[], origin: Socket) => {
        member.health.succeeded()
        status = statusCode
        let response = `HTTP/1.1 ${statusCode} Switching Protocols\r\n`
        const edge = deps.respond.edgeHeaders(ctx, route)
        for (let i = 0; i < edge.length; i += 2) response += `${edge[i] as string}: ${edge[i + 1] as string}\r\n`
        for (let i = 0; i < raw.length; i += 2) response += `${(raw[i] as Buffer).toString('latin1')}: ${(raw[i + 1] as Buffer).toString('latin1')}\r\n`
        client.write(response + '\r\n')
        if (head.length > 0) origin.write(head)
        origin.on('error', () => client.destroy())
        origin.once('close', () => client.destroy())
        client.once('close', () => origin.destroy())
        origin.pipe(client)
        client.pipe(origin)
      },
      onError: (error: Error) => {
        const err = normalizeOriginError(error)
        if (client.destroyed) { member.health.released(); return }
        const dialErr = dialErrorIn(err)
        const phase: Phase = dialErr?.phase ?? 'response'
        const c = classify(err, phase)
        if (dialErr !== null) member.health.failed(c.status)
        deps.logFailure(ctx, err, phase, c)
        if (mayTryElsewhere(ctx, pool, dialErr)) {
          attempt()
          return
        }
        status = route.statusRewrite.get(c.status) ?? c.status
        deps.respond.errorOnSocket(req, client, ctx, route, c.status, c.cause)
      }
    }
    deps.agent.dispatcher.dispatch({
      origin: member.origin,
      path,
      method: 'GET',
      headers: headersFor(req.headers, ctx, route, member, 'http', deps.edge) as Record<string, string>,
      upgrade: String(req.headers.upgrade ?? 'websocket'),
      headersTimeout: pool.config.responseTimeoutMs
    }, handler as unknown as Dispatcher.DispatchHandler)
  }
  attempt()
}
