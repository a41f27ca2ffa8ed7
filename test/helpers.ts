// Shared by the tests: a real proxy on loopback with its log lines captured.

import { Writable } from 'node:stream'
import type { AddressInfo } from 'node:net'
import type { FastifyInstance } from 'fastify'
import { request as undiciRequest, Agent } from 'undici'
import type { StaleStore } from '../src/cache/stale-store.js'
import { resolve, validate } from '../src/config/load.js'
import type { Config } from '../src/config/schema.js'
import { createLogger } from '../src/log/log.js'
import { buildServer } from '../src/listen/server.js'
import { TlsFront } from '../src/listen/tls/tls-listener.js'
import type { MemberHealth } from '../src/origin/pool.js'
import { startTracing, type Tracing } from '../src/tracing.js'

export type LogLine = Record<string, any>

export interface TestProxy {
  url: string
  port: number
  app: FastifyInstance
  config: Config
  logs: LogLine[]
  /** The same lines as written (JSON.parse rounds integers past 2^53). */
  lines: string[]
  /** Resolves with the first log line matching, waiting up to `ms`. */
  waitForLog: (match: (l: LogLine) => boolean, ms?: number) => Promise<LogLine>
  /** Its tracing, when the config's `tracing:` block turns it on. */
  tracing: Tracing | null
  /** New routes and pools from a config-shaped object, as SIGHUP does. */
  reload: (raw: Record<string, unknown>) => void
  /** Each origin's health and load now, as /origins reads it. */
  health: () => MemberHealth[]
  close: () => Promise<void>
}

/**
 * Starts a proxy from a config-file-shaped object (it goes through the real schema); with
 * listen.tls, an HTTPS one. `store`: Always online's, to look into.
 */
export async function startProxy (raw: Record<string, unknown>, store?: StaleStore): Promise<TestProxy> {
  const config = resolve(validate(raw), false)
  const logs: LogLine[] = []
  const lines: string[] = []
  const waiters: Array<{ match: (l: LogLine) => boolean, resolve: (l: LogLine) => void }> = []
  const sink = new Writable({
    write (chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split('\n')) {
        if (line.trim() === '') continue
        const parsed = JSON.parse(line) as LogLine
        logs.push(parsed)
        lines.push(line)
        for (const w of [...waiters]) {
          if (w.match(parsed)) { waiters.splice(waiters.indexOf(w), 1); w.resolve(parsed) }
        }
      }
      cb()
    }
  })
  const logger = createLogger('info', 'json', sink)
  let reload: ((edge: Config['edge']) => void) | null = null
  let health: () => MemberHealth[] = () => []
  const front = config.front === null ? null : new TlsFront(config.front, logger)
  const tracing = config.tracing === null ? null : startTracing(config.tracing, logger, 'test')
  const app = await buildServer({ ...config.edge, store, tracing: tracing?.edge ?? null, exposeReload: r => { reload = r }, exposeHealth: h => { health = h } }, logger, config.client, front)
  await app.listen({ host: '127.0.0.1', port: 0, backlog: config.listen.backlog })
  const port = (app.server.address() as AddressInfo).port
  return {
    url: `${front === null ? 'http' : 'https'}://127.0.0.1:${port}`,
    port,
    app,
    config,
    logs,
    lines,
    waitForLog: (match, ms = 5000) => {
      const found = logs.find(match)
      if (found !== undefined) return Promise.resolve(found)
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('log line not seen')), ms)
        waiters.push({ match, resolve: l => { clearTimeout(timer); resolve(l) } })
      })
    },
    tracing,
    reload: next => reload?.(resolve(validate(next), false).edge),
    health: () => health(),
    close: async () => { await app.close(); await tracing?.shutdown() }
  }
}

/** A client with its own connection pool, so tests never share sockets by accident. */
export const client = new Agent({ keepAliveTimeout: 10, pipelining: 0 })

export interface Got { status: number, headers: Record<string, string>, body: string, ms: number }

/** `fresh`: a connection of its own, closed after (with --workers, each goes to the next worker). */
export async function get (url: string, opts: { method?: string, headers?: Record<string, string>, body?: string, fresh?: boolean } = {}): Promise<Got> {
  const start = performance.now()
  const res = await undiciRequest(url, { dispatcher: client, method: (opts.method ?? 'GET') as 'GET', headers: opts.headers, body: opts.body, reset: opts.fresh === true })
  const body = await res.body.text()
  return { status: res.statusCode, headers: res.headers as Record<string, string>, body, ms: performance.now() - start }
}

export const failureFor = (ray: string) => (l: LogLine): boolean => l.msg === 'origin failure' && l.ray_id === ray
export const accessFor = (ray: string) => (l: LogLine): boolean => l.msg === 'access' && l.ray_id === ray
export const rayOf = (g: Got): string => String(g.headers['cf-ray']).slice(0, 16)
