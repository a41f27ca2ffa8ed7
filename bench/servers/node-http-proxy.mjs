// Peer: http-proxy (node-http-proxy) on node:http, with a keep-alive agent to the origin
// (without one it would open a TCP connection per request: a strawman, not a peer).
// Usage: node bench/servers/node-http-proxy.mjs <port> <upstream-url>

import http from 'node:http'
import httpProxy from 'http-proxy'

const [port, target] = [Number(process.argv[2]), process.argv[3]]
const agent = new http.Agent({ keepAlive: true })
const proxy = httpProxy.createProxyServer({ target, agent })
proxy.on('error', (_err, _req, res) => {
  if (res instanceof http.ServerResponse && !res.headersSent) res.writeHead(502).end('bad gateway')
  else res.destroy()
})
const server = http.createServer((req, res) => proxy.web(req, res))
server.listen({ host: '127.0.0.1', port })

const parent = process.ppid
setInterval(() => { if (process.ppid !== parent) process.exit(0) }, 1000).unref()
process.on('SIGTERM', () => { server.closeAllConnections(); server.close(() => process.exit(0)) })
