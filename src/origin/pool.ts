// A pool of origins: who is in it, how busy each one is, whether each is up, and which
// one takes the next request. Active health checks run here when configured.

import type { Dispatcher } from 'undici'
import type { PoolConfig } from '../config/schema.js'
import { dialErrorIn } from '../errors.js'
import { classify } from '../errors/classify.js'
import { OriginHealth, type HealthState } from './health.js'
import { selector, type Selector } from './select.js'

export class PoolMember {
  inFlight = 0
  readonly origin: string
  readonly health: OriginHealth

  constructor (readonly url: URL, pool: PoolConfig) {
    this.origin = url.origin
    this.health = new OriginHealth(pool.health)
  }
}

export interface MemberHealth { pool: string, origin: string, state: HealthState, up: boolean, inFlight: number }

export class OriginPool {
  readonly members: PoolMember[]
  private readonly pick: Selector
  private timer: NodeJS.Timeout | null = null

  constructor (readonly config: PoolConfig) {
    this.members = config.origins.map(url => new PoolMember(url, config))
    this.pick = selector(config.policy)
  }

  /** An available origin not tried yet by this request, or null when none is left. */
  select (tried: ReadonlySet<PoolMember>): PoolMember | null {
    const candidates = this.members.filter(m => !tried.has(m) && m.health.available())
    return this.pick(candidates) ?? null
  }

  /** When every origin is down: the status of the most recent failure, answered at once. */
  downStatus (): number | null {
    for (const m of this.members) if (m.health.available()) return null
    return this.members.map(m => m.health.lastFailureStatus).find(s => s !== null) ?? null
  }

  snapshot (): MemberHealth[] {
    return this.members.map(m => {
      const state = m.health.state()
      return { pool: this.config.name, origin: m.origin, state, up: state !== 'down', inFlight: m.inFlight }
    })
  }

  /** Periodic GET of the check path on every origin, through the proxy's own agent. */
  startChecks (dispatcher: Dispatcher): void {
    const check = this.config.health.check
    if (check === null || this.timer !== null) return
    const run = (): void => {
      for (const m of this.members) {
        dispatcher.request({ origin: m.origin, path: check.path, method: 'GET', headersTimeout: check.timeoutMs, bodyTimeout: check.timeoutMs })
          .then(async res => {
            await res.body.dump()
            if (res.statusCode === check.expectStatus) m.health.succeeded()
            else m.health.failed(502)
          }, (err: Error) => m.health.failed(classify(err, dialErrorIn(err)?.phase ?? 'response').status))
      }
    }
    this.timer = setInterval(run, check.intervalMs)
    this.timer.unref()
    run()
  }

  stopChecks (): void {
    if (this.timer !== null) clearInterval(this.timer)
    this.timer = null
  }
}
