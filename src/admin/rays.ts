// The last N failure records, by ray id: what `GET /rays/<id>` answers from.
//
// A fixed ring of slots holds the records in arrival order; the oldest is overwritten
// when the ring is full. Records of one ray are chained through the slots (`next`),
// and the map holds each ray's first and last slot, so add, evict and the map update
// are all O(1), and get() walks only that ray's own records. Memory is bounded by the
// capacity: the map never holds a ray whose records have all left the ring.

import type { FailureRecord } from '../log/log.js'

export const DEFAULT_RAY_BUFFER = 10_000

interface Chain { first: number, last: number }

const NONE = -1

export class RayStore {
  readonly capacity: number
  private readonly slots: Array<FailureRecord | undefined>
  /** Slot of the same ray's next (newer) record, NONE at the end of a chain. */
  private readonly next: Int32Array
  private readonly chains = new Map<string, Chain>()
  /** Where the next record goes; once full, also the oldest record. */
  private head = 0
  private count = 0

  constructor (capacity: number = DEFAULT_RAY_BUFFER) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`ray buffer capacity must be a positive integer, got ${capacity}`)
    this.capacity = capacity
    this.slots = new Array<FailureRecord | undefined>(capacity).fill(undefined)
    this.next = new Int32Array(capacity).fill(NONE)
  }

  /** Records held (at most `capacity`). */
  get size (): number { return this.count }

  /** Distinct ray ids held (at most `size`). */
  get rays (): number { return this.chains.size }

  add (record: FailureRecord): void {
    const slot = this.head
    if (this.count === this.capacity) this.evict(slot)
    else this.count++
    this.slots[slot] = record
    this.next[slot] = NONE
    const chain = this.chains.get(record.ray_id)
    if (chain === undefined) {
      this.chains.set(record.ray_id, { first: slot, last: slot })
    } else {
      this.next[chain.last] = slot
      chain.last = slot
    }
    this.head = slot + 1 === this.capacity ? 0 : slot + 1
  }

  /** Every attempt of that ray still held, oldest first; [] when none. */
  get (rayId: string): FailureRecord[] {
    const chain = this.chains.get(rayId)
    if (chain === undefined) return []
    const out: FailureRecord[] = []
    for (let slot = chain.first; slot !== NONE; slot = this.next[slot] as number) {
      out.push(this.slots[slot] as FailureRecord)
    }
    return out
  }

  /** The oldest record leaves; it is always the first of its ray's chain. */
  private evict (slot: number): void {
    const old = this.slots[slot] as FailureRecord
    const chain = this.chains.get(old.ray_id) as Chain
    const after = this.next[slot] as number
    if (after === NONE) this.chains.delete(old.ray_id)
    else chain.first = after
    this.slots[slot] = undefined
  }
}
