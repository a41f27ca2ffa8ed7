// Which route serves this host and path? First match wins, in configured order.

import type { RouteConfig } from '../config/schema.js'

function hostMatches (pattern: string, host: string): boolean {
  if (pattern === '*') return true
  if (pattern.startsWith('*.')) return host.endsWith(pattern.slice(1)) && host.length > pattern.length - 1
  return pattern === host
}

function pathMatches (prefix: string, path: string): boolean {
  if (prefix === '/') return true
  if (!path.startsWith(prefix)) return false
  // "/api" serves "/api" and "/api/x", not "/apix".
  return prefix.endsWith('/') || path.length === prefix.length || path[prefix.length] === '/' || path[prefix.length] === '?'
}

/** The Host header without its port, lower case; IPv6 literals keep their brackets. */
export function hostOnly (hostHeader: string | undefined): string {
  if (hostHeader === undefined) return ''
  const host = hostHeader.toLowerCase()
  if (host.startsWith('[')) {
    const end = host.indexOf(']')
    return end === -1 ? host : host.slice(0, end + 1)
  }
  const colon = host.indexOf(':')
  return colon === -1 ? host : host.slice(0, colon)
}

export class Router {
  constructor (private readonly routes: readonly RouteConfig[]) {}

  match (host: string, path: string): RouteConfig | null {
    for (const route of this.routes) {
      if (hostMatches(route.host, host) && pathMatches(route.path, path)) return route
    }
    return null
  }

  /** The path the origin sees: the matched prefix removed when the route says so. */
  static originPath (route: RouteConfig, path: string): string {
    if (!route.stripPrefix || route.path === '/') return path
    const rest = path.slice(route.path.length)
    return rest.startsWith('/') ? rest : `/${rest}`
  }
}
