// The Node floor: the smallest honest Node proxy, the yardstick of what Node itself
// costs. node:http server, one undici Pool to the origin, hop-by-hop headers dropped
// both ways, the response streamed with Pool.stream. With --log, one pino access line
// per request (pino's default destination: stdout). With --tls <cert> <key>: the same
// handler behind Node's secure HTTP/2 server, ALPN h2 and http/1.1 on one port (what
// TLS and HTTP/2 cost Node itself, before any proxy of ours).
// Usage: node bench/servers/node-floor.mjs <port> <upstream-url> [--log] [--tls <cert> <key>]

import { readFileSync } from 'node:fs'
import http from 'node:http'
import http2 from 'node:http2'
import { Pool } from 'undici'
import pino from 'pino'

const [port, upstream] = [Number(process.argv[2]), process.argv[3]]
const logger = process.argv.includes('--log') ? pino() : null
const pool = new Pool(upstream, { connections: 128, pipelining: 1 })

const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade'])

// HTTP/2's pseudo-headers (a colon first) are the request line; :authority is the Host.
function requestHeaders (incoming) {
  const out = {}
  for (const name in incoming) if (!HOP.has(name) && name.charCodeAt(0) !== 58) out[name] = incoming[name]
  if (out.host === undefined && incoming[':authority'] !== undefined) out.host = incoming[':authority']
  return out
}

function responseHeaders (raw) {
  const out = []
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i].toString('latin1')
    if (!HOP.has(name.toLowerCase())) out.push(name, raw[i + 1].toString('latin1'))
  }
  return out
}

const tlsAt = process.argv.indexOf('--tls')
const tls = tlsAt < 0 ? null : { cert: readFileSync(process.argv[tlsAt + 1]), key: readFileSync(process.argv[tlsAt + 2]) }

const handler = (req, res) => {
  const start = performance.now()
  pool.stream({
    path: req.url,
    method: req.method,
    headers: requestHeaders(req.headers),
    body: req.method === 'GET' || req.method === 'HEAD' ? null : req,
    responseHeaders: 'raw'
  }, ({ statusCode, headers }) => {
    res.writeHead(statusCode, responseHeaders(headers))
    return res
  }, err => {
    if (err !== null && !res.headersSent) res.writeHead(502).end()
    else if (err !== null) res.destroy()
    logger?.info({ method: req.method, url: req.url, status: res.statusCode, ms: performance.now() - start })
  })
}
const server = tls === null ? http.createServer(handler) : http2.createSecureServer({ ...tls, allowHTTP1: true }, handler)
server.keepAliveTimeout = 30_000
server.listen({ host: '127.0.0.1', port })

const parent = process.ppid
setInterval(() => { if (process.ppid !== parent) process.exit(0) }, 1000).unref()
process.on('SIGTERM', () => { server.closeAllConnections?.(); server.close(() => process.exit(0)); setTimeout(() => process.exit(0), 500).unref() })
