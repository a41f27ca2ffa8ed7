// Listening on loopback and closing with every connection: what each lab origin needs.

import { randomInt } from 'node:crypto'
import { readFileSync } from 'node:fs'
import net from 'node:net'

export const LOOPBACK = '127.0.0.1'

export interface LabOrigin {
  /** Stable key: `521`, `520-reset`, `slow`, `healthy`… */
  key: string
  /** The edge status a proxy should answer with; null when the origin does answer (healthy, slow, trickling). */
  status: number | null
  description: string
  url: string
  /** False when this machine cannot make the fault; `reason` says why. */
  available: boolean
  reason?: string
  /** For TLS origins: the PEM of what issued the certificate (trust it, and only the fault's own defect is left). */
  ca?: string
  close: () => Promise<void>
}

export function listenLoopback (server: net.Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen({ host: LOOPBACK, port: 0 }, () => resolve((server.address() as net.AddressInfo).port))
  })
}

/** Tracks the server's connections; the returned function closes it and them. */
export function closeWithConnections (server: net.Server): () => Promise<void> {
  const sockets = new Set<net.Socket>()
  server.on('connection', (s: net.Socket) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
  })
  return () => new Promise(resolve => {
    for (const s of sockets) s.destroy()
    server.close(() => resolve())
  })
}

export type OriginFacts = Pick<LabOrigin, 'key' | 'status' | 'description'> & { scheme?: 'http' | 'https', ca?: string }

/** `server` listening on loopback as the lab origin `facts` describe. */
export async function serveOnLoopback (server: net.Server, facts: OriginFacts, listen = listenLoopback): Promise<LabOrigin> {
  const { scheme = 'http', ...rest } = facts
  const close = closeWithConnections(server)
  const port = await listen(server)
  return { ...rest, url: `${scheme}://${LOOPBACK}:${port}`, available: true, close }
}

// Ports that no port-0 listener can be given. A port found by listening on port 0 and
// closing again is back in the kernel's ephemeral range at once: any listener on port 0
// started beside it (another test, another lab) can be handed the same port, and a
// "refused" origin then answers. The kernel hands out port-0 ports only from
// net.ipv4.ip_local_port_range, so a port below it is never taken that way; it is
// checked free right before use, and only a listener on that fixed port could race it.

const FIXED_LOW = 1024

/** The kernel's range for port-0 binds (Linux; the usual default elsewhere). */
export function ephemeralRange (): [number, number] {
  try {
    const [low, high] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number)
    if (Number.isInteger(low) && Number.isInteger(high)) return [low as number, high as number]
  } catch {}
  return [32768, 60999]
}

/** A random port outside the ephemeral range (never a port-0 port). */
function fixedPort (): number {
  const [low, high] = ephemeralRange()
  // Below the range when there is room for it, above it otherwise.
  return low - FIXED_LOW >= 1000 ? randomInt(FIXED_LOW, low) : randomInt(high + 1, 65536)
}

function refuses (host: string, port: number): Promise<boolean> {
  return new Promise(resolve => {
    const socket = net.connect({ host, port })
    socket.once('connect', () => { socket.destroy(); resolve(false) })
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'))
  })
}

/**
 * A port that refuses connections (RST to the SYN) on every one of `hosts`, and that no
 * listener on port 0 can be given later.
 */
export async function refusedPort (hosts: readonly string[] = [LOOPBACK]): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const port = fixedPort()
    if ((await Promise.all(hosts.map(h => refuses(h, port)))).every(Boolean)) return port
  }
  throw new Error('no refused port found outside the ephemeral range in 50 tries')
}

/**
 * Listens on a port outside the ephemeral range: for an origin that stops listening on
 * purpose, whose port must stay refused afterwards (no port-0 listener can take it over).
 */
export async function listenFixedPort (server: net.Server, host = LOOPBACK): Promise<number> {
  for (let i = 0; ; i++) {
    const port = fixedPort()
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject)
        server.listen({ host, port }, () => { server.off('error', reject); resolve() })
      })
      return port
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || i >= 50) throw err
    }
  }
}
