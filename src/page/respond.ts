// The answer to an edge error: which representation the client asked for (negotiate),
// rendered from templates compiled at start (render), with the headers every edge
// error carries. It knows nothing of requests or sockets: the edge writes what this
// returns to whichever sink the client has.

import type { UnknownErrorCause } from '../status/catalog.js'
import { negotiate } from './negotiate.js'
import { ErrorRenderer } from './render.js'

export interface ErrorPageFacts {
  status: number
  cause: UnknownErrorCause | null
  /** The client's Accept header. */
  accept: string | undefined
  /** The Host the client asked for, as received (escaped when rendered, never trusted). */
  host: string
  ray: string
  clientIp: string
  /** A sentence for the owner about the origin's condition; null: none. */
  ownerNote?: string | null
  /** The request's trace id when it was traced (sampled); null or absent: none. */
  traceId?: string | null
}

export interface ErrorPage {
  /** Flat name/value list, content-length included. */
  headers: string[]
  body: string
}

export class ErrorPages {
  private readonly renderer: ErrorRenderer

  constructor (edgeName: string) {
    this.renderer = new ErrorRenderer(edgeName)
  }

  /** The page for this error, after `before` (the edge's own headers: ray id, Server, the route's). */
  build (facts: ErrorPageFacts, before: string[]): ErrorPage {
    const rendered = this.renderer.render({
      status: facts.status,
      cause: facts.cause,
      host: facts.host,
      ray: facts.ray,
      clientIp: facts.clientIp,
      traceId: facts.traceId ?? null,
      time: Date.now(),
      ownerNote: facts.ownerNote ?? null
    }, negotiate(facts.accept))
    const headers = before
    for (let i = 0; i < rendered.headers.length; i++) headers.push(rendered.headers[i] as string)
    headers.push('content-length', String(Buffer.byteLength(rendered.body)))
    return { headers, body: rendered.body }
  }
}
