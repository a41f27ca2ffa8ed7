#!/usr/bin/env node
// How highproxy is started: parse flags, load config, register the plugin, listen.
// Subcommands: `lab` (the fault lab alone) and `probe <url>` (dial one URL and explain).

import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { CONFIG_SETTING, SETTINGS, loadConfig } from './config/load.js'
import { nearest } from './config/nearest.js'
import { keysNeedingRestart } from './config/restart-keys.js'
import { endOfLifeWarning } from './runtime-check.js'
import type { Config, FrontDoor } from './config/schema.js'
import { startDemo, type Demo } from './demo.js'
import cluster from 'node:cluster'
import type { Logger } from 'pino'
import { answerPrimary, tellPrimary } from './admin/ipc.js'
import { createMetrics } from './admin/metrics.js'
import { RayStore } from './admin/rays.js'
import { startAdmin, type AdminServer } from './admin/server.js'
import { localView } from './admin/view.js'
import { StaleStore } from './cache/stale-store.js'
import { runPrimary } from './cluster.js'
import { createLogger } from './log/log.js'
import { hangupMeans, onShutdown, tolerateLostOutput } from './lifecycle.js'
import type { MemberHealth } from './origin/pool.js'
import { buildServer } from './listen/server.js'
import { startFront, type Front } from './listen/tls/start.js'

const VERSION = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version

export const EXIT_CONFIG = 2
export const EXIT_RUNTIME = 1

const USAGE = `highproxy ${VERSION}: an edge reverse proxy that answers origin failures like Cloudflare's edge

Usage:
  highproxy [options]              proxy to --origin (or the routes of --config);
                                   with neither, run the demo with a built-in origin and fault lab
  highproxy lab [--json]           start one real faulty origin per edge status on loopback
  highproxy probe <url> [--json]   dial <url> phase by phase and say what the proxy would answer
  highproxy toxiproxy [--host 127.0.0.1] [--port 8474]
                                   serve Toxiproxy's API and toxics (docs/toxiproxy.md)

Options:
${[...SETTINGS.map(s => [`--${s.flag}${s.kind === 'boolean' ? '' : ' <value>'}`, s.help, s.env]),
  [`--${CONFIG_SETTING.flag} <file>`, 'YAML config file (see config.example.yaml)', CONFIG_SETTING.env]]
  .map(([flag, help, env]) => `  ${(flag as string).padEnd(28)}${help as string}  [${env as string}]`).join('\n')}
  --json                      lab, probe: print JSON
  --help                      show this help
  --version                   show the version

Durations take ms, s or m (500ms, 15s, 2m). Precedence: flag > env > file > default.
`

const OPTIONS = {
  ...Object.fromEntries(SETTINGS.map(s => [s.flag, { type: s.kind }])),
  [CONFIG_SETTING.flag]: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'v' }
} as const

/** One line on stderr and an exit code: how every startup problem ends. */
export function fail (message: string, code: number): never {
  process.stderr.write(`highproxy: ${message}\n`)
  process.exit(code)
}

function parse (argv: string[]): ReturnType<typeof parseArgs<{ options: typeof OPTIONS, allowPositionals: true }>> {
  try {
    return parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true })
  } catch (err) {
    return fail(`${parseProblem(err as NodeJS.ErrnoException)} (see --help)`, EXIT_CONFIG)
  }
}

/**
 * One line for what parseArgs refused. Its own text for an unknown flag has a hint about
 * `--` and unbalanced quotes; name the flag and the nearest known one instead.
 */
function parseProblem (err: NodeJS.ErrnoException): string {
  const unknown = err.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' ? /'(-[^']*)'/.exec(err.message)?.[1] : undefined
  if (unknown === undefined) return err.message.split('\n')[0] as string
  const near = nearest(unknown.replace(/^-+/, '').split('=')[0] as string, Object.keys(OPTIONS))
  return `unknown flag ${unknown}${near === null ? '' : `; did you mean --${near}?`}`
}

function loadOrExit (flags: Record<string, string | boolean | undefined>): Config {
  try {
    return loadConfig({ flags, env: process.env, isTTY: process.stdout.isTTY === true })
  } catch (err) {
    if ((err as { code?: string }).code === 'HPX_ERR_CONFIG') fail((err as Error).message, EXIT_CONFIG)
    throw err
  }
}

function printDemo (config: Config, demo: Demo, base: string): void {
  // A self-signed certificate is trusted by nobody: curl needs -k.
  const curl = base.startsWith('https:') ? 'curl -ik' : 'curl -i'
  // Short enough, with the one start-up line, for a 24-row terminal.
  const lines = [
    `highproxy demo: ${base} in front of a built-in origin and a real fault lab (connect timeout ` +
      `${config.connectTimeoutMs} ms, response timeout ${config.responseTimeoutMs} ms). Try:`,
    ...demo.links.map(l => `${`  ${curl} ${base}${l.path}`.padEnd(48)}  ` +
      `${l.status ?? 200}  ${l.available ? l.description : `unavailable here: ${l.reason ?? ''}`}`),
    `  ${curl} -H 'accept: application/json' ${base}/lab/522`,
    `  open ${base}/lab in a browser for the list`
  ]
  process.stderr.write(lines.join('\n') + '\n')
}

type Flags = Record<string, string | boolean | undefined>

/**
 * SIGHUP with a config file: new routes and pools for new requests. A bad file is refused
 * and the old config kept — also one that routes nothing (empty, or caught half-written
 * during a deploy), which would answer every request 404.
 */
function reloader (flags: Flags, logger: Logger, started: Config, reload: (edge: Config['edge']) => void,
  reloadFront: (front: FrontDoor | null) => void): () => void {
  return () => {
    try {
      // Certificates are read and checked here too: a bad one refuses the whole reload.
      const next = loadConfig({ flags, env: process.env, isTTY: process.stdout.isTTY === true })
      if (next.edge.routes.length === 0) {
        logger.error({ error: 'it has no routes and no origin' }, 'config reload rejected, old config kept')
        return
      }
      reload(next.edge)
      reloadFront(next.front)
      const restart = keysNeedingRestart(started, next)
      if (restart.length === 0) logger.info({ routes: describeRoutes(next), restart_needed: [] }, 'config reloaded')
      else logger.warn({ routes: describeRoutes(next), restart_needed: restart }, `config reloaded, except what needs a restart (not applied): ${restart.join(', ')}`)
    } catch (err) {
      const e = err as { code?: string, message: string }
      logger.error({ error: e.message }, e.code === 'HPX_ERR_CONFIG' ? 'config reload rejected, old config kept' : 'config reload failed, old config kept')
    }
  }
}

function listenProblem (what: string, host: string, port: number, err: unknown): string {
  const e = err as NodeJS.ErrnoException
  return `cannot listen on ${host}:${port}${what}: ${e.code === 'EADDRINUSE' ? 'address already in use' : e.message}`
}

const describeRoutes = (config: Config): string[] =>
  config.edge.routes.map(r => `${r.host}${r.path} → ${r.pool.origins.map(o => o.origin).join(' ')}`)

async function serve (flags: Flags): Promise<void> {
  let config = loadOrExit(flags)
  const logger = createLogger(config.log.level, config.log.format)
  const eol = cluster.isPrimary ? endOfLifeWarning(process.version) : null
  if (eol !== null) logger.warn(eol)
  const hangup = hangupMeans((flags[CONFIG_SETTING.flag] as string | undefined) ?? process.env[CONFIG_SETTING.env],
    config.front !== null && !config.front.selfsigned)
  if (config.workers > 1 && cluster.isPrimary) {
    const { host, port } = config.admin
    await runPrimary(config.workers, logger, config.admin, hangup).catch(err => fail(listenProblem(' (admin)', host, port, err), EXIT_RUNTIME))
    return
  }
  let draining = false
  let health: () => MemberHealth[] = () => []
  let reload: (edge: Config['edge']) => void = () => {}
  const rays = new RayStore(config.admin.rayBuffer)
  let certificates: () => Array<{ name: string, notAfter: number }> = () => []
  // Each process that serves requests exports its own spans (with --workers, every worker).
  // The SDK and its exporters are loaded only when tracing is on.
  const tracing = config.tracing === null ? null : (await import('./tracing.js')).startTracing(config.tracing, logger, VERSION)
  const metrics = createMetrics({ originHealth: () => health(), certificates: () => certificates(), ...(tracing === null ? {} : { spans: tracing.counts }) })
  // A worker has no admin listener of its own: the primary's asks every worker.
  const store = new StaleStore(config.edge.cache.maxBytes, config.edge.cache.maxEntryBytes)
  if (cluster.isWorker) {
    answerPrimary({
      metrics: () => metrics.registry.getMetricsAsJSON(),
      ray: q => rays.get(q.ray),
      ping: () => true,
      cache: () => store.summary(),
      purge: q => store.purge(q.route, q.path),
      origins: () => health()
    })
  }
  let demo: Demo | null = null
  if (config.edge.routes.length === 0) {
    demo = await startDemo(config)
    config = demo.config
  }

  const front: Front | null = config.front === null ? null : await startFront(config.front, logger)
  if (front !== null) certificates = front.expiries
  const app = await buildServer({
    ...config.edge,
    onAccess: metrics.observeAccess,
    onFailure: record => { rays.add(record); metrics.observeFailure(record) },
    store,
    tracing: tracing?.edge ?? null,
    exposeHealth: h => { health = h },
    exposeReload: r => { reload = r }
  }, logger, config.client, front?.tls ?? null)

  const failListen = async (what: string, host: string, port: number, err: unknown): Promise<never> => {
    await app.close()
    await demo?.close()
    return fail(listenProblem(what, host, port, err), EXIT_RUNTIME)
  }
  try {
    await app.listen({ host: config.listen.host, port: config.listen.port, backlog: config.listen.backlog })
  } catch (err) {
    await failListen('', config.listen.host, config.listen.port, err)
  }
  let admin: AdminServer | null = null
  if (config.admin.enabled && cluster.isPrimary) {
    try {
      const view = localView({ registry: metrics.registry, rays, cache: store, ready: () => !draining, origins: () => health() })
      admin = await startAdmin({ host: config.admin.host, port: config.admin.port, view, logger })
    } catch (err) {
      await failListen(' (admin)', config.admin.host, config.admin.port, err)
    }
  }

  const address = app.server.address()
  const base = typeof address === 'object' && address !== null
    ? `${front === null ? 'http' : 'https'}://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`
    : String(address)
  if (front !== null && typeof address === 'object' && address !== null) {
    await front.listenRedirect(address.port, config.edge).catch(err =>
      failListen(' (redirect)', config.front?.redirect?.host ?? '', config.front?.redirect?.port ?? 0, err))
  }
  front?.startAcme({ onFailure: metrics.acmeFailure })
  // The pretty format shows this line as one short line (log/pretty-log.ts); the routes and
  // certificates are for JSON readers, and for a person at debug level.
  logger.info({ listen: base, admin: admin?.url ?? null, tracing: config.tracing === null ? null : { url: config.tracing.url, protocol: config.tracing.protocol, sampler: config.tracing.sampler, ratio: config.tracing.samplerArg }, redirect: front?.redirectUrl ?? null, pid: process.pid, routes: describeRoutes(config), ...front?.describe() }, 'highproxy listening')
  logger.debug({ routes: describeRoutes(config), ...front?.describe() }, 'highproxy configuration')
  // Last, so that on a terminal the list of things to try is what stays on screen.
  if (demo !== null && cluster.isPrimary) printDemo(config, demo, base)
  if (cluster.isWorker) tellPrimary('listening')

  onShutdown({ graceMs: config.shutdownGraceMs, logger, hangup, reload: reloader(flags, logger, config, reload, next => front?.reload(next)) }, async ({ signal, err }) => {
    draining = true
    if (cluster.isWorker) tellPrimary('draining')
    if (err !== undefined) logger.error({ err }, 'fatal error, shutting down')
    else logger.info({ signal, grace_ms: config.shutdownGraceMs }, 'draining: no new connections, in-flight requests finish')
    await Promise.all([app.close(), front?.close()])
    await admin?.close()
    await demo?.close()
    // The spans of the last requests are exported before the exit (bounded by the exporter's timeout).
    await tracing?.shutdown()
    logger.info('stopped')
    logger.flush()
  })
}

async function main (argv: string[]): Promise<void> {
  tolerateLostOutput()
  const { values, positionals } = parse(argv)
  if (values.help === true) { process.stdout.write(USAGE); return }
  if (values.version === true) { process.stdout.write(`${VERSION}\n`); return }
  const [command, ...rest] = positionals
  const flags = values as Record<string, string | boolean | undefined>
  switch (command) {
    case undefined: return serve(flags)
    case 'lab': return (await import('./lab/command.js')).runLab(values.json === true)
    case 'probe': return (await import('./probe.js')).runProbe(rest, flags, loadOrExit(flags))
    // Its own --host and --port (the flags only: HIGHPROXY_HOST/PORT are the proxy's).
    case 'toxiproxy': return (await import('./lab/toxiproxy/command.js')).runToxiproxy({ host: flags.host as string | undefined, port: flags.port as string | undefined }, fail)
    default: fail(`unknown command "${command}" (see --help)`, EXIT_CONFIG)
  }
}

main(process.argv.slice(2)).catch(err => {
  process.stderr.write(`highproxy: ${(err as Error).stack ?? String(err)}\n`)
  process.exit(EXIT_RUNTIME)
})
