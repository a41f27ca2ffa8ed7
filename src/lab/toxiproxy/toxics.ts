// The toxics: Toxiproxy's seven, with its attribute names and semantics (toxics/*.go in
// Shopify/toxiproxy 2.x), and highproxy's own four, which act on the listener or the
// connection rather than on a stream of bytes.
//
// A stream toxic runs as a Stage: one per toxic, per connection and direction, in the
// order the toxics were added. Each stage takes items in order (a chunk of bytes, the
// source's end, or a close the toxic above it decided) and hands them on to the next.
// Stages wait with their own timers, so a latency stage holds a chunk while the stage
// after it still sends the one before: a pipeline, as Toxiproxy's goroutines are.

import { randomInt } from 'node:crypto'
import http from 'node:http'

/** A toxic as the API shows it (field order as Toxiproxy's JSON: attributes first). */
export interface ToxicRecord {
  attributes: Record<string, number | string>
  name: string
  type: string
  stream: string
  toxicity: number
}

export type Direction = 'upstream' | 'downstream'

/** The source ended (FIN): passed on as a half-close. */
export const END: unique symbol = Symbol('end')
/** A toxic closes the connection (Toxiproxy's stub.Close): both sockets are closed after what was sent. */
export const CLOSE: unique symbol = Symbol('close')
/** reset_peer: both sockets are reset (RST), what was not sent is dropped. */
export const RESET: unique symbol = Symbol('reset')
export type Signal = typeof END | typeof CLOSE | typeof RESET
export interface Chunk { data: Buffer, ts: number }
export type Item = Chunk | Signal

const isChunk = (item: Item): item is Chunk => typeof item === 'object'

/** What a stage needs from the link it sits in. */
export interface StageHost {
  /** Bytes held by the stages of this link changed by `delta` (a stage dropped some: negative). */
  held: (delta: number) => void
  /** http_status writes its answer to the client directly. */
  answerClient: (bytes: string) => void
}

type Handler = (stage: Stage, item: Item) => Promise<void> | void

/** One toxic on one link. */
export class Stage {
  private readonly queue: Item[] = []
  private busy = false
  /** The item being worked on; a handler that sent part of it leaves the rest here. */
  current: Item | undefined
  private wake: (() => void) | null = null
  private timer: NodeJS.Timeout | undefined
  removed = false
  /** After it sent a close, a stage takes nothing more (the stream is over). */
  done = false
  /** Drawn against toxicity when the stage is made, again when the toxic is updated (as Toxiproxy reruns it). */
  active: boolean
  /** Per-stage state: bytes sent (limit_data), when bandwidth's next piece is due, a request head (http_status). */
  state: { sent: number, due: number, head: string } = { sent: 0, due: 0, head: '' }
  next: (item: Item) => void = () => {}

  constructor (readonly toxic: ToxicRecord, readonly host: StageHost) {
    this.active = draw(toxic.toxicity)
  }

  private closeTimer: NodeJS.Timeout | undefined

  /**
   * Starts what runs without data: timeout's clock, which Toxiproxy starts when the toxic
   * starts on the link, whether bytes come or not.
   */
  start (): void {
    clearTimeout(this.closeTimer)
    const ms = num(this, 'timeout')
    if (this.toxic.type === 'timeout' && this.active && ms > 0) {
      this.closeTimer = setTimeout(() => { if (!this.removed && !this.done) this.emit(CLOSE) }, ms)
    }
  }

  /** The link is gone: no timer of ours may keep anything alive. */
  stop (): void {
    clearTimeout(this.closeTimer)
    this.wake?.()
    this.removed = true
  }

  push (item: Item): void {
    if (this.done) { this.release(item); return }
    this.queue.push(item)
    if (!this.busy) void this.run()
  }

  /** Hands an item on (`current` done). */
  emit (item: Item): void {
    if (item === CLOSE || item === RESET) this.done = true
    this.next(item)
  }

  /** Drops an item that will never be sent. */
  release (item: Item): void {
    if (isChunk(item)) this.host.held(-item.data.length)
  }

  /** Waits `ms`; false if the toxic was removed meanwhile (its items were handed on already). */
  wait (ms: number): Promise<boolean> {
    if (this.removed) return Promise.resolve(false)
    return new Promise(resolve => {
      this.wake = () => { this.wake = null; clearTimeout(this.timer); resolve(false) }
      this.timer = setTimeout(() => { this.wake = null; resolve(!this.removed) }, Math.max(0, ms))
    })
  }

  private async run (): Promise<void> {
    this.busy = true
    const handler = HANDLERS[this.toxic.type] ?? pass
    while (this.queue.length > 0 && !this.removed && !this.done) {
      const item = this.queue.shift() as Item
      this.current = item
      if (this.active) await handler(this, item)
      else this.emit(item)
      if (!this.removed) this.current = undefined
    }
    if (this.done) for (const item of this.queue.splice(0)) this.release(item)
    this.busy = false
  }

  /**
   * The toxic is taken off this link: what it holds goes on at once, in order, to the
   * next stage (Toxiproxy: "don't drop any data on the floor"). Returns true when the
   * toxic's own clean-up closes the connection instead (timeout, as Toxiproxy's Cleanup).
   */
  remove (): boolean {
    this.removed = true
    clearTimeout(this.closeTimer)
    this.wake?.()
    const held: Item[] = this.current === undefined ? [] : [this.current]
    held.push(...this.queue.splice(0))
    this.current = undefined
    if (this.toxic.type === 'timeout' && this.active && !this.done) {
      for (const item of held) this.release(item)
      this.done = true
      this.next(CLOSE)
      return true
    }
    if (this.done) { for (const item of held) this.release(item); return false }
    for (const item of held) this.emit(item)
    return false
  }

  /** New attributes or toxicity: the running wait ends and the toxic is drawn again. */
  update (): void {
    this.active = draw(this.toxic.toxicity)
    this.start()
    if (this.wake !== null) {
      // Put the held item back at the front and start over with the new attributes.
      const item = this.current
      this.wake()
      if (item !== undefined) this.queue.unshift(item)
    }
  }
}

const draw = (toxicity: number): boolean => toxicity >= 1 || (toxicity > 0 && Math.random() < toxicity)

const num = (stage: Stage, key: string): number => Number(stage.toxic.attributes[key] ?? 0)

const pass: Handler = (stage, item) => stage.emit(item)

/** Whole-millisecond wait until `ms` after the chunk arrived (Toxiproxy subtracts time already spent). */
const latency: Handler = async (stage, item) => {
  if (!isChunk(item)) { stage.emit(item); return }
  const jitter = num(stage, 'jitter')
  const delay = num(stage, 'latency') + (jitter > 0 ? randomInt(0, jitter * 2) - jitter : 0)
  const sleep = delay - (performance.now() - item.ts)
  if (sleep > 0 && !await stage.wait(sleep)) return
  // The next toxic counts its own delay from here, as Toxiproxy moves the timestamp on.
  stage.emit({ data: item.data, ts: item.ts + Math.max(0, sleep) })
}

/**
 * `rate` in KB/s (1 KB = 1000 bytes, as Toxiproxy); a chunk larger than 100 ms of it goes
 * on in 100 ms pieces, as Toxiproxy's does. Each piece is due at a time on one clock that
 * starts when the chunk arrives on an idle link: a timer that fires late makes the next
 * wait shorter, so a loaded machine's lateness does not add up over a long transfer.
 */
const bandwidth: Handler = async (stage, item) => {
  if (!isChunk(item)) { stage.emit(item); return }
  const rate = num(stage, 'rate')
  if (rate <= 0) { stage.emit(item); return }
  if (stage.state.due < item.ts) stage.state.due = item.ts
  const piece = rate * 100
  let data = item.data
  while (data.length > 0) {
    const size = Math.min(piece, data.length)
    stage.state.due += size / rate
    if (!await stage.wait(stage.state.due - performance.now())) return
    stage.emit({ data: data.subarray(0, size), ts: item.ts })
    data = data.subarray(size)
    stage.current = { data, ts: item.ts }
  }
}

/** Holds the end of the stream for `delay` ms. */
const slowClose: Handler = async (stage, item) => {
  if (item === END || item === CLOSE) {
    if (!await stage.wait(num(stage, 'delay'))) return
  }
  stage.emit(item)
}

/** Drops every byte; the stage's timer (see Stage.start) closes the connection after `timeout` ms (0: never). */
const timeout: Handler = (stage, item) => {
  stage.release(item)
  if (!isChunk(item)) stage.emit(item === END ? CLOSE : item)
}

/** On the first item, waits `timeout` ms, then resets the connection. */
const resetPeer: Handler = async (stage, item) => {
  // The item is spent (Toxiproxy drops it too): removal during the wait has nothing of it to hand on.
  stage.release(item)
  stage.current = undefined
  if (!await stage.wait(num(stage, 'timeout'))) return
  stage.emit(RESET)
}

/** Slice offsets as Toxiproxy's SlicerToxic.chunk: halves, moved by up to ±size_variation. */
function slices (start: number, end: number, average: number, variation: number): number[] {
  if ((end - start) - average <= variation) return [start, end]
  let mid = start + Math.floor((end - start) / 2)
  if (variation > 0) mid += randomInt(0, variation * 2) - variation
  return [...slices(start, mid, average, variation), ...slices(mid, end, average, variation)]
}

const slicer: Handler = async (stage, item) => {
  if (!isChunk(item)) { stage.emit(item); return }
  const offsets = slices(0, item.data.length, Math.max(1, num(stage, 'average_size')), num(stage, 'size_variation'))
  const delayMs = num(stage, 'delay') / 1000
  for (let i = 1; i < offsets.length; i += 2) {
    const from = offsets[i - 1] as number
    const to = offsets[i] as number
    stage.current = { data: item.data.subarray(to), ts: item.ts }
    stage.emit({ data: item.data.subarray(from, to), ts: item.ts })
    if (i + 2 < offsets.length && !await stage.wait(delayMs)) return
  }
}

/** Passes `bytes` bytes, then closes the connection. */
const limitData: Handler = (stage, item) => {
  if (!isChunk(item)) { stage.emit(item); return }
  const left = num(stage, 'bytes') - stage.state.sent
  if (left >= item.data.length) {
    stage.state.sent += item.data.length
    stage.emit(item)
  } else {
    stage.host.held(-(item.data.length - Math.max(0, left)))
    if (left > 0) {
      stage.emit({ data: item.data.subarray(0, left), ts: item.ts })
      stage.state.sent += left
    }
  }
  if (num(stage, 'bytes') - stage.state.sent <= 0) stage.emit(CLOSE)
}

/** http_status: reads the request head, answers the status itself, closes; nothing reaches the upstream. */
const httpStatus: Handler = (stage, item) => {
  if (!isChunk(item)) { stage.emit(item === END ? CLOSE : item); return }
  stage.release(item)
  stage.state.head += item.data.toString('latin1')
  if (stage.state.head.includes('\r\n\r\n') || stage.state.head.length > 65536) {
    const status = num(stage, 'status')
    const body = `${status} ${http.STATUS_CODES[status] ?? ''}: answered by the http_status toxic\n`
    stage.host.answerClient(`HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? 'Status'}\r\ncontent-type: text/plain\r\n` +
      `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`)
    stage.emit(CLOSE)
  }
}

const HANDLERS: Record<string, Handler> = {
  latency,
  bandwidth,
  slow_close: slowClose,
  timeout,
  reset_peer: resetPeer,
  slicer,
  limit_data: limitData,
  http_status: httpStatus
}

// ---------------------------------------------------------------------------------
// The catalogue: attributes each type takes, with Toxiproxy's zero defaults.

type Attr = { kind: 'int', min?: number, max?: number } | { kind: 'enum', values: readonly string[] }

export const TLS_REASONS = ['self_signed', 'expired', 'wrong_name'] as const

export const TOXIC_TYPES: Readonly<Record<string, Readonly<Record<string, Attr>>>> = {
  latency: { latency: { kind: 'int' }, jitter: { kind: 'int' } },
  bandwidth: { rate: { kind: 'int' } },
  slow_close: { delay: { kind: 'int' } },
  timeout: { timeout: { kind: 'int' } },
  reset_peer: { timeout: { kind: 'int' } },
  slicer: { average_size: { kind: 'int' }, size_variation: { kind: 'int' }, delay: { kind: 'int' } },
  limit_data: { bytes: { kind: 'int' } },
  // highproxy's own
  syn_drop: {},
  slow_accept: { delay: { kind: 'int' } },
  http_status: { status: { kind: 'int', min: 200, max: 599 } },
  tls_bad_cert: { reason: { kind: 'enum', values: TLS_REASONS } }
}

/** Toxics that act on the listener or on a new connection, not on a stream of bytes. */
export const CONNECTION_TOXICS = new Set(['syn_drop', 'slow_accept', 'tls_bad_cert'])

const DEFAULTS: Readonly<Record<string, Record<string, number | string>>> = {
  http_status: { status: 503 },
  tls_bad_cert: { reason: 'self_signed' }
}

export function defaultAttributes (type: string): Record<string, number | string> {
  const spec = TOXIC_TYPES[type] ?? {}
  return Object.fromEntries(Object.keys(spec).map(k => [k, DEFAULTS[type]?.[k] ?? 0]))
}

/**
 * Checks `given` attributes for `type` and merges them into `into`. Unknown attributes are
 * ignored, as Go's decoder does. Returns a problem in words, or null.
 */
export function mergeAttributes (type: string, into: Record<string, number | string>, given: unknown): string | null {
  if (given === undefined || given === null) return null
  if (typeof given !== 'object' || Array.isArray(given)) return 'attributes must be an object'
  const spec = TOXIC_TYPES[type] ?? {}
  const next: Record<string, number | string> = {}
  for (const [key, value] of Object.entries(given as Record<string, unknown>)) {
    const attr = spec[key]
    if (attr === undefined) continue
    if (attr.kind === 'int') {
      if (typeof value !== 'number' || !Number.isInteger(value)) return `attribute ${key} must be an integer`
      const min = attr.min ?? 0
      if (value < min) return `attribute ${key} must be ${min === 0 ? 'zero or more' : `at least ${min}`}`
      if (attr.max !== undefined && value > attr.max) return `attribute ${key} must be at most ${attr.max}`
      next[key] = value
    } else {
      if (typeof value !== 'string' || !attr.values.includes(value)) return `attribute ${key} must be one of ${attr.values.join(', ')}`
      next[key] = value
    }
  }
  if (type === 'slicer') {
    const merged = { ...into, ...next }
    if (Number(merged.size_variation) > 0 && Number(merged.size_variation) >= Number(merged.average_size)) {
      return 'attribute size_variation must be smaller than average_size'
    }
  }
  Object.assign(into, next)
  return null
}
