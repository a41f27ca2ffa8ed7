// Origins that speak HTTP but misbehave in time or in their connections: slow headers,
// a trickled body, keep-alive connections cut under a request, and an origin that goes
// away after a few answers. Real node:http servers, so the HTTP itself is well formed.

import http from 'node:http'
import type net from 'node:net'
import { listenFixedPort, serveOnLoopback, type LabOrigin } from './loopback.js'

export interface SlowKnobs {
  /** How long after the request the response headers come. Default 2000. */
  delayMs?: number
}

export function slowOrigin ({ delayMs = 2000 }: SlowKnobs = {}): Promise<LabOrigin> {
  const server = http.createServer((_req, res) => {
    const timer = setTimeout(() => res.end(`answered after ${delayMs} ms\n`), delayMs)
    res.on('close', () => clearTimeout(timer))
  })
  return serveOnLoopback(server, { key: 'slow', status: null, description: `answers 200, but only ${delayMs} ms after the request` })
}

export interface TrickleKnobs {
  /** Bytes per piece. Default 16. */
  bytes?: number
  /** Pause between two pieces. Default 200. */
  everyMs?: number
  /** Pieces in the body (at least 1); the first goes with the headers. Default 25. */
  chunks?: number
}

export function trickleOrigin ({ bytes = 16, everyMs = 200, chunks = 25 }: TrickleKnobs = {}): Promise<LabOrigin> {
  const server = http.createServer((_req, res) => {
    // Content-Length is announced, so a client cannot mistake a pause for the end.
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': bytes * chunks })
    const piece = '.'.repeat(bytes)
    let sent = 0
    let timer: NodeJS.Timeout | undefined
    const send = (): void => {
      if (++sent < chunks) {
        res.write(piece)
        timer = setTimeout(send, everyMs)
      } else {
        res.end(piece)
      }
    }
    send()
    res.on('close', () => clearTimeout(timer))
  })
  return serveOnLoopback(server, {
    key: 'trickle',
    status: null,
    description: `answers 200 at once, then its ${bytes * chunks}-byte body ${bytes} bytes every ${everyMs} ms`
  })
}

export interface KeepaliveCutKnobs {
  /** Requests answered on each connection; the next one on it is not. Default 1. */
  requests?: number
}

/**
 * Keep-alive is offered, but request `requests + 1` on a connection finds it closed without
 * an answer: the race a client loses when it reuses a connection the origin is closing.
 */
export function keepaliveCutOrigin ({ requests = 1 }: KeepaliveCutKnobs = {}): Promise<LabOrigin> {
  const served = new WeakMap<net.Socket, number>()
  const server = http.createServer((req, res) => {
    const n = (served.get(req.socket) ?? 0) + 1
    served.set(req.socket, n)
    if (n > requests) { req.socket.destroy(); return }
    res.end(`request ${n} of ${requests} on this connection\n`)
  })
  // Long enough that Node's own idle close never comes first: the cut is by count, not time.
  server.keepAliveTimeout = 60_000
  return serveOnLoopback(server, {
    key: 'keepalive-cut',
    status: null,
    description: `keeps connections alive, answers ${requests} request(s) on each, then closes it under the next one`
  })
}

export interface RefuseAfterKnobs {
  /** Requests answered before the origin stops listening. Default 3. */
  requests?: number
}

/** 521 after a while: answers `requests` requests, then stops listening, so new connections are refused (RST). */
export function refuseAfterOrigin ({ requests = 3 }: RefuseAfterKnobs = {}): Promise<LabOrigin> {
  let served = 0
  const server = http.createServer((req, res) => {
    // A request that came on a connection still open while the origin went away.
    if (++served > requests) { req.socket.destroy(); return }
    if (served === requests) {
      res.setHeader('connection', 'close')
      // Stops listening at once and closes the idle keep-alive connections (Node >= 19).
      server.close()
    }
    res.end(`answer ${served} of ${requests}, then this origin stops listening\n`)
  })
  return serveOnLoopback(server, {
    key: '521-after',
    status: 521,
    description: `answers ${requests} request(s), then stops listening: new connections are refused (RST)`
  // Once closed, its port must stay refused: no listener on port 0 may be given it.
  }, listenFixedPort)
}
