// Answering with an edge error: negotiate, render, apply the route's status rewrite,
// and write it with the headers every edge response carries.

import { STATUS_CODES, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http'
import type { Duplex } from 'node:stream'
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

  /** Set when the server starts draining: every later response closes its connection. */
  draining = false

  constructor (private readonly rayHeader: string, private readonly edgeName: string) {
    this.renderer = new ErrorRenderer({ edgeName })
  }

  /** Headers on every response, proxied or not: the ray id, our Server, the route's extras. */
  edgeHeaders (ctx: EdgeContext, route: RouteConfig | null): string[] {
    const headers = [this.rayHeader, rayHeaderValue(ctx.ray, this.edgeName), 'server', SERVER_NAME]
    // A kept-alive connection would hold a draining server open until its idle timeout.
    if (this.draining) headers.push('connection', 'close')
    if (route !== null && route.responseHeaders.length > 0) headers.push(...route.responseHeaders)
    return headers
  }

  /** Status, headers and body of an edge error for this request. */
  private build (headers: IncomingHttpHeaders, ctx: EdgeContext, route: RouteConfig | null, status: number,
    cause: UnknownErrorCause | null): { status: number, headers: string[], body: string } {
    ctx.edgeStatus = status
    const rendered = this.renderer.render({
      status,
      cause,
      host: headers.host ?? '',
      ray: ctx.ray,
      clientIp: ctx.clientIp,
      time: new Date()
    }, negotiate(headers.accept))
    const out = this.edgeHeaders(ctx, route)
    for (const name in rendered.headers) out.push(name, rendered.headers[name] as string)
    // For clients that only know standard codes; the body still says what really happened.
    return { status: route?.statusRewrite.get(status) ?? status, headers: out, body: rendered.body }
  }

  error (req: FastifyRequest, res: ServerResponse, route: RouteConfig | null, status: number,
    cause: UnknownErrorCause | null): void {
    if (res.headersSent || res.destroyed) {
      req.edge.edgeStatus = status
      return
    }
    const page = this.build(req.headers, req.edge, route, status, cause)
    // A refused body is never read: the connection cannot carry another request.
    if (status === 413 && !this.draining) page.headers.push('connection', 'close')
    res.writeHead(page.status, page.headers)
    res.end(req.method === 'HEAD' ? undefined : page.body)
  }

  /** The same answer on a raw socket: an upgrade request never got a ServerResponse. */
  errorOnSocket (req: IncomingMessage, socket: Duplex, ctx: EdgeContext, route: RouteConfig | null, status: number,
    cause: UnknownErrorCause | null): void {
    if (socket.destroyed) return
    const page = this.build(req.headers, ctx, route, status, cause)
    let head = `HTTP/1.1 ${page.status} ${STATUS_CODES[page.status] ?? 'Error'}\r\n`
    for (let i = 0; i < page.headers.length; i += 2) head += `${page.headers[i] as string}: ${page.headers[i + 1] as string}\r\n`
    head += `content-length: ${Buffer.byteLength(page.body)}\r\nconnection: close\r\n\r\n`
    socket.end(head + page.body)
  }
}
