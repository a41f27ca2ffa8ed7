// How many client connections the edge holds, in all and per address. Past a limit a
// connection gets a short answer with Retry-After rather than a silent drop (which is
// what Node's own server.maxConnections does) or an unbounded queue.

import type { Server } from 'node:http'
import type { Socket } from 'node:net'
import type { ClientLimits } from '../config/schema.js'

const answer = (status: number, text: string, retryAfter: number): string =>
  `HTTP/1.1 ${status} ${text}\r\nretry-after: ${retryAfter}\r\ncontent-type: text/plain; charset=utf-8\r\n` +
  `connection: close\r\ncontent-length: ${text.length + 1}\r\n\r\n${text}\n`

const OVERLOADED = answer(503, 'Service Unavailable', 5)
const TOO_MANY = answer(429, 'Too Many Requests', 10)

export function limitConnections (server: Server, limits: ClientLimits): void {
  let open = 0
  const perIp = new Map<string, number>()
  server.on('connection', (socket: Socket) => {
    const ip = socket.remoteAddress ?? ''
    const fromIp = (perIp.get(ip) ?? 0) + 1
    if (open >= limits.maxConnections || (limits.maxConnectionsPerIp > 0 && fromIp > limits.maxConnectionsPerIp)) {
      socket.on('error', () => {})
      socket.end(open >= limits.maxConnections ? OVERLOADED : TOO_MANY)
      return
    }
    open++
    perIp.set(ip, fromIp)
    socket.once('close', () => {
      open--
      const left = (perIp.get(ip) ?? 1) - 1
      if (left === 0) perIp.delete(ip)
      else perIp.set(ip, left)
    })
  })
}
