// Always online on the request path. A route with stale_if_error gets a StaleRoute when
// the config loads (routes without it get null, and nothing here ever runs for them).
// - take: while an attempt relays a response the rules allow to keep, a CopyTaker is
//   handed each body chunk the client gets, and gives up (dropping what it had) past
//   the per-entry limit; at the end of the body the copy goes into the store. No second
//   request, nothing held back from the client.
// - answer: when the final failure of a GET or HEAD has one of the route's statuses, a
//   servable copy answers instead of the error page: the original status and headers,
//   with Age, our Proxy-Status member naming the real error, and Cache-Status (RFC 9211)
//   saying it is a stale hit.

import type { IncomingHttpHeaders } from 'node:http'
import { serializeList, Token, type BareItem, type Item } from 'structured-headers'
import { clientLimit, copyTerms, hasCredentials, servable, varyMatches, type CopyTerms } from '../cache/copy-rules.js'
import { copySize, StaleStore, type StoredCopy } from '../cache/stale-store.js'
import type { RouteConfig, StaleIfErrorConfig } from '../config/schema.js'
import type { Classification } from '../status/classify.js'
import type { Behind } from './answer.js'
import type { Exchange, RoutedExchange } from './exchange.js'
import type { HeaderRules } from './forward-headers.js'
import { edgeHeaders } from '../page/edge-headers.js'
import { writeToSink } from '../page/write.js'
import type { EdgeRuntime } from './runtime.js'

export interface StaleRoute {
  readonly store: StaleStore
  readonly route: string
  readonly maxAgeS: number
  readonly statuses: ReadonlySet<number>
  readonly serveWhenDown: boolean
  /** Relayed headers a copy does not keep: the edge's own, and those a stale answer sets anew. */
  readonly notKept: ReadonlySet<string>
  /** Cache-Status's cache name: the edge's name, a token when it can be one. */
  readonly cacheName: Token | string
}

export function staleRoute (route: RouteConfig, store: StaleStore, rules: HeaderRules): StaleRoute | null {
  const config: StaleIfErrorConfig | null = route.staleIfError
  if (config === null) return null
  return {
    store,
    route: route.name,
    maxAgeS: config.maxAgeMs / 1000,
    statuses: config.statuses,
    serveWhenDown: config.serveWhenDown,
    notKept: new Set([...rules.dropResponse, rules.rayHeader, 'server', 'connection', 'proxy-status', 'age', 'cache-status']),
    cacheName: /^[A-Za-z][A-Za-z0-9]*$/.test(rules.edgeName) ? new Token(rules.edgeName) : rules.edgeName
  }
}

const keyOf = (stale: StaleRoute, exchange: Exchange): string =>
  StaleStore.key(stale.route, exchange.host.toLowerCase(), exchange.path + exchange.query)

/** The copy of one response, taken as its body streams to the client. */
export class CopyTaker {
  private chunks: Buffer[] = []
  private bytes = 0

  constructor (private readonly stale: StaleRoute, private readonly key: string, private readonly target: string,
    private readonly status: number, private readonly text: string, private readonly headers: string[], private readonly terms: CopyTerms) {}

  /** False once the body outgrew the per-entry limit: the copy is dropped, the attempt stops calling. */
  add (chunk: Buffer): boolean {
    this.bytes += chunk.length
    if (this.bytes > this.stale.store.maxEntryBytes) {
      this.chunks = []
      return false
    }
    this.chunks.push(chunk)
    return true
  }

  /** The whole body went to the client: the copy is kept. One buffer of its own, so no socket read buffer stays alive behind a slice. */
  commit (): void {
    const body = Buffer.concat(this.chunks, this.bytes)
    this.chunks = []
    const copy: StoredCopy = {
      route: this.stale.route,
      target: this.target,
      status: this.status,
      text: this.text,
      headers: this.headers,
      body,
      terms: this.terms,
      size: copySize(this.headers, body)
    }
    this.stale.store.put(this.key, copy, old => sameVariant(old.terms, this.terms))
  }
}

const sameVariant = (a: CopyTerms, b: CopyTerms): boolean =>
  a.vary.length === b.vary.length && a.vary.every((name, i) => name === b.vary[i] && String(a.varied[i]) === String(b.varied[i]))

/** A taker for this response when the rules allow keeping it, else null (it streams through uncached). */
export function takeCopy (stale: StaleRoute, exchange: Exchange, status: number, text: string, origin: IncomingHttpHeaders,
  relayed: readonly string[]): CopyTaker | null {
  const length = origin['content-length']
  if (length !== undefined && Number(length) > stale.store.maxEntryBytes) return null
  const terms = copyTerms(exchange.method, exchange.path + exchange.query, exchange.headers, status, origin)
  if (terms === null) return null
  const headers: string[] = []
  for (let i = 0; i < relayed.length; i += 2) {
    const name = relayed[i] as string
    if (!stale.notKept.has(name)) headers.push(name, relayed[i + 1] as string)
  }
  return new CopyTaker(stale, keyOf(stale, exchange), exchange.path + exchange.query, status, text, headers, terms)
}

/** A stored copy that may answer this request for a failure with this status, or null. */
/** @param always answer whatever the route's `statuses` say (a request adaptive concurrency shed: the edge's own choice, a copy beats a 503) */
export function findCopy (stale: StaleRoute, exchange: Exchange, status: number, always = false): StoredCopy | null {
  if ((!always && !stale.statuses.has(status)) || (exchange.method !== 'GET' && exchange.method !== 'HEAD') || exchange.upgrade !== null) return null
  const limit = clientLimit(exchange.headers)
  if (limit.refused) return null
  const variants = stale.store.get(keyOf(stale, exchange))
  if (variants === undefined) return null
  const credentials = hasCredentials(exchange.headers)
  for (const copy of variants) {
    if (varyMatches(copy.terms, exchange.headers)) return servable(copy.terms, stale.maxAgeS, limit, credentials) ? copy : null
  }
  return null
}

const STALE_DETAIL = new Token('stale-if-error')

/** The copy answers, with what says it is one and why. */
export function sendCopy (edge: EdgeRuntime, exchange: RoutedExchange, stale: StaleRoute, copy: StoredCopy, c: Classification, behind: Behind): void {
  exchange.answered(c.status)
  const sink = exchange.sink
  if (sink.started || sink.gone) return
  const rules = exchange.route.settings.headers
  const policy = copy.terms.policy
  const age = policy.age()
  const headers = edgeHeaders(exchange.ray, rules, rules.responseExtra, rules.flags.draining, exchange.http2)
  headers.push(
    'proxy-status', edge.proxyStatus.forFailure(c, behind.error, exchange.pool?.config.name ?? null, behind.receivedStatus),
    'age', String(Math.floor(age)),
    // ttl: freshness left, negative once stale (RFC 9211 §2.6).
    'cache-status', serializeList([[stale.cacheName, new Map<string, BareItem>([['hit', true], ['ttl', Math.round(policy.maxAge() - age)], ['detail', STALE_DETAIL]])] as Item])
  )
  for (let i = 0; i < copy.headers.length; i++) headers.push(copy.headers[i] as string)
  writeToSink(sink, copy.status, copy.text, headers, copy.body, exchange.method === 'HEAD')
}
