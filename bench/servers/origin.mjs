// The bench origin: a minimal node:http server on loopback, in its own process.
//   GET /        → 200 "ok"
//   GET /64k     → 200 with a 64 KiB body
//   anything else→ 200 "ok"
// Usage: node bench/servers/origin.mjs <port>

import http from 'node:http'

const port = Number(process.argv[2])
const SMALL = Buffer.from('ok')
const BIG = Buffer.alloc(64 * 1024, 'x')
const SMALL_HEADERS = { 'content-type': 'text/plain', 'content-length': String(SMALL.length) }
const BIG_HEADERS = { 'content-type': 'application/octet-stream', 'content-length': String(BIG.length) }

const server = http.createServer((req, res) => {
  req.resume()
  if (req.url === '/64k') res.writeHead(200, BIG_HEADERS).end(BIG)
  else res.writeHead(200, SMALL_HEADERS).end(SMALL)
})
// Longer than any proxy's idle timeout, so the proxies decide when to drop idle sockets.
server.keepAliveTimeout = 30_000
server.listen({ host: '127.0.0.1', port, backlog: 4096 })

// Exit with the harness, whatever happens to it.
const parent = process.ppid
setInterval(() => { if (process.ppid !== parent) process.exit(0) }, 1000).unref()
process.on('SIGTERM', () => { server.closeAllConnections(); server.close(() => process.exit(0)) })
