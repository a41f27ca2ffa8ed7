// How we reach an origin, and how long each phase took: DNS → TCP → TLS.
//
// We own this instead of undici's stock connector for three reasons, each a way the
// edge statuses would otherwise lie:
// - undici runs one timer over TCP+TLS on its coarse internal clock (~0.5 s late); the
//   connect timeout here covers the TCP handshake only, on a precise timer, so a 522
//   lands at the configured time and a stalled TLS handshake is a 525, not a 522;
// - Node's happy-eyeballs dialling gives every address 250 ms and then gives up on it,
//   so a slow-but-alive origin with two addresses "times out" after 500 ms. Here a
//   late address only *starts* the next attempt (RFC 8305); earlier attempts keep
//   running until one connects or the connect timeout is spent;
// - certificate checks stay on, and a certificate failure is told apart from a
//   handshake failure where it happens (526 vs 525).

import dns from 'node:dns'
import net from 'node:net'
import tls from 'node:tls'
import { performance } from 'node:perf_hooks'
import {
  withoutStack,
  ClientAbortError, ConnectFailedError, ConnectTimeoutError, DnsLookupError, TlsCertificateError,
  TlsHandshakeError, TlsTimeoutError,
  type DialAttempt, type DialFacts, type DialPhase, type DialTimings
} from '../status/errors.js'
import type { FailureConnection } from '../log/failure-line.js'
import { since } from '../log/time.js'
import { GateLeft, GateTimeout, type GateOwner, type PendingConnects } from './pending-connects.js'
import { inTurn } from './turns.js'

export interface DialTarget {
  protocol: 'http:' | 'https:'
  hostname: string
  port: number
}

export interface TlsOptions {
  /** Verify the origin certificate chain and name (strict). Default true. */
  verify: boolean
  /** Extra CA certificates (PEM) trusted for origins. */
  ca?: string | Buffer | undefined
  /** SNI and name to verify; default the origin host name (none for an IP). */
  servername?: string | undefined
}

export interface DialOptions {
  connectTimeoutMs: number
  tlsTimeoutMs: number
  tls: TlsOptions
  /** Delay before the next address is tried in parallel (RFC 8305 uses 250 ms). */
  attemptDelayMs?: number
  lookup?: typeof dns.lookup
}

/** What a successful dial learned: the failure and access records name it. */
export interface DialInfo extends FailureConnection {
  tls: { protocol: string | null, cipher: string | null, subject: string | null, validTo: string | null } | null
}

export interface Dialled {
  socket: net.Socket
  info: DialInfo
}

interface Resolved { address: string, family: number }

const DEFAULT_ATTEMPT_DELAY_MS = 250

function facts (phase: DialPhase, timings: DialTimings, attempts: DialAttempt[], port: number,
  socket?: net.Socket): DialFacts {
  const last = attempts[attempts.length - 1]
  return {
    phase,
    timings,
    attempts,
    // A socket that connected names its peer; one still connecting has none yet.
    address: (socket !== undefined && !socket.connecting ? socket.remoteAddress : undefined) ?? last?.address ?? null,
    port,
    localAddress: socket?.localAddress ?? null,
    localPort: socket?.localPort ?? null
  }
}

function resolve (target: DialTarget, opts: DialOptions, timings: DialTimings): Promise<Resolved[]> {
  const family = net.isIP(target.hostname)
  if (family !== 0) return Promise.resolve([{ address: target.hostname, family }])
  const lookup = opts.lookup ?? dns.lookup
  const start = performance.now()
  return new Promise((resolve, reject) => {
    // getaddrinfo has no timeout of its own; a stalled resolver must not hang the request.
    const timer = setTimeout(() => {
      timings.dns_ms = since(start)
      const err = Object.assign(new Error(`DNS lookup of ${target.hostname} timed out`), { code: 'EAI_AGAIN' })
      reject(withoutStack(() => new DnsLookupError(facts('dns', timings, [], target.port), err)))
    }, opts.connectTimeoutMs)
    lookup(target.hostname, { all: true }, (err, addresses) => {
      clearTimeout(timer)
      timings.dns_ms = since(start)
      if (err !== null || addresses.length === 0) {
        reject(withoutStack(() => new DnsLookupError(facts('dns', timings, [], target.port),
          err ?? Object.assign(new Error('no addresses'), { code: 'ENODATA' }))))
        return
      }
      resolve(addresses)
    })
  })
}

/**
 * Staggered parallel TCP attempts (RFC 8305); the whole handshake phase is bounded by one
 * precise timer. One object per dial, its methods the callbacks: during a 522 storm
 * thousands of these wait for the same few seconds, and what they hold is what the
 * garbage collector has to carry.
 */
class TcpRace {
  private readonly start = performance.now()
  private readonly sockets: net.Socket[] = []
  private readonly errors: Error[] = []
  private next = 0
  private open = 0
  private settled = false
  private deadline: NodeJS.Timeout
  private stagger: NodeJS.Timeout | null = null
  private resolve!: (socket: net.Socket) => void
  private reject!: (err: Error) => void
  readonly done: Promise<net.Socket>

  /**
   * @param budgetMs what is left of the connect timeout (all of it, unless the dial waited
   *   at the pending-connect cap first)
   * @param gate the cap this connect holds a slot of, freed when the race settles
   */
  constructor (private readonly addresses: Resolved[], private readonly target: DialTarget, private readonly opts: DialOptions,
    private readonly timings: DialTimings, private readonly attempts: DialAttempt[], private readonly budgetMs: number,
    private readonly gate: PendingConnects | null) {
    this.done = new Promise((resolve, reject) => { this.resolve = resolve; this.reject = reject })
    this.deadline = setTimeout(expire, Math.max(0, budgetMs), this)
    this.startNext()
  }

  startNext (): void {
    if (this.stagger !== null) { clearTimeout(this.stagger); this.stagger = null }
    const addr = this.addresses[this.next++]
    if (addr === undefined) return
    const index = this.attempts.length
    this.attempts.push({ address: addr.address, port: this.target.port, family: addr.family, code: null, ms: 0 })
    const socket = net.connect({ host: addr.address, port: this.target.port, family: addr.family, noDelay: true })
    this.sockets.push(socket)
    this.open++
    socket.once('connect', () => this.connected(socket, index))
    socket.once('error', (err: NodeJS.ErrnoException) => this.failed(socket, index, err))
    if (this.next < this.addresses.length) this.stagger = setTimeout(stagger, this.opts.attemptDelayMs ?? DEFAULT_ATTEMPT_DELAY_MS, this)
  }

  private connected (socket: net.Socket, index: number): void {
    this.open--
    const attempt = this.attempts[index] as DialAttempt
    attempt.ms = since(this.start)
    if (this.settled) { socket.destroy(); return }
    this.finish(true)
    // Attempts still pending lost the race; say so rather than leave them blank.
    this.sockets.forEach((other, i) => {
      if (other === socket || other.destroyed) return
      const lost = this.attempts[i] as DialAttempt
      lost.code = 'ECANCELED'
      lost.ms = attempt.ms
      other.destroy()
    })
    this.resolve(socket)
  }

  private failed (socket: net.Socket, index: number, err: NodeJS.ErrnoException): void {
    this.open--
    if (this.settled) return
    const attempt = this.attempts[index] as DialAttempt
    attempt.code = err.code ?? 'UNKNOWN'
    attempt.ms = since(this.start)
    this.errors.push(err)
    if (this.next < this.addresses.length) { this.startNext(); return }
    if (this.open > 0) return
    this.finish(true)
    const errors = this.errors
    const cause = errors.length === 1 ? errors[0] : new AggregateError(errors, `all ${errors.length} addresses failed`)
    this.reject(withoutStack(() => new ConnectFailedError(facts('connect', this.timings, this.attempts, this.target.port, socket), cause)))
  }

  /**
   * Node timers run on the loop's millisecond clock and may fire up to 1 ms early by
   * performance.now(); a 522 must never come before the configured timeout.
   */
  expire (): void {
    const left = this.budgetMs - (performance.now() - this.start)
    if (left > 0) { this.deadline = setTimeout(expire, Math.ceil(left), this); return }
    this.finish(false)
    // A socket still in SYN_SENT has its local port: the one a firewall saw drop us.
    let last: net.Socket | undefined
    this.sockets.forEach((socket, i) => {
      const attempt = this.attempts[i] as DialAttempt
      if (attempt.code !== null || socket.destroyed) return
      attempt.code = 'ETIMEDOUT'
      attempt.ms = since(this.start)
      last = socket
    })
    const error = withoutStack(() => new ConnectTimeoutError(facts('connect', this.timings, this.attempts, this.target.port, last), this.opts.connectTimeoutMs))
    for (const socket of this.sockets) socket.destroy()
    // What the failure sets off waits its turn: see turns.ts.
    inTurn(() => this.reject(error))
  }

  /** @param answered the origin's host answered (SYN-ACK or refusal), rather than the timeout running out */
  private finish (answered: boolean): void {
    this.settled = true
    this.gate?.leave(answered)
    clearTimeout(this.deadline)
    if (this.stagger !== null) clearTimeout(this.stagger)
    this.timings.connect_ms = since(this.start)
  }
}

function expire (race: TcpRace): void { race.expire() }
function stagger (race: TcpRace): void { race.startNext() }

function handshake (socket: net.Socket, target: DialTarget, opts: DialOptions, timings: DialTimings,
  attempts: DialAttempt[]): Promise<tls.TLSSocket> {
  const start = performance.now()
  const servername = opts.tls.servername ?? (net.isIP(target.hostname) === 0 ? target.hostname : undefined)
  return new Promise((resolve, reject) => {
    // Verification is done by hand after the handshake so that a bad certificate
    // (526) is typed apart from a failed handshake (525); Node checks the same things.
    const tlsSocket = tls.connect({
      socket,
      host: target.hostname,
      servername,
      ca: opts.tls.ca,
      rejectUnauthorized: false,
      ALPNProtocols: ['http/1.1']
    })
    let settled = false
    const fail = (make: (f: DialFacts) => Error): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      timings.tls_ms = since(start)
      const error = withoutStack(() => make(facts('tls', timings, attempts, target.port, socket)))
      tlsSocket.destroy()
      socket.destroy()
      reject(error)
    }
    const timer = setTimeout(() => fail(f => new TlsTimeoutError(f, opts.tlsTimeoutMs)), opts.tlsTimeoutMs)
    tlsSocket.once('error', err => fail(f => new TlsHandshakeError(f, err)))
    tlsSocket.once('secureConnect', () => {
      if (opts.tls.verify && !tlsSocket.authorized) {
        const code = String(tlsSocket.authorizationError)
        const cause = Object.assign(new Error(`certificate rejected: ${code}`), { code })
        fail(f => new TlsCertificateError(f, cause))
        return
      }
      settled = true
      clearTimeout(timer)
      timings.tls_ms = since(start)
      resolve(tlsSocket)
    })
  })
}

function tlsFacts (socket: tls.TLSSocket): DialInfo['tls'] {
  const cert = socket.getPeerCertificate()
  return {
    protocol: socket.getProtocol(),
    cipher: socket.getCipher()?.name ?? null,
    subject: [cert?.subject?.CN ?? null].flat()[0] ?? null,
    validTo: cert?.valid_to ?? null
  }
}

let pending = 0
/** Dials in progress in this process (the metrics gauge: a drowning origin shows here first). */
export const pendingDials = (): number => pending

/**
 * Dial an origin phase by phase; rejects with a DialError typed by the failing phase.
 * @param gate the origin's pending-connect cap (pending-connects.ts); null: none
 * @param owner the client connection the dial is for: if it closes while the dial waits at
 *   the cap, the dial ends there (ClientAbortError) without a SYN
 */
export async function dial (target: DialTarget, opts: DialOptions, gate: PendingConnects | null = null, owner: GateOwner | null = null): Promise<Dialled> {
  // One async function, not a counting wrapper around another: each of a storm's thousand
  // waiting dials holds its suspended frames for the whole connect timeout.
  pending++
  try {
    const timings: DialTimings = { dns_ms: null, connect_ms: null, tls_ms: null }
    const attempts: DialAttempt[] = []
    const addresses = await resolve(target, opts, timings)
    let budget = opts.connectTimeoutMs
    if (gate !== null) {
      const start = performance.now()
      try {
        const left = gate.enter(start, owner)
        budget = typeof left === 'number' ? left : await left
      } catch (err) {
        if (err instanceof GateLeft) throw withoutStack(() => new ClientAbortError())
        if (!(err instanceof GateTimeout)) throw err
        // Its connect timeout ran out while it waited: a 522 with no SYN sent.
        timings.connect_ms = since(start)
        const where = { ...facts('connect', timings, attempts, target.port), address: addresses[0]?.address ?? null }
        throw withoutStack(() => new ConnectTimeoutError(where, opts.connectTimeoutMs, err.waitedBehind))
      }
    }
    const tcp = await new TcpRace(addresses, target, opts, timings, attempts, budget, gate).done
    const socket = target.protocol === 'https:' ? await handshake(tcp, target, opts, timings, attempts) : tcp
    const info: DialInfo = {
      timings,
      address: tcp.remoteAddress ?? '',
      port: target.port,
      localAddress: tcp.localAddress ?? null,
      localPort: tcp.localPort ?? null,
      attempts,
      tls: socket instanceof tls.TLSSocket ? tlsFacts(socket) : null
    }
    return { socket, info }
  } finally {
    pending--
  }
}

const defaultPort = (protocol: string): number => protocol === 'https:' ? 443 : 80

/** URL host names keep the brackets of IPv6 literals; sockets want them bare. */
export const bareHost = (hostname: string): string =>
  hostname.startsWith('[') ? hostname.slice(1, -1) : hostname

/** Where a configured origin URL is dialled. */
export function originTarget (url: URL): DialTarget {
  const protocol = url.protocol === 'https:' ? 'https:' : 'http:'
  return { protocol, hostname: bareHost(url.hostname), port: Number(url.port) || defaultPort(protocol) }
}
