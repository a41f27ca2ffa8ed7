// Peer: @fastify/http-proxy in a tiny Fastify app, logger off, defaults otherwise.
// Usage: node bench/servers/fastify-http-proxy.mjs <port> <upstream-url>

import Fastify from 'fastify'
import proxy from '@fastify/http-proxy'

const [port, upstream] = [Number(process.argv[2]), process.argv[3]]
const app = Fastify({ logger: false })
await app.register(proxy, { upstream })
await app.listen({ host: '127.0.0.1', port })

const parent = process.ppid
setInterval(() => { if (process.ppid !== parent) process.exit(0) }, 1000).unref()
process.on('SIGTERM', () => { app.close().then(() => process.exit(0), () => process.exit(1)) })
