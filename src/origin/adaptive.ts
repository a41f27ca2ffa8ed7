// Adaptive concurrency (`pools[].adaptive_concurrency`): learn how many requests an origin
// serves well at once from its latency, keep at most that many in flight, let a few more
// wait a short time, and shed the rest with 503.
//
// The model is Envoy's adaptive concurrency filter (its gradient controller), which is
// Netflix concurrency-limits' Gradient without the smoothing:
// - the minimum RTT is measured while the limit is held low (`min_rtt_concurrency`), over
//   `min_rtt_samples` requests, at the start and again every `min_rtt_interval`: that is the
//   latency of the origin when nothing queues inside it. The 10th percentile of those
//   samples, so one cached or empty answer does not set it;
// - every `sample_interval`, the median latency of the requests that ended in it gives
//   gradient = minRTT × (1 + buffer) / sample, held to [0.5, 2]; the new limit is
//   limit × gradient plus its square root as headroom (to find out whether more fits),
//   within [min_limit, max_limit].
// An origin that serves one request at a time for 25 ms settles at 2 to 3: each extra
// request in flight only waits inside it, so the median grows with the limit and pulls it
// back. An origin with spare capacity keeps latency flat and the limit climbs.
//
// Written here rather than taken from npm: the registry has no package that learns a
// limit from latency (only fixed-limit promise queues, p-limit and the like); what is needed is
// a few dozen lines of arithmetic around the queue the edge must own anyway (its own
// deadlines, its own 503), and no timers of its own: the limit is recomputed when a
// request ends, and one timer serves the whole queue (every waiter has the same
// queue_timeout, so their deadlines are in arrival order).

import { performance } from 'node:perf_hooks'
import type { AdaptiveConfig } from '../config/schema.js'
import { OverloadedError, withoutStack } from '../status/errors.js'
import { DeadlineQueue } from './deadline-queue.js'
import { inTurn } from './turns.js'

interface Waiter {
  deadline: number
  arrived: number
  resolve: () => void
  reject: (err: Error) => void
  /** The promise acquire() handed out for it (what cancel() is given). */
  of: Promise<void>
}

/** What /origins and the metrics show of one origin's limiter. */
export interface AdaptiveView {
  limit: number
  inFlight: number
  queued: number
  shed: number
  minRttMs: number | null
  measuring: boolean
}

const percentile = (xs: number[], p: number): number => {
  const s = xs.slice().sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor(s.length * p / 100))] as number
}

export class AdaptiveLimit {
  /** The learned limit (while the minimum RTT is measured, `min_rtt_concurrency` applies instead). */
  limit: number
  inFlight = 0
  /** Requests answered 503 since start. */
  shed = 0
  minRttMs: number | null = null
  private measuring = true
  /** Requests admitted before this moment do not count toward the minimum RTT (they ran at the old limit). */
  private measureFrom: number
  private nextMeasure = 0
  private readonly rtts: number[] = []
  private windowStart: number
  /** Requests waiting for a slot; each is shed at its queue_timeout. */
  private readonly queue: DeadlineQueue<Waiter>

  constructor (readonly config: AdaptiveConfig, private readonly now: () => number = () => performance.now()) {
    this.limit = config.initialLimit
    this.measureFrom = now()
    this.windowStart = this.measureFrom
    this.queue = new DeadlineQueue<Waiter>(now, (done, at) => {
      const limit = this.current()
      for (const w of done) {
        this.shed++
        const err = withoutStack(() => new OverloadedError(limit, at - w.arrived, 'queue timeout'))
        inTurn(() => w.reject(err))
      }
    })
  }

  /** The limit in force now. */
  current (): number {
    return this.measuring ? Math.min(this.limit, this.config.minRttConcurrency) : this.limit
  }

  /**
   * A request wants to go to the origin: true when it may at once, else a promise that
   * resolves when a slot frees and rejects with OverloadedError at queue_timeout (or at
   * once when the queue is full).
   */
  acquire (): true | Promise<void> {
    if (this.queue.items.length === 0 && this.inFlight < this.current()) {
      this.inFlight++
      return true
    }
    if (this.queue.items.length >= this.config.maxQueue) {
      this.shed++
      return Promise.reject(withoutStack(() => new OverloadedError(this.current(), 0, 'queue full')))
    }
    let resolve!: () => void
    let reject!: (err: Error) => void
    const waiting = new Promise<void>((res, rej) => { resolve = res; reject = rej })
    const arrived = this.now()
    this.queue.items.push({ deadline: arrived + this.config.queueTimeoutMs, arrived, resolve, reject, of: waiting })
    this.queue.arm()
    return waiting
  }

  /**
   * The request that `acquire` queued is gone (its client left): it leaves the queue
   * without a slot and without a 503. False when it was no longer queued.
   */
  cancel (waiting: Promise<void>): boolean {
    const i = this.queue.items.findIndex(w => w.of === waiting)
    if (i === -1) return false
    this.queue.items.splice(i, 1)
    if (i === 0) this.queue.arm()
    return true
  }

  /**
   * An admitted request is over. `admittedAt` is when it was let through (this clock);
   * `rttMs` how long the origin took to answer it, or null when it says nothing about the
   * origin (the client left, a bad request).
   */
  release (admittedAt: number, rttMs: number | null): void {
    this.inFlight--
    if (rttMs !== null) this.sample(admittedAt, rttMs)
    this.pump()
  }

  view (): AdaptiveView {
    return { limit: this.current(), inFlight: this.inFlight, queued: this.queue.items.length, shed: this.shed, minRttMs: this.minRttMs, measuring: this.measuring }
  }

  private sample (admittedAt: number, rttMs: number): void {
    const now = this.now()
    if (this.measuring) {
      if (admittedAt < this.measureFrom) return
      this.rtts.push(rttMs)
      if (this.rtts.length < this.config.minRttSamples) return
      this.minRttMs = percentile(this.rtts, 10)
      this.rtts.length = 0
      this.measuring = false
      this.nextMeasure = now + this.config.minRttIntervalMs
      this.windowStart = now
      return
    }
    this.rtts.push(rttMs)
    if (now - this.windowStart < this.config.sampleIntervalMs) return
    this.update(percentile(this.rtts, 50))
    this.rtts.length = 0
    this.windowStart = now
    if (now >= this.nextMeasure) {
      // Measure the minimum RTT again: it drifts (a deploy, a warmer cache, a busier database).
      this.measuring = true
      this.measureFrom = now
    }
  }

  /** Envoy's gradient step. */
  private update (sampleMs: number): void {
    const c = this.config
    const minRtt = this.minRttMs as number
    const gradient = Math.min(2, Math.max(0.5, (minRtt * (1 + c.buffer)) / Math.max(sampleMs, 0.001)))
    const scaled = this.limit * gradient
    this.limit = Math.min(c.maxLimit, Math.max(c.minLimit, Math.round(scaled + Math.sqrt(scaled))))
  }

  /** Free slots go to waiters in arrival order. */
  private pump (): void {
    let changed = false
    while (this.queue.items.length > 0 && this.inFlight < this.current()) {
      const w = this.queue.items.shift() as Waiter
      this.inFlight++
      changed = true
      w.resolve()
    }
    if (changed) this.queue.arm()
  }
}
