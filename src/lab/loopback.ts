// Listening on loopback and closing with every connection: what each lab origin needs.

import type net from 'node:net'

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
export async function serveOnLoopback (server: net.Server, facts: OriginFacts): Promise<LabOrigin> {
  const { scheme = 'http', ...rest } = facts
  const close = closeWithConnections(server)
  const port = await listenLoopback(server)
  return { ...rest, url: `${scheme}://${LOOPBACK}:${port}`, available: true, close }
}
