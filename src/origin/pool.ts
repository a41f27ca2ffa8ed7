// A pool of origins: who is in it, how busy each one is, whether each is up, which one
// takes the next request, and the transport its connections go through. Active health
// checks run here when configured.

import type { AdaptiveConfig, PoolConfig } from '../config/schema.js'
import { HealthCheckError, dialErrorIn } from '../status/errors.js'
import { originTarget } from './dial.js'
import type { Condition } from './conditions.js'
import type { HealthStore, HealthState, OriginHealth } from './health.js'
import { AdaptiveLimit } from './adaptive.js'
import { memberLoad, type OriginLoad } from './load.js'
import { RetryBudget } from './retry-budget.js'
import { ramped, selector, type Selector } from './select.js'
import type { ConnectionSet, Transport } from './transport.js'

export class PoolMember {
  inFlight = 0
  /** The URL's origin (`http://127.0.0.1:9000`): what logs name. */
  readonly origin: string
  /** `host:port`: the metrics label, bounded by the configuration. */
  readonly label: string
  readonly connections: ConnectionSet
  /** Adaptive concurrency for this origin; null when the pool has it off. */
  readonly adaptive: AdaptiveLimit | null

  constructor (readonly url: URL, readonly pool: string, readonly health: OriginHealth, transport: Transport, adaptive: AdaptiveConfig | null = null) {
    this.origin = url.origin
    this.adaptive = adaptive === null ? null : new AdaptiveLimit(adaptive)
    const target = originTarget(url)
    this.label = `${url.hostname}:${target.port}`
    this.connections = transport.set(this.origin, target)
  }

  /** Its share of the pool's traffic: below 1 while slow start ramps it up. */
  weight (): number {
    return this.health.condition.weight()
  }
}


export interface MemberHealth {
  pool: string
  origin: string
  state: HealthState
  up: boolean
  inFlight: number
  /** The cap, the budget and adaptive concurrency as they stand (load.ts). */
  load: OriginLoad
  condition: Condition
  /** When the condition began (ms since the epoch). */
  since: number
  /** Why it is in that condition ('' while up). */
  evidence: string
  /** Its concurrency limit; null while none applies. */
  limit: number | null
}

export class OriginPool {
  readonly members: PoolMember[]
  /** Retries the pool's requests may have in flight (proxy-loop's tryAgain asks). */
  readonly budget: RetryBudget
  private readonly pick: Selector
  private timer: NodeJS.Timeout | null = null

  constructor (readonly config: PoolConfig, readonly transport: Transport, health: HealthStore) {
    this.members = config.origins.map(url => new PoolMember(url, config.name, health.take(config.name, url.origin, config.health, config.slowStartMs), transport, config.adaptive))
    this.pick = selector(config.policy)
    this.budget = new RetryBudget(config.retryBudget, this.members.length)
  }

  /** An available origin this request has not tried yet, or null when none is left. */
  select (tried: readonly PoolMember[]): PoolMember | null {
    if (this.members.length === 1) {
      const only = this.members[0] as PoolMember
      return tried.length === 0 && only.health.available() ? only : null
    }
    return this.pick(ramped(this.members.filter(m => !tried.includes(m) && m.health.available()))) ?? null
  }

  /** When every origin is down: a failure of one of them, which the pool-down answer repeats. */
  downFailure (): OriginHealth['lastFailure'] {
    let last: OriginHealth['lastFailure'] = null
    for (const m of this.members) {
      if (m.health.available()) return null
      last ??= m.health.lastFailure
    }
    return last
  }

  /** When no origin is up (each down, or half-open after its rest): a failure of one of them. */
  restingFailure (): OriginHealth['lastFailure'] {
    let last: OriginHealth['lastFailure'] = null
    for (const m of this.members) {
      if (m.health.state() === 'up') return null
      last ??= m.health.lastFailure
    }
    return last
  }

  snapshot (): MemberHealth[] {
    return this.members.map(m => {
      const state = m.health.state()
      const c = m.health.condition
      return {
        pool: this.config.name,
        origin: m.origin,
        state,
        up: state !== 'down',
        inFlight: m.inFlight,
        condition: c.condition,
        since: c.since,
        evidence: c.evidence,
        limit: m.adaptive?.limit ?? null,
        load: memberLoad(this, m)
      }
    })
  }

  /** Periodic GET of the check path on every origin, through the pool's own transport. */
  startChecks (): void {
    const check = this.config.health.check
    if (check === null || this.timer !== null) return
    const run = (): void => { for (const m of this.members) void this.check(m, check) }
    this.timer = setInterval(run, check.intervalMs)
    this.timer.unref()
    run()
  }

  private async check (m: PoolMember, check: NonNullable<PoolConfig['health']['check']>): Promise<void> {
    let phase: 'connect' | 'response' = 'connect'
    try {
      const c = this.transport.idle(m.connections, null) ?? await this.transport.open(m.connections, null)
      phase = 'response'
      let reusable = false
      try {
        const res = await c.client.request({ path: check.path, method: 'GET', headersTimeout: check.timeoutMs, bodyTimeout: check.timeoutMs, headers: { 'user-agent': 'highproxy-health-check' } })
        await res.body.dump()
        reusable = true
        if (res.statusCode === check.expectStatus) m.health.succeeded()
        else m.health.failed(new HealthCheckError(res.statusCode, check.expectStatus), 'response')
      } finally {
        this.transport.release(c, reusable)
      }
    } catch (err) {
      m.health.failed(err, dialErrorIn(err)?.phase ?? phase)
      const dial = dialErrorIn(err)
      if (dial !== null) m.health.condition.dialFailed(dial, dial.timings.connect_ms ?? 0)
    }
  }

  /** Reload or shutdown: no more checks; idle connections close, busy ones after their request. */
  retire (): void {
    if (this.timer !== null) clearInterval(this.timer)
    this.timer = null
    this.transport.retire(this.members.map(m => m.connections))
  }
}
