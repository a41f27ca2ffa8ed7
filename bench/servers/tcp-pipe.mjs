// The floor of a TCP proxy in Node: accept, dial, pipe both ways, nothing else. What
// `highproxy toxiproxy`'s proxies with no toxic are measured against.
// Usage: node bench/servers/tcp-pipe.mjs <port> <upstream-port>

import net from 'node:net'

const upstreamPort = Number(process.argv[3])
net.createServer({ allowHalfOpen: true, noDelay: true }, client => {
  const upstream = net.connect({ host: '127.0.0.1', port: upstreamPort, allowHalfOpen: true, noDelay: true })
  client.on('error', () => upstream.destroy())
  upstream.on('error', () => client.destroy())
  client.pipe(upstream)
  upstream.pipe(client)
}).listen({ host: '127.0.0.1', port: Number(process.argv[2]), backlog: 1024 })
