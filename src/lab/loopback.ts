// Listening on loopback and closing with every connection: what each lab origin needs.

import type net from 'node:net'

export const LOOPBACK = '127.0.0.1'

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
