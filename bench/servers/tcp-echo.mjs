// A TCP echo server: the upstream of the Toxiproxy-compatible API's rows.
// Usage: node bench/servers/tcp-echo.mjs <port>

import net from 'node:net'

net.createServer({ allowHalfOpen: true, noDelay: true }, socket => {
  socket.on('error', () => {})
  socket.pipe(socket)
}).listen({ host: '127.0.0.1', port: Number(process.argv[2]), backlog: 1024 })
