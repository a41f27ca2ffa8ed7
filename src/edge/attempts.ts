// Which origin of the pool takes this attempt, and may a failed attempt try another?
// Shared by proxied requests and upgrades, so both follow the edge's one retry rule.

import type { IncomingHttpHeaders } from 'node:http'
import type { RouteConfig } from '../config/schema.js'
import type { DialError } from '../errors.js'
import type { OriginPool, PoolMember } from '../origin/pool.js'
import type { EdgeContext } from './context.js'
import { toOrigin } from './forward-headers.js'
import { rayHeaderValue } from './ray.js'

/** Only failures before any request byte reached the origin may be retried elsewhere, once. */
const MAX_ATTEMPTS = 2

/** The next origin for this request (none tried before), booked to it; null when none is left. */
export function takeOrigin (ctx: EdgeContext, pool: OriginPool): PoolMember | null {
  const member = pool.select(ctx.tried)
  if (member === null) return null
  ctx.tried.add(member)
  ctx.attempt++
  ctx.originUrl = member.origin
  member.health.acquire()
  return member
}

/** A dial failure (nothing was sent) with attempts and origins to spare. */
export function mayTryElsewhere (ctx: EdgeContext, pool: OriginPool, dialErr: DialError | null): boolean {
  return dialErr !== null && ctx.attempt < MAX_ATTEMPTS && pool.select(ctx.tried) !== null
}

export interface EdgeIdentity { rayHeader: string, edgeName: string }

/** The request headers this origin receives for this route. */
export function headersFor (incoming: IncomingHttpHeaders, ctx: EdgeContext, route: RouteConfig, member: PoolMember,
  proto: 'http' | 'https', edge: EdgeIdentity): IncomingHttpHeaders {
  return toOrigin(incoming, {
    clientIp: ctx.clientIp,
    proto,
    rayHeader: edge.rayHeader,
    rayValue: rayHeaderValue(ctx.ray, edge.edgeName),
    host: route.hostHeader === 'keep' ? incoming.host ?? member.url.host : member.url.host,
    extra: route.requestHeaders
  })
}
