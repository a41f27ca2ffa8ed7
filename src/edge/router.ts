// Which route serves this host and path? First match wins, in configured order.

export { hostOnly } from '../page/host.js'

export interface Routable {
  /** Exact host, `*.example.com`, or `*`. */
  readonly host: string
  /** Path prefix. */
  readonly path: string
}

function hostMatches (pattern: string, host: string): boolean {
  if (pattern === '*') return true
  if (pattern.startsWith('*.')) return host.endsWith(pattern.slice(1)) && host.length > pattern.length - 1
  return pattern === host
}

function pathMatches (prefix: string, path: string): boolean {
  if (prefix === '/') return true
  if (!path.startsWith(prefix)) return false
  // "/api" serves "/api" and "/api/x", not "/apix".
  return prefix.endsWith('/') || path.length === prefix.length || path[prefix.length] === '/'
}

export class Router<R extends Routable> {
  constructor (private readonly routes: readonly R[]) {}

  match (host: string, path: string): R | null {
    for (const route of this.routes) {
      if (hostMatches(route.host, host) && pathMatches(route.path, path)) return route
    }
    return null
  }
}

/**
 * The path of the request target, and its query. An absolute-form target
 * (`GET http://other.host/x`) is routed by its path and the Host header like any other:
 * its authority is never dialled, so the edge cannot be used as an open proxy.
 */
export function splitTarget (url: string): { path: string, query: string } {
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
