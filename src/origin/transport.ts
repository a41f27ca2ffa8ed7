// How an attempt gets a connection to an origin: one Transport per pool, so each pool
// dials with its own options (connect timeout, TLS) even when two pools list the same
// origin, under the pool's connection-reuse policy and its per-origin connection limit.
//
// Reuse policies (HAProxy's `http-reuse`, whose names and meanings they keep):
// - `never` (default): an origin connection carries the requests of one client connection
//   only, and closes with it. An origin that answers twice to one request (a bug, or an
//   attack on it) can only ever confuse the client that sent it.
// - `safe`: a client connection's first request rides a connection no other client used;
//   its later requests prefer its own connections, then any idle one. Once a client
//   leaves, its idle connections serve other clients' later requests.
// - `always`: any idle connection serves any request (nginx's and Envoy's behaviour).
// Bytes from an origin with no request outstanding close that connection under every
// policy (undici parses them as a response to nobody and destroys the socket).
//
// The limit: at most `maxConnections` connections (dialling, open, tunnelled) per origin
// of the pool. At the limit, an idle connection the request may not ride is closed to
// make room; when every connection is busy the request waits (FIFO, at most `maxQueue`
// of them, within the pool's connect timeout) and then gets HPX_ERR_CONNECTION_LIMIT
// (503). A pending dial holds a slot of its own origin only: it never blocks a request
// that could ride an idle connection, or another origin.
//
// Inside that limit, `maxPendingConnects` caps the connects to one origin that have sent
// a SYN and heard nothing back (pending-connects.ts): a dial past it waits for an answer
// instead of adding a SYN to a drowning origin's full accept queue.

import { ConnectionLimitError, withoutStack } from '../status/errors.js'
import { ClientShare } from './client-share.js'
import { OriginConnection, type ConnectionEnd, type ConnectionOptions } from './connection.js'
import { dial, type DialInfo, type DialOptions, type DialTarget } from './dial.js'
import { PendingConnects, type GateOwner } from './pending-connects.js'

export type ReusePolicy = 'never' | 'safe' | 'always'

export interface TransportOptions {
  dial: DialOptions
  connection: ConnectionOptions
  reuse: ReusePolicy
  /** Per origin of the pool. */
  maxConnections: number
  maxQueue: number
  /** In-flight requests one client address may have at one origin (client-share.ts); 0: no share. */
  maxPerClient: number
  /** How long a request may wait for a connection slot: the pool's connect timeout. */
  queueTimeoutMs: number
  /** Connects per origin with a SYN sent and no answer yet; 0: no cap. */
  maxPendingConnects: number
  /** The origin sent bytes with no request outstanding: the connection was closed. */
  onStray: (set: ConnectionSet, info: DialInfo, err: Error | null) => void
}

/**
 * One client connection, as the reuse policy sees it: the origin connections it owns
 * (of every pool). The edge holds one per client connection and releases it when that
 * connection closes.
 */
export class ConnectionOwner {
  readonly owned: OriginConnection[] = []
  /** Whether this client connection has sent a request yet (the "first request" rule of `safe`). */
  started = false
  /** The client connection closed: a dial that finishes later must not hand it a connection. */
  released = false

  /** The client connection closed: what its origin connections become, by their pool's policy. */
  release (): void {
    this.released = true
    for (const c of this.owned.splice(0)) {
      c.owner = null
      if (!c.busy && !c.closed) c.set.transport.unowned(c)
    }
  }
}

/** A request waiting for a connection slot. */
interface Waiter {
  owner: ConnectionOwner | null
  /** Whose dial it will be at the pending-connect cap (dial.ts); null: the connection owner. */
  gate: GateOwner | null
  target: DialTarget
  resolve: (c: OriginConnection) => void
  reject: (err: Error) => void
  timer: NodeJS.Timeout | null
}

/** The connections of one pool to one origin: what the per-origin limit counts. */
export class ConnectionSet {
  /** Dialling and open connections, and tunnels until they close. */
  live = 0
  readonly open = new Set<OriginConnection>()
  /** Idle connections no client connection owns; the most recently used is last. */
  readonly shared: OriginConnection[] = []
  readonly waiting: Waiter[] = []
  /** The pending-connect cap of this origin; null when it is off. */
  readonly connects: PendingConnects | null
  /** Each client's share of this origin; null: no share. */
  readonly share: ClientShare | null

  constructor (readonly key: string, readonly target: DialTarget, readonly transport: Transport) {
    const o = transport.opts
    this.connects = o.maxPendingConnects > 0 ? new PendingConnects(o.maxPendingConnects, o.dial.connectTimeoutMs) : null
    // A share as large as the origin's whole limit changes nothing: no share then.
    this.share = o.maxPerClient > 0 && o.maxPerClient < o.maxConnections ? new ClientShare(o.maxPerClient, o.queueTimeoutMs) : null
  }

  /** Idle connections (for metrics). */
  idle (): number {
    let n = 0
    for (const c of this.open) if (!c.busy) n++
    return n
  }
}

export class Transport {
  private closing = false
  private pumping = false

  constructor (readonly opts: TransportOptions) {}

  /** The connections to one origin of this pool (the pool member keeps it). */
  set (originKey: string, target: DialTarget): ConnectionSet {
    return new ConnectionSet(originKey, target, this)
  }

  /**
   * A request of `client` (its address) is about to take a connection to `set`'s origin: null when
   * it is within its share (counted now, give it back with `leaveShare`); else a promise
   * that resolves once it is counted, or rejects with ClientShareError.
   */
  enterShare (set: ConnectionSet, client: string): Promise<void> | null {
    return set.share === null ? null : set.share.enter(client)
  }

  /** The request that entered the share is over. */
  leaveShare (set: ConnectionSet, client: string): void {
    set.share?.leave(client)
  }

  /** An idle connection this client connection may ride now, or null (then `open`). */
  idle (set: ConnectionSet, owner: ConnectionOwner | null): OriginConnection | null {
    const c = this.usable(set, owner)
    if (c !== null) this.take(c, owner)
    return c
  }

  /** A new connection: dialled now, or when a slot frees; rejects with a DialError or ConnectionLimitError. */
  /**
   * @param gate whose dial it is at the pending-connect cap, when that is narrower than the
   *   client connection (the edge's attempt: one request, which can leave on its own)
   */
  open (set: ConnectionSet, owner: ConnectionOwner | null, gate: GateOwner | null = null): Promise<OriginConnection> {
    if (set.live >= this.opts.maxConnections) this.evictFor(set, owner)
    if (set.live < this.opts.maxConnections) return this.dial(set, owner, gate)
    if (set.waiting.length >= this.opts.maxQueue) {
      return Promise.reject(withoutStack(() => new ConnectionLimitError(this.opts.maxConnections, 'queue full')))
    }
    return new Promise((resolve, reject) => {
      const waiter: Waiter = { owner, gate, target: set.target, resolve, reject, timer: null }
      waiter.timer = setTimeout(() => {
        const i = set.waiting.indexOf(waiter)
        if (i !== -1) set.waiting.splice(i, 1)
        reject(withoutStack(() => new ConnectionLimitError(this.opts.maxConnections, 'queue timeout')))
      }, this.opts.queueTimeoutMs)
      set.waiting.push(waiter)
    })
  }

  /** The attempt is over; a connection that completed its response cleanly is kept for reuse. */
  release (c: OriginConnection, reusable: boolean): void {
    c.busy = false
    if (c.closed) { c.destroy(); return }
    if (!reusable || this.closing) { c.close(); return }
    if (c.owner === null) this.unowned(c)
    else if (c.set.waiting.length > 0) this.pump(c.set)
  }

  /** An idle connection that no client connection owns any more. */
  unowned (c: OriginConnection): void {
    // Under `never` no other client may ride it.
    if (this.opts.reuse === 'never' || this.closing) { c.close(); return }
    c.set.shared.push(c)
    if (c.set.waiting.length > 0) this.pump(c.set)
  }

  /** An upgrade took the socket: it leaves undici but counts until the tunnel closes (call the result then). */
  tunnel (c: OriginConnection): () => void {
    c.tunnelled = true
    c.busy = false
    c.close()
    const set = c.set
    return () => {
      set.live--
      this.pump(set)
    }
  }

  /** Reload or shutdown: idle connections close now, busy ones when their request ends. */
  retire (sets: Iterable<ConnectionSet>): void {
    this.closing = true
    for (const set of sets) for (const c of [...set.open]) if (!c.busy) c.close()
  }

  private usable (set: ConnectionSet, owner: ConnectionOwner | null): OriginConnection | null {
    const policy = this.opts.reuse
    if (owner !== null && policy !== 'always') {
      for (const c of owner.owned) if (c.set === set && !c.busy && !c.closed) return c
      if (policy === 'never' || !owner.started) return null
    }
    for (let c = set.shared.pop(); c !== undefined; c = set.shared.pop()) {
      if (!c.closed && !c.busy && c.owner === null) return c
    }
    return null
  }

  private take (c: OriginConnection, owner: ConnectionOwner | null): void {
    c.busy = true
    // A dial can outlast the client connection it was for (a client that left mid-handshake,
    // a rapid-reset cut): adopted by a released owner, the connection would never be closed.
    if (owner !== null && !owner.released && c.owner === null && this.opts.reuse !== 'always') {
      c.owner = owner
      owner.owned.push(c)
    }
  }

  private async dial (set: ConnectionSet, owner: ConnectionOwner | null, gate: GateOwner | null): Promise<OriginConnection> {
    set.live++
    let dialled
    try {
      dialled = await dial(set.target, this.opts.dial, set.connects, gate ?? owner)
    } catch (err) {
      set.live--
      this.pump(set)
      throw err
    }
    const c = new OriginConnection(set, dialled, this.opts.connection, () => dial(set.target, this.opts.dial, set.connects), this.ended)
    set.open.add(c)
    this.take(c, owner)
    return c
  }

  /** At the limit: close an idle connection this client may not ride, to open one it may. */
  private evictFor (set: ConnectionSet, owner: ConnectionOwner | null): void {
    for (const c of set.open) {
      if (!c.busy && !c.closed && (c.owner !== owner || owner === null)) { c.close(); return }
    }
  }

  private readonly ended = (c: OriginConnection, why: ConnectionEnd, err: Error | null): void => {
    const set = c.set
    set.open.delete(c)
    if (!c.tunnelled) set.live--
    const owner = c.owner
    if (owner !== null) {
      const i = owner.owned.indexOf(c)
      if (i !== -1) owner.owned.splice(i, 1)
      c.owner = null
    }
    if (why === 'stray') this.opts.onStray(set, c.info, err)
    this.pump(set)
  }

  /** Capacity changed: serve waiting requests in order, with idle connections or new dials. */
  private pump (set: ConnectionSet): void {
    if (this.pumping) return
    this.pumping = true
    try {
      while (set.waiting.length > 0) {
        const w = set.waiting[0] as Waiter
        const c = this.usable(set, w.owner)
        if (c === null) {
          if (set.live >= this.opts.maxConnections) this.evictFor(set, w.owner)
          if (set.live >= this.opts.maxConnections) break
        }
        set.waiting.shift()
        if (w.timer !== null) clearTimeout(w.timer)
        if (c !== null) {
          this.take(c, w.owner)
          w.resolve(c)
        } else {
          this.dial(set, w.owner, w.gate).then(w.resolve, w.reject)
        }
      }
    } finally {
      this.pumping = false
    }
  }
}
