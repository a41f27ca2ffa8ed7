// Shared by the Toxiproxy-compatible API's tests: a TCP echo upstream, a plain HTTP
// upstream, and clients that time what comes back on the wire.

import http from 'node:http'
import net from 'node:net'
import { closeWithConnections } from '../src/lab/loopback.js'

export interface Upstream { port: number, address: string, connections: () => number, close: () => Promise<void> }

async function serve (server: net.Server): Promise<Upstream> {
  let connections = 0
  server.on('connection', () => { connections++ })
  const close = closeWithConnections(server)
  await new Promise<void>(resolve => server.listen({ host: '127.0.0.1', port: 0 }, () => resolve()))
  const port = (server.address() as net.AddressInfo).port
  return { port, address: `127.0.0.1:${port}`, connections: () => connections, close }
}

/** Echoes every byte back; ends when the client ends. */
export const echoUpstream = (): Promise<Upstream> => serve(net.createServer({ allowHalfOpen: true }, s => { s.on('error', () => {}); s.pipe(s) }))

/** Answers `200 hello` to every request. */
export const httpUpstream = (): Promise<Upstream> =>
  serve(http.createServer((_req, res) => res.end('hello from the upstream\n')))

export const portOf = (listen: string): number => Number(listen.slice(listen.lastIndexOf(':') + 1))

export interface Exchange {
  /** The bytes that came back. */
  data: Buffer
  /** ms from connect to the last byte wanted (or to the close). */
  ms: number
  /** Arrival time (ms after connect) of each chunk. */
  arrivals: Array<{ at: number, bytes: number }>
  /** How it ended: 'enough' (got `want` bytes), 'end' (FIN), 'reset', 'error:<code>', 'timeout'. */
  ended: string
}

/**
 * Connects to `port`, writes `payload`, collects what comes back until `want` bytes, the
 * peer's end, an error or `deadlineMs`.
 */
export function exchange (port: number, payload: Buffer | string, want: number, deadlineMs = 10_000): Promise<Exchange> {
  return new Promise(resolve => {
    const parts: Buffer[] = []
    const arrivals: Array<{ at: number, bytes: number }> = []
    let size = 0
    let t0 = performance.now()
    const socket = net.connect({ host: '127.0.0.1', port })
    const done = (ended: string): void => {
      clearTimeout(timer)
      socket.destroy()
      resolve({ data: Buffer.concat(parts), ms: performance.now() - t0, arrivals, ended })
    }
    const timer = setTimeout(() => done('timeout'), deadlineMs)
    socket.once('connect', () => { t0 = performance.now(); socket.write(payload) })
    socket.on('data', (d: Buffer) => {
      parts.push(d)
      size += d.length
      arrivals.push({ at: performance.now() - t0, bytes: d.length })
      if (size >= want) done('enough')
    })
    socket.once('end', () => done('end'))
    socket.once('error', (err: NodeJS.ErrnoException) => done(err.code === 'ECONNRESET' ? 'reset' : `error:${String(err.code)}`))
  })
}

/** Whether a TCP connect to `port` completes within `ms`: 'connected', 'refused', or 'timeout' (no SYN-ACK). */
export function connectOutcome (port: number, ms: number): Promise<{ outcome: string, ms: number }> {
  return new Promise(resolve => {
    const t0 = performance.now()
    const socket = net.connect({ host: '127.0.0.1', port })
    const done = (outcome: string): void => { clearTimeout(timer); socket.destroy(); resolve({ outcome, ms: performance.now() - t0 }) }
    const timer = setTimeout(() => done('timeout'), ms)
    socket.once('connect', () => done('connected'))
    socket.once('error', (err: NodeJS.ErrnoException) => done(err.code === 'ECONNREFUSED' ? 'refused' : `error:${String(err.code)}`))
  })
}

/** The median of a list of numbers. */
export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  const mid = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? s[mid] as number : ((s[mid - 1] as number) + (s[mid] as number)) / 2
}
