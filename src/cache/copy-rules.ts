// Which responses Always online may keep, and which stored copy may answer which
// request. RFC 9111 for a shared cache is http-cache-semantics' (storability, freshness,
// age); what it leaves to the cache is here: credentials (a request with Authorization
// or Cookie is personal unless the origin said `public`), Set-Cookie (a session must
// never be handed to another visitor), the origin's own `stale-if-error` window
// (RFC 5861), the directives that forbid serving stale (RFC 9111 §4.2.4), and the
// client's `no-cache` and `max-stale`.

import type { IncomingHttpHeaders } from 'node:http'
import CachePolicy from 'http-cache-semantics'

/** Cache-Control directives, lower-case names; a directive without a value is `true`. */
export type Directives = ReadonlyMap<string, string | true>

/**
 * http-cache-semantics keeps its parsed directives private; the few this module needs
 * are read with the same grammar (RFC 9111 §5.2: comma-separated, optional `=value`,
 * quoted values unquoted).
 */
export function directives (value: string | string[] | undefined): Directives {
  const out = new Map<string, string | true>()
  if (value === undefined) return out
  for (const part of (Array.isArray(value) ? value.join(',') : value).split(',')) {
    const eq = part.indexOf('=')
    const name = (eq === -1 ? part : part.slice(0, eq)).trim().toLowerCase()
    if (name !== '') out.set(name, eq === -1 ? true : part.slice(eq + 1).trim().replace(/^"(.*)"$/, '$1'))
  }
  return out
}

const seconds = (v: string | true | undefined): number => {
  const n = typeof v === 'string' ? Number.parseInt(v, 10) : NaN
  return Number.isFinite(n) && n > 0 ? n : 0
}

/** Directives that forbid a shared cache to serve the response once stale (RFC 9111 §4.2.4, §5.2.2.10). */
const MUST_REVALIDATE = ['no-cache', 'must-revalidate', 'proxy-revalidate', 's-maxage']

export const hasCredentials = (headers: IncomingHttpHeaders): boolean =>
  headers.authorization !== undefined || headers.cookie !== undefined

/** What a stored copy remembers of the rules, decided once when it is stored. */
export interface CopyTerms {
  policy: CachePolicy
  /** Request header names the response varies on (lower case); empty: none. */
  vary: string[]
  /** The request's values of those headers. */
  varied: Array<string | string[] | undefined>
  /** `Cache-Control: public`: may answer a request with credentials. */
  public: boolean
  /** The origin's stale-if-error, seconds (0: none). */
  staleIfError: number
  /** The origin forbade serving it stale (unless within its own stale-if-error). */
  revalidate: boolean
}

/**
 * The terms a copy of this response would be stored under, or null when it must not be
 * stored: not storable by a shared cache and not marked stale-if-error either, a partial
 * response, a server error (a failing origin's 5xx must not replace the good copy), a Set-Cookie, `Vary: *`, or a personal request without `public`.
 */
export function copyTerms (method: string, url: string, req: IncomingHttpHeaders, status: number, res: IncomingHttpHeaders): CopyTerms | null {
  if (method !== 'GET' || status === 206 || status >= 500 || req.range !== undefined || res['set-cookie'] !== undefined) return null
  const cc = directives(res['cache-control'])
  if (cc.has('no-store') || cc.has('private')) return null
  const isPublic = cc.has('public')
  if (hasCredentials(req) && !isPublic) return null
  const vary = res.vary === undefined ? [] : String(res.vary).split(',').map(v => v.trim().toLowerCase()).filter(v => v !== '')
  if (vary.includes('*')) return null
  const policy = new CachePolicy({ method, url, headers: req as CachePolicy.Headers }, { status, headers: res as CachePolicy.Headers }, { shared: true })
  const staleIfError = seconds(cc.get('stale-if-error'))
  if (!policy.storable() && staleIfError === 0) return null
  return {
    policy,
    vary,
    varied: vary.map(name => req[name]),
    public: isPublic,
    staleIfError,
    revalidate: MUST_REVALIDATE.some(d => cc.has(d))
  }
}

/** The selecting headers of the request match the stored ones (RFC 9111 §4.1). */
export function varyMatches (terms: CopyTerms, req: IncomingHttpHeaders): boolean {
  for (let i = 0; i < terms.vary.length; i++) {
    if (String(req[terms.vary[i] as string]) !== String(terms.varied[i])) return false
  }
  return true
}

/** What the client's own Cache-Control allows: `no-cache` (or Pragma's) forbids any stored copy; `max-stale=N` caps the staleness. */
export interface ClientLimit { refused: boolean, maxStale: number }

const ANY_STALENESS: ClientLimit = { refused: false, maxStale: Infinity }

export function clientLimit (req: IncomingHttpHeaders): ClientLimit {
  const value = req['cache-control']
  if (value === undefined) return /no-cache/i.test(String(req.pragma ?? '')) ? { refused: true, maxStale: 0 } : ANY_STALENESS
  const cc = directives(value)
  if (cc.has('no-cache')) return { refused: true, maxStale: 0 }
  const maxStale = cc.get('max-stale')
  if (maxStale === undefined || maxStale === true) return ANY_STALENESS
  return { refused: false, maxStale: seconds(maxStale) }
}

/**
 * Whether a copy may answer for a failed origin now: within the route's max age or the
 * origin's stale-if-error window (only the latter when the origin forbade stale
 * answers), and no staler than the client's max-stale.
 */
export function servable (terms: CopyTerms, routeMaxAgeS: number, limit: ClientLimit, credentials: boolean): boolean {
  if (credentials && !terms.public) return false
  const age = terms.policy.age()
  const staleness = age - terms.policy.maxAge()
  if (staleness > limit.maxStale) return false
  const originWindow = terms.staleIfError > 0 && staleness <= terms.staleIfError
  return originWindow || (!terms.revalidate && age <= routeMaxAgeS)
}
