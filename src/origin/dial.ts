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
  ConnectFailedError, ConnectTimeoutError, DnsLookupError, TlsCertificateError,
  TlsHandshakeError, TlsTimeoutError,
  type DialAttempt, type DialFacts, type DialPhase, type DialTimings
} from '../status/errors.js'
import { since } from '../time.js'

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
export interface DialInfo {
  timings: DialTimings
  address: string
  port: number
  localAddress: string | null
  localPort: number | null
  attempts: DialAttempt[]
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
    address: socket?.remoteAddress ?? last?.address ?? null,
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

/** Staggered parallel TCP attempts; the whole handshake phase is bounded by one precise timer. */
function connectAny (addresses: Resolved[], target: DialTarget, opts: DialOptions,
  timings: DialTimings, attempts: DialAttempt[]): Promise<net.Socket> {
  const delay = opts.attemptDelayMs ?? DEFAULT_ATTEMPT_DELAY_MS
  const start = performance.now()
  const pending = new Map<net.Socket, DialAttempt>()
  const errors: Error[] = []
  let next = 0
  let stagger: NodeJS.Timeout | undefined
  let settled = false

  return new Promise((resolve, reject) => {
    const finish = (): void => {
      settled = true
      clearTimeout(deadline)
      clearTimeout(stagger)
      timings.connect_ms = since(start)
    }
    // Node timers run on the loop's millisecond clock and may fire up to 1 ms early by
    // performance.now(); a 522 must never come before the configured timeout.
    const expire = (): void => {
      const left = opts.connectTimeoutMs - (performance.now() - start)
      if (left > 0) { deadline = setTimeout(expire, Math.ceil(left)); return }
      finish()
      // A socket still in SYN_SENT has its local port: the one a firewall saw drop us.
      let last: net.Socket | undefined
      for (const [socket, attempt] of pending) {
        attempt.code = 'ETIMEDOUT'
        attempt.ms = since(start)
        last = socket
      }
      const error = withoutStack(() => new ConnectTimeoutError(facts('connect', timings, attempts, target.port, last), opts.connectTimeoutMs))
      for (const socket of pending.keys()) socket.destroy()
      pending.clear()
      reject(error)
    }
    let deadline = setTimeout(expire, opts.connectTimeoutMs)

    const startNext = (): void => {
      clearTimeout(stagger)
      const addr = addresses[next++]
      if (addr === undefined) return
      const attempt: DialAttempt = { address: addr.address, port: target.port, family: addr.family, code: null, ms: 0 }
      attempts.push(attempt)
      const socket = net.connect({ host: addr.address, port: target.port, family: addr.family, noDelay: true })
      pending.set(socket, attempt)
      socket.once('connect', () => {
        attempt.ms = since(start)
        pending.delete(socket)
        if (settled) { socket.destroy(); return }
        finish()
        // Attempts still pending lost the race; say so rather than leave them blank.
        for (const [other, lost] of pending) {
          lost.code = 'ECANCELED'
          lost.ms = attempt.ms
          other.destroy()
        }
        pending.clear()
        resolve(socket)
      })
      socket.once('error', (err: NodeJS.ErrnoException) => {
        if (!pending.delete(socket) || settled) return
        attempt.code = err.code ?? 'UNKNOWN'
        attempt.ms = since(start)
        errors.push(err)
        if (next < addresses.length) { startNext(); return }
        if (pending.size > 0) return
        finish()
        const cause = errors.length === 1 ? errors[0] : new AggregateError(errors, `all ${errors.length} addresses failed`)
        reject(withoutStack(() => new ConnectFailedError(facts('connect', timings, attempts, target.port, socket), cause)))
      })
      if (next < addresses.length) stagger = setTimeout(startNext, delay)
    }
    startNext()
  })
}

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

/** Dial an origin phase by phase; rejects with a DialError typed by the failing phase. */
export async function dial (target: DialTarget, opts: DialOptions): Promise<Dialled> {
  pending++
  try {
    return await dialPhases(target, opts)
  } finally {
    pending--
  }
}

async function dialPhases (target: DialTarget, opts: DialOptions): Promise<Dialled> {
  const timings: DialTimings = { dns_ms: null, connect_ms: null, tls_ms: null }
  const attempts: DialAttempt[] = []
  const addresses = await resolve(target, opts, timings)
  const tcp = await connectAny(addresses, target, opts, timings, attempts)
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
