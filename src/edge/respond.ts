// Answering with an edge error: negotiate, render, apply the route's status rewrite,
// and write it with the headers every edge response carries.

import type { ServerResponse } from 'node:http'
import type { FastifyRequest } from 'fastify'
import type { RouteConfig } from '../config/schema.js'
import type { UnknownErrorCause } from '../errors/catalog.js'
import { negotiate } from '../errors/negotiate.js'
import { ErrorRenderer } from '../errors/render.js'
import type { EdgeContext } from './context.js'
import { SERVER_NAME } from './forward-headers.js'
import { rayHeaderValue } from './ray.js'

export class Responder {
  private readonly renderer: ErrorRenderer

  constructor (private readonly rayHeader: string, private readonly edgeName: string) {
    this.renderer = new ErrorRenderer({ edgeName })
  }

  /** Headers on every response, proxied or not: the ray id, our Server, the route's extras. */
  edgeHeaders (ctx: EdgeContext, route: RouteConfig | null): string[] {
    const headers = [this.rayHeader, rayHeaderValue(ctx.ray, this.edgeName), 'server', SERVER_NAME]
    if (route !== null && route.responseHeaders.length > 0) headers.push(...route.responseHeaders)
    return headers
  }

  error (req: FastifyRequest, res: ServerResponse, route: RouteConfig | null, status: number,
    cause: UnknownErrorCause | null): void {
    const ctx = req.edge
    ctx.edgeStatus = status
    if (res.headersSent || res.destroyed) return
    const rendered = this.renderer.render({
      status,
      cause,
      host: req.headers.host ?? '',
      ray: ctx.ray,
      clientIp: ctx.clientIp,
      time: new Date()
    }, negotiate(req.headers.accept))
    const headers = this.edgeHeaders(ctx, route)
    for (const name in rendered.headers) headers.push(name, rendered.headers[name] as string)
    // For clients that only know standard codes; the body still says what really happened.
    res.writeHead(route?.statusRewrite.get(status) ?? status, headers)
    res.end(req.method === 'HEAD' ? undefined : rendered.body)
  }
}
