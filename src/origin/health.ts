// Is this origin up? Passive health from real traffic (consecutive dial failures), and
// an optional active check. A down origin rests for the cool-down, then exactly one
// request tries it (half-open): success brings it back, failure restarts the rest.

import type { HealthConfig } from '../config/schema.js'

export type HealthState = 'up' | 'down' | 'half-open'

export class OriginHealth {
  private consecutive = 0
  private downUntil = 0
  private probing = false
  /** The edge status of the last dial failure: what a request gets when the whole pool is down. */
  lastFailureStatus: number | null = null

  constructor (private readonly config: HealthConfig, private readonly now: () => number = Date.now) {}

  state (): HealthState {
    if (this.downUntil === 0) return 'up'
    return this.now() >= this.downUntil && !this.probing ? 'half-open' : 'down'
  }

  /** Whether a request may go to this origin now. */
  available (): boolean {
    return this.state() !== 'down'
  }

  /** A request is about to go here; in half-open it is the one trial request. */
  acquire (): void {
    if (this.state() === 'half-open') this.probing = true
  }

  /** The origin answered (response headers arrived, or an active check passed). */
  succeeded (): void {
    this.consecutive = 0
    this.downUntil = 0
    this.probing = false
  }

  /** A dial failed (nothing reached the origin), or an active check failed. */
  failed (status: number): void {
    this.lastFailureStatus = status
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
