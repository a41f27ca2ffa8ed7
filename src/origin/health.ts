// Is this origin up? Passive health from real traffic (consecutive dial failures), and
// an optional active check. A down origin rests for the cool-down, then exactly one
// request tries it (half-open): success brings it back, failure restarts the rest.
//
// Health is kept by pool name and origin URL in a HealthStore that outlives a reload:
// SIGHUP rebuilds the pools, and an origin marked down must stay down, not get traffic
// again at once because its pool object is new.

import type { HealthConfig } from '../config/schema.js'
import type { Phase } from '../status/errors.js'
import { OriginCondition, type Transition } from './conditions.js'

export type HealthState = 'up' | 'down' | 'half-open'

export class OriginHealth {
  private consecutive = 0
  private downUntil = 0
  private probing = false
  /** The last failure and its phase: what a request gets when the whole pool is down. */
  lastFailure: { error: unknown, phase: Phase } | null = null

  /** Why it fails, when it does: up, drowning, down or recovering (conditions.ts). */
  readonly condition: OriginCondition

  constructor (private config: HealthConfig, private readonly now: () => number = Date.now,
    slowStartMs = 0, onChange?: (t: Transition) => void) {
    this.condition = new OriginCondition({ slowStartMs, now, onChange })
  }

  /** A reload may change the thresholds; the state is kept. */
  configure (config: HealthConfig, slowStartMs = 0): void {
    this.config = config
    this.condition.configure(slowStartMs)
  }

  state (): HealthState {
    if (this.downUntil === 0) return 'up'
    return this.now() >= this.downUntil && !this.probing ? 'half-open' : 'down'
  }

  /** Whether a request may go to this origin now. */
  available (): boolean {
    return this.downUntil === 0 || this.state() !== 'down'
  }

  /** A request is about to go here; in half-open it is the one trial request. */
  acquire (): void {
    if (this.downUntil !== 0 && this.state() === 'half-open') this.probing = true
  }

  /** The origin answered (response headers arrived, or an active check passed). */
  succeeded (): void {
    this.consecutive = 0
    this.downUntil = 0
    this.probing = false
  }

  /** A dial failed (nothing reached the origin), or an active check failed. */
  failed (error: unknown, phase: Phase): void {
    this.lastFailure = { error, phase }
    this.consecutive++
    if (!this.config.passive) return
    if (this.probing || this.consecutive >= this.config.failures) {
      this.downUntil = this.now() + this.config.cooldownMs
    }
    this.probing = false
  }

  /** A trial request ended without telling us anything (e.g. the client left). */
  released (): void {
    this.probing = false
  }
}

/** Each change of an origin's condition, once, with its pool and origin. */
export type TransitionListener = (pool: string, origin: string, t: Transition) => void

/** Health by pool and origin, across reloads. */
export class HealthStore {
  private readonly entries = new Map<string, OriginHealth>()

  constructor (private readonly onTransition?: TransitionListener) {}

  /** The health of this origin in this pool: the one it had before a reload, if any. */
  take (pool: string, origin: string, config: HealthConfig, slowStartMs = 0): OriginHealth {
    const key = `${pool}\n${origin}`
    let health = this.entries.get(key)
    if (health === undefined) {
      const listener = this.onTransition
      health = new OriginHealth(config, Date.now, slowStartMs, listener === undefined ? undefined : t => listener(pool, origin, t))
      this.entries.set(key, health)
    } else {
      health.configure(config, slowStartMs)
    }
    return health
  }

  /** After a reload: forget origins no pool lists any more. */
  retain (kept: ReadonlySet<OriginHealth>): void {
    for (const [key, health] of this.entries) if (!kept.has(health)) this.entries.delete(key)
  }
}
