// How we make each origin fault for real, on loopback, without root where possible.
// Shared by the demo, `highproxy lab` and the tests, so what a user sees in the demo
// is what the suite proves.

import { execFile, spawn, type ChildProcess } from 'node:child_process'
import http from 'node:http'
import https from 'node:https'
import net from 'node:net'
import { promisify } from 'node:util'
import { generate } from 'selfsigned'
import { LOOPBACK, closeWithConnections, listenLoopback as listen } from './loopback.js'

export interface LabOrigin {
  /** Stable key: `521`, `520-reset`, `healthy`… */
  key: string
  /** The edge status a proxy should answer with, null for the healthy origin. */
  status: number | null
  description: string
  url: string
  /** False when this machine cannot make the fault; `reason` says why. */
  available: boolean
  reason?: string
  close: () => Promise<void>
}

const noop = async (): Promise<void> => {}

/** A raw TCP origin whose behaviour on each connection is `onSocket`. */
async function rawOrigin (key: string, status: number, description: string,
  onSocket: (socket: net.Socket) => void): Promise<LabOrigin> {
  const server = net.createServer(socket => {
    socket.on('error', () => {})
    onSocket(socket)
  })
  const close = closeWithConnections(server)
  const port = await listen(server)
  return { key, status, description, url: `http://${LOOPBACK}:${port}`, available: true, close }
}

/** 521: a port nobody listens on (bound to learn a free one, then closed). */
export async function refusedOrigin (): Promise<LabOrigin> {
  const server = net.createServer()
  const port = await listen(server)
  await new Promise<void>(resolve => server.close(() => resolve()))
  return { key: '521', status: 521, description: 'port with no listener: the kernel answers the SYN with RST', url: `http://${LOOPBACK}:${port}`, available: true, close: noop }
}

// The child listens with a backlog of 1 and blocks its own event loop before it can
// accept anything, in 1 s slices so that it exits once its parent is gone.
const SYN_DROP_CHILD = `
const net = require('node:net'), fs = require('node:fs')
const [host, port] = process.argv.slice(1)
const server = net.createServer()
server.listen({ host, port: Number(port), backlog: 1 }, () => {
  fs.writeSync(1, server.address().port + '\\n')
  const cell = new Int32Array(new SharedArrayBuffer(4))
  const parent = process.ppid
  while (process.ppid === parent) Atomics.wait(cell, 0, 0, 1000)
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
  const child: ChildProcess = spawn(process.execPath, ['-e', SYN_DROP_CHILD, host, String(port)], { stdio: ['ignore', 'pipe', 'inherit'] })
  const listening = await new Promise<number>((resolve, reject) => {
    let out = ''
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString()
      if (out.includes('\n')) resolve(Number(out.trim()))
    })
    child.once('exit', code => reject(new Error(`SYN-drop child exited early (${code})`)))
  })
  const fillers: net.Socket[] = []
  for (let i = 0; i < 8; i++) {
    const socket = await connects(host, listening, 300)
    if (socket === null) break
    socket.on('error', () => {})
    fillers.push(socket)
  }
  const close = async (): Promise<void> => {
    for (const s of fillers) s.destroy()
    if (child.exitCode === null) {
      const exited = new Promise(resolve => child.once('exit', resolve))
      child.kill('SIGKILL')
      await exited
    }
  }
  const shown = host.includes(':') ? `[${host}]` : host
  return { key: '522', status: 522, description: 'accept queue full (backlog 1, event loop blocked): SYNs are dropped', url: `http://${shown}:${listening}`, available: true, close }
}

export const resetOrigin = (): Promise<LabOrigin> =>
  rawOrigin('520-reset', 520, 'reads the request, then resets the connection (RST)',
    socket => socket.once('data', () => socket.resetAndDestroy()))

export const emptyOrigin = (): Promise<LabOrigin> =>
  rawOrigin('520-empty', 520, 'reads the request, then closes without a response',
    socket => socket.once('data', () => socket.end()))

export const garbageOrigin = (): Promise<LabOrigin> =>
  rawOrigin('520-garbage', 520, 'answers with bytes that are not HTTP',
    socket => socket.once('data', () => socket.end('SSH-2.0-OpenSSH_9.6\r\n\u0000\u0001garbage\r\n')))

export const HUGE_HEADER_BYTES = 200 * 1024

export const hugeHeadersOrigin = (): Promise<LabOrigin> =>
  rawOrigin('520-headers', 520, `answers with ${HUGE_HEADER_BYTES / 1024} KiB of response headers`,
    socket => socket.once('data', () => {
      const line = `X-Filler: ${'a'.repeat(1014)}\r\n`
      socket.end(`HTTP/1.1 200 OK\r\n${line.repeat(HUGE_HEADER_BYTES / 1024)}Content-Length: 0\r\n\r\n`)
    }))

export const silentOrigin = (): Promise<LabOrigin> =>
  rawOrigin('524', 524, 'reads the request and never answers', socket => socket.resume())

/** 525: a plain HTTP server, dialled as https. */
export async function plainOnTlsOrigin (): Promise<LabOrigin> {
  const server = http.createServer((_req, res) => res.end('plain http\n'))
  const close = closeWithConnections(server)
  const port = await listen(server)
  return { key: '525', status: 525, description: 'speaks plain HTTP where TLS is expected', url: `https://${LOOPBACK}:${port}`, available: true, close }
}

export interface TestCertificate { cert: string, key: string }

/** A certificate made now, for this run only: no private key is ever committed. */
export async function selfSignedCertificate (): Promise<TestCertificate> {
  const pems = await generate([{ name: 'commonName', value: 'localhost' }], {
    keySize: 2048,
    algorithm: 'sha256',
    extensions: [{ name: 'subjectAltName', altNames: [{ type: 2, value: 'localhost' }, { type: 7, ip: LOOPBACK }] }]
  } as never)
  return { cert: pems.cert, key: pems.private }
}

/** A TLS origin with a certificate; by default a self-signed one (526 under strict checks). */
export async function tlsOrigin (certificate?: TestCertificate, key = '526'): Promise<LabOrigin> {
  const pems = certificate ?? await selfSignedCertificate()
  const server = https.createServer({ cert: pems.cert, key: pems.key }, (_req, res) => res.end('hello over TLS\n'))
  const close = closeWithConnections(server)
  const port = await listen(server)
  return { key, status: 526, description: 'TLS with a self-signed certificate', url: `https://${LOOPBACK}:${port}`, available: true, close }
}

const run = promisify(execFile)

/**
 * 523: a loopback address routed "unreachable" (needs CAP_NET_ADMIN; no packet ever
 * leaves the host). The address is per process so parallel runs never share a route.
 */
export async function unreachableOrigin (): Promise<LabOrigin> {
  const address = `127.77.${(process.pid >> 8) & 255}.${process.pid & 255}`
  const route = ['route', 'add', 'unreachable', `${address}/32`, 'table', 'local']
  const base = { key: '523', status: 523, description: 'loopback address routed as unreachable (EHOSTUNREACH)', url: `http://${address}:80` }
  try {
    await run('ip', route)
  } catch (err) {
    const reason = `cannot add an unreachable route here (${(err as { stderr?: string }).stderr?.trim() || (err as Error).message}); needs root or CAP_NET_ADMIN and iproute2`
    return { ...base, available: false, reason, close: noop }
  }
  return { ...base, available: true, close: async () => { await run('ip', ['route', 'del', 'unreachable', `${address}/32`, 'table', 'local']).catch(() => {}) } }
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

/** Every fault, in status order. */
export async function startFaults (): Promise<LabOrigin[]> {
  return Promise.all([
    resetOrigin(), emptyOrigin(), garbageOrigin(), hugeHeadersOrigin(),
    refusedOrigin(), synDropOrigin(), unreachableOrigin(), silentOrigin(),
    plainOnTlsOrigin(), tlsOrigin(), Promise.resolve(dnsFailureOrigin())
  ])
}
