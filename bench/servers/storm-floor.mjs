// The storm floor: the least Node can do for a request whose origin drops SYNs — accept
// and parse the request, dial with net.connect, a timer, then a short 522 and a close.
// Usage: node bench/servers/storm-floor.mjs <port> <dead-origin-url> <timeout-ms>
//
// Only /dead… is stormed; any other path is answered 200 at once, so that the harness's
// readiness check (GET /, with a 2 s timeout) is not itself a 2 s dial that races it.

import http from 'node:http'
import net from 'node:net'

const [port, dead, timeoutMs] = [Number(process.argv[2]), new URL(process.argv[3]), Number(process.argv[4])]
const BODY = 'error code: 522\n'

const server = http.createServer((req, res) => {
  if (!req.url.startsWith('/dead')) { res.end('ok'); return }
  const socket = net.connect({ host: dead.hostname, port: Number(dead.port) })
  socket.on('error', () => {})
  const timer = setTimeout(() => {
    socket.destroy()
    res.writeHead(522, { 'content-type': 'text/plain', 'content-length': BODY.length, connection: 'close' }).end(BODY)
  }, timeoutMs)
  socket.once('connect', () => { clearTimeout(timer); socket.destroy(); res.writeHead(502).end() })
})
server.listen({ host: '127.0.0.1', port, backlog: 4096 })

const parent = process.ppid
setInterval(() => { if (process.ppid !== parent) process.exit(0) }, 1000).unref()
process.on('SIGTERM', () => { server.closeAllConnections(); server.close(() => process.exit(0)) })
