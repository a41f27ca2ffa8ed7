// What the edge runs with: the routes and pools of the current config (swapped whole on
// reload; a request in flight keeps the ones it started with), the health of every
// origin (kept across reloads), and everything built once at start: the error pages,
// the client-address trust, the per-route header rules, the loggers' hooks.

import type { Logger } from 'pino'
import { StaleStore } from '../cache/stale-store.js'
import type { EdgeConfig, PoolConfig, RouteConfig } from '../config/schema.js'
import type { AccessRecord, FailureRecord } from '../log/log.js'
import { HealthStore, type OriginHealth } from '../origin/health.js'
import { OriginPool, type MemberHealth } from '../origin/pool.js'
import { Transport, type ConnectionSet } from '../origin/transport.js'
import { UNDICI_BACKSTOP_MS } from '../origin/connection.js'
import type { DialInfo } from '../origin/dial.js'
import { ErrorPages } from '../page/respond.js'
import { ProxyStatus } from '../page/proxy-status.js'
import { StrayResponseError } from '../status/errors.js'
import { AccessLog } from './access-log.js'
import { compileTrust, type Trust } from './client-ip.js'
import type { ActiveRoute } from './exchange.js'
import { headerRules, type EdgeFlags, type EdgeIdentity, type HeaderRules } from './forward-headers.js'
import { edgeResponseHeaders } from '../page/edge-headers.js'
import { Router } from './router.js'
import { staleRoute } from './stale.js'
import type { EdgeTracing } from './trace.js'

export interface EdgeHooks {
  /** Called with every failure record (the admin listener keeps them by ray id). */
  onFailure?: (record: FailureRecord) => void
  /** Called with every access record (metrics). */
  onAccess?: (record: AccessRecord) => void
  /** OpenTelemetry spans for every request (trace.ts); absent: off. */
  tracing?: EdgeTracing | null
}

/** Routes and pools of one config. */
export class EdgeState {
  readonly router: Router<ActiveRoute>
  readonly pools: OriginPool[]

  constructor (readonly routes: ActiveRoute[], pools: OriginPool[]) {
    this.router = new Router(routes)
    this.pools = pools
  }
}

export class EdgeRuntime {
  state: EdgeState
  readonly flags: EdgeFlags = { draining: false }
  readonly pages: ErrorPages
  readonly proxyStatus: ProxyStatus
  readonly access: AccessLog
  readonly trust: Trust | null
  readonly identity: EdgeIdentity
  /** The edge's own headers for an answer that has no route (404, refusals). */
  readonly bare: Pick<HeaderRules, 'rayHeader' | 'edgeName' | 'responseExtra' | 'flags'>
  /** Always online's copies: one store for the process, kept across reloads. */
  readonly cache: StaleStore
  readonly tracing: EdgeTracing | null
  // Each change of an origin's condition is one line, when it happens: never one per request.
  private readonly health = new HealthStore((pool, origin, t) => {
    const line = { msg: 'origin condition', pool, origin, condition: t.to, from: t.from, evidence: t.evidence }
    if (t.to === 'down' || t.to === 'drowning') this.log.warn(line)
    else this.log.info(line)
  })

  constructor (readonly config: EdgeConfig, readonly log: Logger, readonly hooks: EdgeHooks, store?: StaleStore) {
    this.pages = new ErrorPages(config.edgeName)
    this.proxyStatus = new ProxyStatus({ edgeName: config.edgeName })
    this.access = new AccessLog(log, config.logFields)
    this.trust = compileTrust(config.clientIp.trustedProxies)
    this.tracing = hooks.tracing ?? null
    this.identity = { rayHeader: config.rayHeader, edgeName: config.edgeName, clientIpHeader: config.clientIp.header, traced: this.tracing !== null }
    this.bare = { rayHeader: config.rayHeader, edgeName: config.edgeName, responseExtra: edgeResponseHeaders(config.hsts), flags: this.flags }
    this.cache = store ?? new StaleStore(config.cache.maxBytes, config.cache.maxEntryBytes)
    this.state = this.build(config.routes, config.pools)
  }

  /** New routes and pools for new requests; health of origins still configured is kept. */
  reload (routes: RouteConfig[], pools: PoolConfig[]): void {
    const old = this.state
    this.state = this.build(routes, pools)
    for (const pool of old.pools) pool.retire()
    const kept = new Set<OriginHealth>()
    for (const pool of this.state.pools) for (const m of pool.members) kept.add(m.health)
    this.health.retain(kept)
  }

  snapshot (): MemberHealth[] {
    return this.state.pools.flatMap(p => p.snapshot())
  }

  close (): void {
    for (const pool of this.state.pools) pool.retire()
  }

  private build (routes: RouteConfig[], configs: PoolConfig[]): EdgeState {
    const pools = new Map<PoolConfig, OriginPool>()
    for (const config of configs) {
      const pool = new OriginPool(config, this.transport(config), this.health)
      pools.set(config, pool)
      if (!config.tls.verify) this.log.warn({ pool: config.name }, 'origin certificate verification is off for this pool: 526 cannot happen')
      pool.startChecks()
    }
    const active = routes.map(route => {
      const pool = pools.get(route.pool) as OriginPool
      const headers = headerRules(route, this.identity, this.flags, this.config.receivedStatus ? this.proxyStatus : null, this.bare.responseExtra)
      return {
        host: route.host,
        path: route.path,
        config: route,
        pool,
        settings: {
          headers,
          responseTimeoutMs: route.pool.responseTimeoutMs,
          bodyIdleTimeoutMs: this.config.bodyIdleTimeoutMs,
          originWriteTimeoutMs: this.config.originWriteTimeoutMs,
          clientWriteTimeoutMs: this.config.clientWriteTimeoutMs,
          stale: staleRoute(route, this.cache, headers)
        }
      }
    })
    return new EdgeState(active, [...pools.values()])
  }

  /** Each pool dials with its own options, even when two pools list the same origin. */
  private transport (pool: PoolConfig): Transport {
    const c = this.config
    return new Transport({
      dial: { connectTimeoutMs: pool.connectTimeoutMs, tlsTimeoutMs: c.tlsTimeoutMs, tls: pool.tls },
      connection: {
        keepAliveTimeoutMs: c.keepAliveTimeoutMs,
        maxResponseHeaderBytes: c.maxResponseHeaderBytes,
        backstopMs: Math.max(pool.responseTimeoutMs, c.bodyIdleTimeoutMs, c.clientWriteTimeoutMs) + UNDICI_BACKSTOP_MS
      },
      reuse: pool.connections.reuse,
      maxConnections: pool.connections.maxPerOrigin,
      maxQueue: pool.connections.maxQueuePerOrigin,
      maxPerClient: pool.connections.maxPerClient,
      queueTimeoutMs: pool.connectTimeoutMs,
      maxPendingConnects: pool.connections.maxPendingConnects,
      onStray: (set, info, err) => this.stray(pool, set, info, err)
    })
  }

  /** The origin answered nobody: the connection is closed, and the operator told. */
  private stray (pool: PoolConfig, set: ConnectionSet, info: DialInfo, err: Error | null): void {
    const stray = new StrayResponseError({ cause: err })
    this.log.warn({
      msg: 'stray origin response',
      error: { code: stray.code, message: err?.message ?? '' },
      why: 'the origin sent bytes with no request outstanding: that connection is out of step and was closed',
      pool: pool.name,
      origin: { url: set.key, address: info.address, port: info.port },
      source: info.localAddress === null ? null : { address: info.localAddress, port: info.localPort ?? 0 }
    })
  }
}
