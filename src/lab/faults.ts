// How we make each origin fault for real, on loopback, without root where possible:
// the faults below TLS and HTTP, one per edge status. Shared by the lab library, the
// demo and the tests, so what a user sees in the demo is what the suite proves.

import net from 'node:net'
import { randomInt } from 'node:crypto'
import { LOOPBACK, refusedPort, serveOnLoopback, type LabOrigin } from './loopback.js'
import { startTethered } from './tethered-child.js'

const noop = async (): Promise<void> => {}

/** A raw TCP origin whose behaviour on each connection is `onSocket`. */
function rawOrigin (key: string, status: number, description: string,
  onSocket: (socket: net.Socket) => void): Promise<LabOrigin> {
  const server = net.createServer(socket => {
    socket.on('error', () => {})
    onSocket(socket)
  })
  return serveOnLoopback(server, { key, status, description })
}

/** Runs `then` `ms` after the first request bytes, unless the client hung up first. */
function afterRequest (socket: net.Socket, ms: number, then: () => void): void {
  socket.once('data', () => {
    if (ms === Infinity) return
    const timer = setTimeout(then, ms)
    socket.once('close', () => clearTimeout(timer))
  })
}

/** 521: a port nobody listens on, outside the ephemeral range so no port-0 listener takes it. */
export async function refusedOrigin (): Promise<LabOrigin> {
  const port = await refusedPort()
  return { key: '521', status: 521, description: 'port with no listener: the kernel answers the SYN with RST', url: `http://${LOOPBACK}:${port}`, available: true, close: noop }
}

// The child listens with a backlog of 1 and blocks its own event loop before it can
// accept anything: in a read of its stdin, which ends when we are gone (tethered-child.ts).
const SYN_DROP_CHILD = `
const net = require('node:net'), fs = require('node:fs')
const [host, port] = process.argv.slice(1)
const server = net.createServer()
server.listen({ host, port: Number(port), backlog: 1 }, () => {
  fs.writeSync(1, server.address().port + '\\n')
  try { while (fs.readSync(0, Buffer.alloc(1)) > 0); } catch {}
  process.exit(0)
})`

function connects (host: string, port: number, withinMs: number): Promise<net.Socket | null> {
  return new Promise(resolve => {
    const socket = net.connect({ host, port })
    const timer = setTimeout(() => { socket.destroy(); resolve(null) }, withinMs)
    socket.once('connect', () => { clearTimeout(timer); resolve(socket) })
    socket.once('error', () => { clearTimeout(timer); resolve(null) })
  })
}

/**
 * 522: an origin whose accept queue is full, so the kernel drops further SYNs, as a
 * CPU-pinned origin does. We fill the queue until a connection no longer completes:
 * that last attempt is the proof that SYNs are now dropped.
 */
export async function synDropOrigin (host = LOOPBACK, port = 0): Promise<LabOrigin> {
  const child = await startTethered(process.execPath, ['-e', SYN_DROP_CHILD, host, String(port)])
  const listening = Number(child.line)
  const fillers: net.Socket[] = []
  for (let i = 0; i < 8; i++) {
    const socket = await connects(host, listening, 300)
    if (socket === null) break
    socket.on('error', () => {})
    fillers.push(socket)
  }
  const close = async (): Promise<void> => {
    for (const s of fillers) s.destroy()
    await child.stop()
  }
  const shown = host.includes(':') ? `[${host}]` : host
  return { key: '522', status: 522, description: 'accept queue full (backlog 1, event loop blocked): SYNs are dropped', url: `http://${shown}:${listening}`, available: true, close }
}

export interface ResetKnobs {
  /** How long after the request arrives the connection is reset. Default 0. */
  delayMs?: number
}

export const resetOrigin = ({ delayMs = 0 }: ResetKnobs = {}): Promise<LabOrigin> =>
  rawOrigin('520-reset', 520, `reads the request, then resets the connection (RST)${delayMs > 0 ? ` after ${delayMs} ms` : ''}`,
    socket => afterRequest(socket, delayMs, () => socket.resetAndDestroy()))

export const emptyOrigin = (): Promise<LabOrigin> =>
  rawOrigin('520-empty', 520, 'reads the request, then closes without a response',
    socket => socket.once('data', () => socket.end()))

export const garbageOrigin = (): Promise<LabOrigin> =>
  rawOrigin('520-garbage', 520, 'answers with bytes that are not HTTP',
    socket => socket.once('data', () => socket.end('SSH-2.0-OpenSSH_9.6\r\n\u0000\u0001garbage\r\n')))

export const HUGE_HEADER_BYTES = 200 * 1024

export interface HugeHeadersKnobs {
  /** Size of the response headers, in bytes (rounded down to whole KiB). Default 200 KiB. */
  bytes?: number
}

export const hugeHeadersOrigin = ({ bytes = HUGE_HEADER_BYTES }: HugeHeadersKnobs = {}): Promise<LabOrigin> =>
  rawOrigin('520-headers', 520, `answers with ${Math.floor(bytes / 1024)} KiB of response headers`,
    socket => socket.once('data', () => {
      const line = `X-Filler: ${'a'.repeat(1014)}\r\n`
      socket.end(`HTTP/1.1 200 OK\r\n${line.repeat(Math.floor(bytes / 1024))}Content-Length: 0\r\n\r\n`)
    }))

export interface SilentKnobs {
  /**
   * How long the origin stays silent after the request, then closes the connection without
   * a byte, as a load balancer in front of a hung application does at its idle timeout.
   * Default Infinity: it never answers nor closes. For a late answer, use `slow`.
   */
  silentMs?: number
}

export const silentOrigin = ({ silentMs = Infinity }: SilentKnobs = {}): Promise<LabOrigin> =>
  rawOrigin('524', 524, `reads the request and never answers${silentMs === Infinity ? '' : `; closes after ${silentMs} ms`}`, socket => {
    socket.resume()
    afterRequest(socket, silentMs, () => socket.end())
  })

// Adds the route, says so, then holds it until its stdin ends (tethered-child.ts).
const ROUTE_GUARD = `
ip route add unreachable "$1/32" table local || exit
echo routed
cat >/dev/null
ip route del unreachable "$1/32" table local`

/**
 * 523: a loopback address routed "unreachable" (needs CAP_NET_ADMIN; no packet ever
 * leaves the host). A guard process owns the route, so it goes even when we die. The
 * address is drawn at random, again if another lab holds it, so labs never share a route.
 */
export async function unreachableOrigin (): Promise<LabOrigin> {
  const facts = { key: '523', status: 523, description: 'loopback address routed as unreachable (EHOSTUNREACH)' }
  let reason = ''
  for (let tries = 0; tries < 4; tries++) {
    const n = randomInt(1, 0xffff)
    const address = `127.77.${n >> 8}.${n & 255}`
    try {
      const guard = await startTethered('sh', ['-c', ROUTE_GUARD, 'sh', address])
      return { ...facts, url: `http://${address}:80`, available: true, close: guard.stop }
    } catch (err) {
      reason = (err as Error).message
      if (!/File exists/.test(reason)) break
    }
  }
  return {
    ...facts,
    url: 'http://127.77.0.1:80',
    available: false,
    reason: `cannot add an unreachable route here (${reason}); needs root or CAP_NET_ADMIN and iproute2`,
    close: noop
  }
}

/**
 * 530: a name under .invalid (RFC 6761) never resolves. Its first label is 64 bytes,
 * one over the DNS limit, so the resolver refuses it locally (ENOTFOUND) and no query
 * ever leaves the machine: a plain `origin.invalid` would be sent to the system's
 * DNS server.
 */
export const UNRESOLVABLE_HOST = `${'nx'.repeat(32)}.invalid`

export function dnsFailureOrigin (): LabOrigin {
  return { key: '530', status: 530, description: 'host name under .invalid that no resolver answers', url: `http://${UNRESOLVABLE_HOST}`, available: true, close: noop }
}

export interface DrowningKnobs {
  /** How long each request holds the origin, in ms: its goodput is 1000 / service_ms requests per second. Default 25. */
  service_ms?: number
  /** Its listen backlog: how many handshaken connections wait to be accepted before the kernel drops SYNs. Default 8. */
  backlog?: number
}

// One Node process with one thread: each request blocks its event loop for service_ms
// (Atomics.wait on a value nobody changes, so it sleeps without burning CPU, the way a
// CPU-bound handler holds a real origin), then answers. While it is blocked nothing is
// accepted, so connections pile up in the kernel's accept queue; past the backlog the
// kernel drops their SYNs and the clients' kernels retransmit after 1 s, 3 s, 7 s. Its
// stdin is the tether (tethered-child.ts): when it ends, the process leaves.
const DROWNING_CHILD = `
const http = require('node:http'), fs = require('node:fs')
const [host, port, serviceMs, queue] = process.argv.slice(1)
const held = new Int32Array(new SharedArrayBuffer(4))
let served = 0
const server = http.createServer((req, res) => {
  req.resume()
  req.once('end', () => {
    Atomics.wait(held, 0, 0, Number(serviceMs))
    served++
    res.writeHead(200, { 'content-type': 'text/plain', 'x-lab-served': String(served) })
    res.end('served, ' + serviceMs + ' ms of work\\n')
  })
})
server.keepAliveTimeout = 60000
server.listen({ host, port: Number(port), backlog: Number(queue) }, () => {
  fs.writeSync(1, server.address().port + '\\n')
  process.stdin.on('end', () => process.exit(0)).resume()
})`

/**
 * An origin that drowns the way real ones do: one request at a time, `service_ms` each,
 * with a small listen backlog. Below 1000 / service_ms requests per second it answers 200
 * after service_ms; above, requests wait their turn (524 past the response timeout) and
 * the accept queue overflows, so the kernel drops SYNs (522, or connects that succeed
 * only after a retransmit at 1 s or 3 s). A child process, tethered to this one.
 */
export async function drowningOrigin ({ service_ms: serviceMs = 25, backlog = 8 }: DrowningKnobs = {}, host = LOOPBACK, port = 0): Promise<LabOrigin> {
  if (!(Number.isFinite(serviceMs) && serviceMs > 0)) throw new TypeError(`drowning origin: service_ms must be a number of milliseconds above 0, got ${String(serviceMs)}`)
  if (!(Number.isInteger(backlog) && backlog >= 1)) throw new TypeError(`drowning origin: backlog must be a whole number of connections, at least 1, got ${String(backlog)}`)
  const child = await startTethered(process.execPath, ['-e', DROWNING_CHILD, host, String(port), String(serviceMs), String(backlog)])
  const shown = host.includes(':') ? `[${host}]` : host
  const goodput = Math.round(1000 / serviceMs * 10) / 10
  return {
    key: 'drowning',
    status: null,
    description: `serves one request at a time, ${serviceMs} ms each (${goodput} req/s), backlog ${backlog}: past that it queues, then the kernel drops SYNs`,
    url: `http://${shown}:${Number(child.line)}`,
    available: true,
    close: child.stop
  }
}
