// One Toxiproxy-style TCP proxy: a listener, and for each client connection one dial to
// the upstream and two links (client → upstream, upstream → client), any protocol.
//
// A link with no toxic is `source.pipe(dest)`: Node's own stream piping, no code of ours
// per chunk. When a toxic is added the link leaves the pipe for a chain of stages, and
// goes back to the pipe when the last toxic is removed; connections already open follow
// both ways, as Toxiproxy's do.

import net from 'node:net'
import tls from 'node:tls'
import { synDropOrigin } from '../faults.js'
import type { LabOrigin } from '../loopback.js'
import { CLOSE, CONNECTION_TOXICS, END, RESET, Stage, type Direction, type Item, type ToxicRecord } from './toxics.js'

/** Bytes the stages of one link may hold before the source is paused (a bandwidth toxic on a fast sender). */
const HOLD_HIGH = 4 << 20
const HOLD_LOW = 1 << 20

export interface Endpoint { host: string, port: number }

/** A toxic as the proxy holds it: the API's record, and for tls_bad_cert the context to serve. */
export interface LiveToxic {
  record: ToxicRecord
  direction: Direction
  secure?: tls.SecureContext
}

/** Counters for /metrics: bytes read from each link's source and written to its destination. */
export interface ByteCounts { received: Record<Direction, number>, sent: Record<Direction, number> }

class Link {
  stages: Stage[] = []
  private piping = false
  private heldBytes = 0
  private pausedForHold = false
  private awaitingDrain = false
  private ended = false

  constructor (readonly conn: Connection, readonly direction: Direction, readonly source: net.Socket, readonly dest: net.Socket) {}

  start (toxics: readonly LiveToxic[]): void {
    for (const t of toxics) this.stages.push(this.stage(t.record))
    this.wire()
    if (this.stages.length === 0) this.pipe()
    else this.flow()
    for (const s of this.stages) s.start()
  }

  private stage (record: ToxicRecord): Stage {
    return new Stage(record, {
      held: delta => this.hold(delta),
      answerClient: bytes => { this.conn.client.write(bytes) }
    })
  }

  /** Each stage hands on to the next; the last to the destination socket. */
  private wire (): void {
    this.stages.forEach((s, i) => {
      const after = this.stages[i + 1]
      s.next = after === undefined ? this.write : item => after.push(item)
    })
  }

  private pipe (): void {
    if (this.ended) return
    this.source.off('data', this.onData)
    this.source.off('end', this.onEnd)
    this.piping = true
    this.source.pipe(this.dest)
  }

  private flow (): void {
    if (this.piping) {
      this.source.unpipe(this.dest)
      this.piping = false
    }
    if (this.ended) return
    this.source.on('data', this.onData)
    this.source.on('end', this.onEnd)
    this.source.resume()
  }

  private readonly onData = (data: Buffer): void => {
    this.hold(data.length)
    this.enter({ data, ts: performance.now() })
  }

  private readonly onEnd = (): void => {
    this.ended = true
    this.enter(END)
  }

  private enter (item: Item): void {
    const first = this.stages[0]
    if (first === undefined) this.write(item)
    else first.push(item)
  }

  private hold (delta: number): void {
    this.heldBytes += delta
    if (this.heldBytes > HOLD_HIGH && !this.pausedForHold) {
      this.pausedForHold = true
      this.source.pause()
    } else if (this.heldBytes < HOLD_LOW && this.pausedForHold) {
      this.pausedForHold = false
      if (!this.awaitingDrain) this.source.resume()
    }
  }

  /** The end of the chain: the destination socket. */
  private readonly write = (item: Item): void => {
    if (item === END) { this.dest.end(); return }
    if (item === CLOSE) { this.conn.close(false); return }
    if (item === RESET) { this.conn.close(true); return }
    this.hold(-item.data.length)
    if (!this.dest.destroyed && !this.dest.write(item.data) && !this.awaitingDrain) {
      // Backpressure from the destination, as pipe() would do it (stages may still write
      // what they hold meanwhile: one drain listener for them all).
      this.awaitingDrain = true
      this.source.pause()
      this.dest.once('drain', () => {
        this.awaitingDrain = false
        if (!this.pausedForHold) this.source.resume()
      })
    }
  }

  add (toxic: LiveToxic): void {
    const stage = this.stage(toxic.record)
    this.stages.push(stage)
    this.wire()
    if (this.stages.length === 1) this.flow()
    stage.start()
  }

  remove (record: ToxicRecord): void {
    const i = this.stages.findIndex(s => s.toxic === record)
    const stage = this.stages[i]
    if (stage === undefined) return
    // Its held items go on to the stage after it (or the socket) before it leaves the chain.
    stage.remove()
    this.stages.splice(i, 1)
    this.wire()
    if (this.stages.length === 0 && !this.conn.closed) this.pipe()
  }

  update (record: ToxicRecord): void {
    for (const s of this.stages) if (s.toxic === record) s.update()
  }

  stop (): void {
    for (const s of this.stages) s.stop()
  }
}

/** One client connection and its upstream connection. */
export class Connection {
  readonly links: Link[] = []
  closed = false

  constructor (readonly client: net.Socket, readonly upstream: net.Socket, readonly proxy: TcpProxy) {}

  start (toxics: readonly LiveToxic[]): void {
    const up = new Link(this, 'upstream', this.client, this.upstream)
    const down = new Link(this, 'downstream', this.upstream, this.client)
    this.links.push(up, down)
    up.start(toxics.filter(streamToxic('upstream')))
    down.start(toxics.filter(streamToxic('downstream')))
  }

  link (direction: Direction): Link {
    return this.links[direction === 'upstream' ? 0 : 1] as Link
  }

  /** A toxic's close: both sockets after what they were given (or reset, for reset_peer). */
  close (reset: boolean): void {
    if (this.closed) return
    this.closed = true
    for (const l of this.links) l.stop()
    for (const s of [this.client, this.upstream]) {
      if (reset) {
        if (!s.destroyed) s.resetAndDestroy()
      } else {
        endThenDestroy(s)
      }
    }
  }

  destroy (): void {
    this.closed = true
    for (const l of this.links) l.stop()
    this.client.destroy()
    this.upstream.destroy()
  }
}

/** Closes a socket as Go's Close does after its writes: what is buffered goes, then FIN, then no more. */
function endThenDestroy (s: net.Socket): void {
  if (s.destroyed) return
  if (s.writableFinished) { s.destroy(); return }
  s.once('finish', () => s.destroy())
  s.end()
  // A peer that never reads must not keep the socket forever.
  setTimeout(() => s.destroy(), 5000).unref()
}

/** Which toxics run as stages on a link of `direction`: http_status always reads the client's bytes. */
const streamToxic = (direction: Direction) => (t: LiveToxic): boolean =>
  t.record.type === 'http_status' ? direction === 'upstream' : t.direction === direction && !CONNECTION_TOXICS.has(t.record.type)

const drawn = (toxicity: number): boolean => toxicity >= 1 || (toxicity > 0 && Math.random() < toxicity)

/** Host and port of a `host:port` string; `[::1]:80` for IPv6; an empty host is every interface. */
export function splitHostPort (address: string): { host: string, port: string } | null {
  const m = /^(?:\[([^\]]*)\]|([^:]*)):(\d*)$/.exec(address)
  if (m === null) return null
  return { host: m[1] ?? m[2] ?? '', port: m[3] ?? '' }
}

export const joinHostPort = (host: string, port: number): string => `${host.includes(':') ? `[${host}]` : host}:${port}`

export class TcpProxy {
  readonly connections = new Set<Connection>()
  /** Accepted client sockets not yet joined to an upstream (slow_accept, TLS handshake, the dial). */
  private readonly pending = new Set<net.Socket>()
  readonly toxics: LiveToxic[] = []
  private server: net.Server | null = null
  private synDrop: LabOrigin | null = null
  enabled = false
  /** Bytes of connections already closed, for /metrics; open ones are added when read. */
  private readonly closedBytes: ByteCounts = { received: { upstream: 0, downstream: 0 }, sent: { upstream: 0, downstream: 0 } }

  constructor (public name: string, public listen: string, public upstream: string, private bind: Endpoint, private dial: Endpoint) {}

  /** What the listener should be now: none (disabled), a SYN-dropping stand-in (syn_drop), or ours. */
  private async settle (): Promise<void> {
    const wantSynDrop = this.enabled && this.toxics.some(t => t.record.type === 'syn_drop')
    const wantServer = this.enabled && !wantSynDrop
    if (!wantSynDrop && this.synDrop !== null) {
      const s = this.synDrop
      this.synDrop = null
      await s.close()
    }
    if (!wantServer && this.server !== null) {
      const server = this.server
      this.server = null
      // The listening socket closes now; close()'s callback would also wait for every
      // open connection, which syn_drop keeps going.
      server.close()
      await new Promise(resolve => setImmediate(resolve))
    }
    if (wantSynDrop && this.synDrop === null) {
      this.synDrop = await synDropOrigin(this.bind.host === '' ? '::' : this.bind.host, this.bind.port)
      const port = Number(new URL(this.synDrop.url).port)
      this.bind = { host: this.bind.host, port }
      this.listen = joinHostPort(this.bind.host === '' ? '::' : this.bind.host, port)
    }
    if (wantServer && this.server === null) await this.openListener()
  }

  private async openListener (): Promise<void> {
    const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true, noDelay: true }, socket => this.accept(socket))
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen({ host: this.bind.host === '' ? '::' : this.bind.host, port: this.bind.port }, () => {
        server.off('error', reject)
        resolve()
      })
    })
    const address = server.address() as net.AddressInfo
    // Port 0 means "any": from now on this proxy is on the port it got, as Toxiproxy's listen field says.
    this.bind = { host: this.bind.host, port: address.port }
    this.listen = joinHostPort(address.address, address.port)
    server.on('error', () => {})
    this.server = server
  }

  /** Enables (listens) or disables (closes the listener and every connection). */
  async setEnabled (enabled: boolean): Promise<void> {
    this.enabled = enabled
    if (!enabled) this.dropConnections()
    try {
      await this.settle()
    } catch (err) {
      this.enabled = false
      throw err
    }
  }

  dropConnections (): void {
    for (const c of this.connections) { this.countClosed(c); c.destroy() }
    this.connections.clear()
    for (const s of this.pending) s.destroy()
    this.pending.clear()
  }

  /** New addresses (Toxiproxy's Update when listen or upstream differ); the proxy is stopped first. */
  retarget (listen: string, upstream: string, bind: Endpoint, dial: Endpoint): void {
    this.listen = listen
    this.upstream = upstream
    this.bind = bind
    this.dial = dial
  }

  /** Stops everything: listener, stand-in child, connections. */
  async stop (): Promise<void> {
    await this.setEnabled(false)
  }

  private accept (client: net.Socket): void {
    client.on('error', () => {})
    this.pending.add(client)
    client.once('close', () => this.pending.delete(client))
    const slow = this.toxics.find(t => t.record.type === 'slow_accept')
    const delay = slow === undefined || !drawn(slow.record.toxicity) ? 0 : Number(slow.record.attributes.delay ?? 0)
    if (delay > 0) {
      const timer = setTimeout(() => this.serve(client), delay)
      client.once('close', () => clearTimeout(timer))
    } else {
      this.serve(client)
    }
  }

  private serve (raw: net.Socket): void {
    if (raw.destroyed) return
    const bad = this.toxics.find(t => t.record.type === 'tls_bad_cert' && t.secure !== undefined)
    if (bad !== undefined && drawn(bad.record.toxicity)) {
      // This connection gets our TLS with a bad certificate instead of the upstream's: a
      // verifying client fails the handshake for that reason; one that does not verify
      // gets the upstream through us, re-encrypted.
      const secure = new tls.TLSSocket(raw, { isServer: true, secureContext: bad.secure })
      secure.on('error', () => raw.destroy())
      secure.once('secure', () => this.join(raw, secure, true))
      raw.resume()
      return
    }
    this.join(raw, raw, false)
  }

  private join (raw: net.Socket, client: net.Socket, overTls: boolean): void {
    const upstream = overTls
      ? tls.connect({ host: this.dial.host, port: this.dial.port, rejectUnauthorized: false })
      : net.connect({ host: this.dial.host, port: this.dial.port, allowHalfOpen: true, noDelay: true })
    upstream.on('error', () => {})
    this.pending.delete(raw)
    if (raw.destroyed || !this.enabled) { upstream.destroy(); raw.destroy(); return }
    // Linked at once, as a bare pipe is: the client's first bytes wait in the upstream
    // socket's queue while it connects, rather than a turn of ours after the connect.
    const conn = new Connection(client, upstream, this)
    this.connections.add(conn)
    // An end (FIN) travels through the links like the data, so that a toxic can hold it
    // (slow_close). A socket that dies with an error takes the other one with it: an
    // upstream that refuses or cannot be reached closes the client, as Toxiproxy does.
    let open = 2
    const closed = (other: net.Socket) => (hadError: boolean): void => {
      if (hadError) other.destroy()
      if (--open === 0 && this.connections.delete(conn)) {
        this.countClosed(conn)
        for (const l of conn.links) l.stop()
      }
    }
    client.once('close', closed(upstream))
    upstream.once('close', closed(client))
    conn.start(this.toxics)
  }

  /** A toxic joins: stream toxics join every open connection's link; syn_drop moves the listener. */
  async addToxic (toxic: LiveToxic): Promise<void> {
    this.toxics.push(toxic)
    for (const c of this.connections) {
      if (toxic.record.type === 'http_status') c.link('upstream').add(toxic)
      else if (!CONNECTION_TOXICS.has(toxic.record.type)) c.link(toxic.direction).add(toxic)
    }
    if (toxic.record.type === 'syn_drop') await this.settle()
  }

  async removeToxic (toxic: LiveToxic): Promise<void> {
    const i = this.toxics.indexOf(toxic)
    if (i >= 0) this.toxics.splice(i, 1)
    for (const c of [...this.connections]) for (const l of c.links) l.remove(toxic.record)
    if (toxic.record.type === 'syn_drop') await this.settle()
  }

  updateToxic (toxic: LiveToxic): void {
    for (const c of this.connections) for (const l of c.links) l.update(toxic.record)
  }

  private countClosed (c: Connection): void {
    const [up, down] = c.links
    if (up === undefined || down === undefined) return
    this.closedBytes.received.upstream += c.client.bytesRead
    this.closedBytes.sent.upstream += c.upstream.bytesWritten
    this.closedBytes.received.downstream += c.upstream.bytesRead
    this.closedBytes.sent.downstream += c.client.bytesWritten
  }

  /** Bytes so far, closed and open connections together (read from the sockets: nothing counted per chunk). */
  bytes (): ByteCounts {
    const out: ByteCounts = structuredClone(this.closedBytes)
    for (const c of this.connections) {
      out.received.upstream += c.client.bytesRead
      out.sent.upstream += c.upstream.bytesWritten
      out.received.downstream += c.upstream.bytesRead
      out.sent.downstream += c.client.bytesWritten
    }
    return out
  }

  /** Open client connections and listeners, for the leak checks. */
  get openCount (): number {
    return this.connections.size + this.pending.size
  }

  get listening (): boolean {
    return this.server !== null || this.synDrop !== null
  }
}
