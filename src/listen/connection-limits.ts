// How many client connections the edge holds, in all and per address. Past a limit a
// connection gets a short answer with Retry-After, a ray id and an access line, rather
// than a silent drop (which is what Node's own server.maxConnections does) or an
// unbounded queue.

import type { Server } from 'node:http'
import type { Socket } from 'node:net'
import type { ClientLimits } from '../config/schema.js'
import { refusal } from '../page/refusal.js'
import { writeToSocket } from '../page/write.js'
import { refusedAccess } from '../edge/access-log.js'
import type { RefusalOptions } from './client-errors.js'
import { newRayId } from '../log/ray.js'

export function limitConnections (server: Server, limits: ClientLimits, opts: RefusalOptions, tls: boolean): void {
  let open = 0
  const perIp = new Map<string, number>()
  const refuse = (socket: Socket, status: 503 | 429, retryAfter: number): void => {
    const ray = newRayId()
    const answer = refusal(opts, status, ray, ['retry-after', String(retryAfter)])
    socket.on('error', () => {})
    // A TLS listener sees the connection before its handshake: an answer would cost the
    // handshake the limit is there to spare, so the connection is only closed.
    if (tls) socket.destroy()
    else writeToSocket(socket, status, answer.headers, answer.body)
    opts.access.refusal(refusedAccess(ray, status, status === 503 ? 'max_connections' : 'max_connections_per_ip', '', '', socket), socket)
  }
  const closed = (): void => { open-- }
  server.on('connection', (socket: Socket) => {
    if (open >= limits.maxConnections) { refuse(socket, 503, 5); return }
    open++
    // 'close' comes once: `on` spares the wrapper `once` makes per connection.
    socket.on('close', closed)
    // Off by default: without it, no address lookup and no map per connection.
    if (limits.maxConnectionsPerIp === 0) return
    const ip = socket.remoteAddress ?? ''
    const fromIp = (perIp.get(ip) ?? 0) + 1
    if (fromIp > limits.maxConnectionsPerIp) { refuse(socket, 429, 10); return }
    perIp.set(ip, fromIp)
    socket.on('close', () => {
      const left = (perIp.get(ip) ?? 1) - 1
      if (left === 0) perIp.delete(ip)
      else perIp.set(ip, left)
    })
  })
}
