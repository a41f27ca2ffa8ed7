// Waiters in arrival order, each with its own deadline, on one timer. A gate whose waiters
// all get the same timeout (the pending-connect cap's connect timeout, adaptive
// concurrency's queue_timeout) has its deadlines in arrival order too, so one timer armed
// for the head serves the whole queue: a storm of a thousand waiters is one timer, not a
// thousand. The gate keeps its own rules for who leaves when a slot frees; this holds the
// order and the timer, and hands the waiters whose deadline has come to `expired`.

export interface Deadlined {
  /** When the waiter gives up, on the queue's clock (ms). */
  readonly deadline: number
}

export class DeadlineQueue<W extends Deadlined> {
  /** The waiters, oldest first. A gate may take from anywhere, then calls `arm()`. */
  readonly items: W[] = []
  private timer: NodeJS.Timeout | null = null
  private armedFor: W | null = null

  constructor (private readonly now: () => number, private readonly expired: (done: W[], now: number) => void) {}

  /** Sets the timer for the head's deadline, unless it is already set for that head. */
  arm (): void {
    const head = this.items[0]
    if (head === this.armedFor) return
    if (this.timer !== null) clearTimeout(this.timer)
    this.timer = null
    this.armedFor = head ?? null
    if (head === undefined) return
    this.timer = setTimeout(fire, Math.max(0, Math.ceil(head.deadline - this.now())), this)
  }

  /** Waiters whose deadline has come leave, oldest first; the rest wait on. */
  expire (): void {
    this.timer = null
    this.armedFor = null
    const now = this.now()
    let n = 0
    while (n < this.items.length && (this.items[n] as W).deadline <= now) n++
    this.expired(this.items.splice(0, n), now)
    this.arm()
  }
}

function fire (queue: { expire: () => void }): void {
  queue.expire()
}
