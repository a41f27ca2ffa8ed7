// The pending-connect cap (`connections.max_pending_connects`): at most that many connects
// to one origin of a pool may have sent their SYN and got no answer yet. A drowning origin
// drops SYNs because its accept queue is full; every extra SYN (and its retransmits at 1 s
// and 3 s) lands on that same full queue. So a dial past the cap does not send one: it
// waits here, in arrival order, for a connect ahead of it to be answered.
//
// Each waiter keeps its own deadline, the moment its dial started plus the connect
// timeout: exactly when today's 522 would have come. If no slot it can use frees by then,
// it fails at that deadline with a connect timeout that says how many unanswered connects
// it waited behind, and no SYN sent. Never earlier (the timer is checked against
// performance.now(), as the dialer's own is), and never later than a dial of its own.
//
// When a slot frees:
// - after an answer (a SYN-ACK, or a refusal: the origin's host is talking again), the
//   next waiter dials at once, whatever time it has left. When the origin is back each
//   connect is answered in a round trip, so the queue drains as fast as the origin answers;
// - after a connect timed out (the SYN was dropped), only a waiter with at least
//   `minDialMs` left dials (one SYN retransmit's worth: Linux resends after 1 s). A waiter
//   with less would put one more SYN on a queue that just dropped one, with no time for
//   the retransmit that might get through; it keeps waiting for an answer, or its deadline.
//   A burst that arrives together therefore sends at most `cap` SYNs in all.
//
// It only ever grants a permission to dial: the connection a waiter then gets is its own
// dial's, so it holds under `reuse: never` and no response can reach another client. A
// waiter whose client left never sends its SYN: an owner that can say so at once (the
// edge's attempt: its client connection closed, or its HTTP/2 stream was reset) is given
// `leave`, and calling it takes the waiter out of the queue there and then; any other
// owner is checked for `released` when a slot would reach it.
//
// One timer serves the whole queue. Every waiter of a gate has the same connect timeout
// and they queue in arrival order, so their deadlines are in order too: the timer is armed
// for the head only. A 522 storm of a thousand requests is a thousand array entries and
// one timer, not a thousand sockets and timers.

import { performance } from 'node:perf_hooks'
import { DeadlineQueue } from './deadline-queue.js'
import { inTurn } from './turns.js'

/** A dial that waited behind unanswered connects until its own deadline; the dialer types it (522). */
export class GateTimeout {
  constructor (readonly waitedBehind: number, readonly waitedMs: number) {}
}

/** A waiting dial whose client connection closed: it leaves the queue without a SYN (the dialer types it: 499). */
export class GateLeft {}

/**
 * Whose dial it is: `released` once its client left. While the dial waits at the cap, the
 * gate sets `leave` on an owner that has the field (one owner per dial: the connection
 * owner an HTTP/2 session's streams share must not have it); calling it drops the waiter
 * at once. The gate sets it back to null when the waiter leaves the queue any other way.
 */
export interface GateOwner {
  readonly released: boolean
  leave?: (() => void) | null
}

interface Waiter {
  /** performance.now() when its connect timeout runs out. */
  deadline: number
  arrived: number
  /** Unanswered connects ahead of it when it arrived. */
  behind: number
  /** Its client connection; null when none (a health check). */
  owner: GateOwner | null
  resolve: (leftMs: number) => void
  reject: (err: GateTimeout | GateLeft) => void
}

/** What /origins and the metrics show of one gate. */
export interface PendingConnectsView {
  /** Connects that sent a SYN and have no answer yet. */
  pending: number
  /** Dials waiting for one of them to be answered. */
  waiting: number
  cap: number
}

export class PendingConnects {
  /** Connects in their TCP phase: SYN sent, nothing heard back. */
  pending = 0
  /** Dials waiting for a slot; each fails at its own deadline with a connect timeout. */
  private readonly queue = new DeadlineQueue<Waiter>(() => performance.now(), (done, now) => {
    // What each failure sets off waits its turn, as the dialer's own 522s do (turns.ts).
    for (const w of done) {
      this.unhook(w)
      inTurn(() => w.reject(new GateTimeout(w.behind, now - w.arrived)))
    }
  })
  /** Waiters whose owner has no `leave`: only a walk of the queue sees their client gone. */
  private polled = 0
  /** Whether the last connect that ended was answered (SYN-ACK or refusal) rather than timed out. */
  private answered = true
  readonly minDialMs: number

  constructor (readonly cap: number, readonly connectTimeoutMs: number) {
    this.minDialMs = Math.min(1000, connectTimeoutMs / 2)
  }

  /**
   * A dial wants to send its SYN; `start` is when its connect timeout started
   * (performance.now()). Returns the milliseconds of connect timeout it has left, at once
   * when a slot is free, or later; rejects with a GateTimeout at its deadline.
   */
  enter (start: number, owner: GateOwner | null = null): number | Promise<number> {
    if (this.queue.items.length === 0 && this.pending < this.cap) {
      this.pending++
      return this.connectTimeoutMs - (performance.now() - start)
    }
    return new Promise((resolve, reject) => {
      const w: Waiter = { deadline: start + this.connectTimeoutMs, arrived: start, behind: this.pending, owner, resolve, reject }
      this.queue.items.push(w)
      if (owner !== null && owner.leave !== undefined) owner.leave = () => { this.drop(w) }
      else if (owner !== null) this.polled++
      this.pump()
      this.queue.arm()
    })
  }

  /** The waiter's client left: out of the queue now, without a SYN (its dial ends as GateLeft). */
  private drop (w: Waiter): void {
    const i = this.queue.items.indexOf(w)
    if (i === -1) return
    this.queue.items.splice(i, 1)
    this.unhook(w)
    inTurn(() => w.reject(new GateLeft()))
    this.queue.arm()
  }

  /** A connect ended: `answered` when the origin's host answered it (connected or refused), false when it timed out. */
  leave (answered: boolean): void {
    this.pending--
    this.answered = answered
    if (this.queue.items.length > 0) {
      this.pump()
      this.queue.arm()
    }
  }

  view (): PendingConnectsView {
    return { pending: this.pending, waiting: this.queue.items.length, cap: this.cap }
  }

  /** The waiter left the queue: its owner's `leave` no longer applies. */
  private unhook (w: Waiter): void {
    if (w.owner === null) return
    if (w.owner.leave === undefined) this.polled--
    else w.owner.leave = null
  }

  /** Free slots go to waiters in arrival order: after a timeout, only to those with time for a real try. */
  private pump (): void {
    const now = performance.now()
    // Deadlines are in arrival order, so the newest waiter has the most time left: when
    // even it has too little for a real try after a timeout, nobody is let through, and a
    // storm's last connects timing out do not each walk the thousand waiters behind them
    // (unless a waiter whose client may have left can only be seen leaving here).
    const newest = this.queue.items[this.queue.items.length - 1]
    if (!this.answered && this.polled === 0 && newest !== undefined && newest.deadline - now < this.minDialMs) return
    let i = 0
    while (this.pending < this.cap && i < this.queue.items.length) {
      const w = this.queue.items[i] as Waiter
      // Its client left while it waited: it goes without a SYN, and the slot to the next.
      if (w.owner?.released === true) {
        this.queue.items.splice(i, 1)
        this.unhook(w)
        inTurn(() => w.reject(new GateLeft()))
        continue
      }
      const left = w.deadline - now
      if (left <= 0 || (!this.answered && left < this.minDialMs)) { i++; continue }
      this.queue.items.splice(i, 1)
      this.unhook(w)
      this.pending++
      w.resolve(left)
    }
  }
}
