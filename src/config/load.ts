// Where configuration comes from and how it is checked: flag > env > file > default.
// Every problem becomes a ConfigError naming the key (or file) and what is wrong.

import { readFileSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { FormatRegistry, type Static, type TSchema } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'
import { parse as parseYaml } from 'yaml'
import { ConfigError } from '../status/errors.js'
import proxyaddr from '@fastify/proxy-addr'
import { checkRules } from './rules.js'
import { durationMs } from './duration.js'
import { resolveFrontDoor } from './front-door.js'
import { nearest } from './nearest.js'
import { applyOtelEnv, resolveTracing } from './tracing.js'
import {
  AdaptiveKnobs, ConfigSchema, type AdaptiveConfig, type Config, type ConfigInput, type HealthConfig, type PoolConfig, type PoolInput, type RouteConfig,
  type RouteInput, type TlsConfig, type TlsInput
} from './schema.js'

FormatRegistry.Set('origin-url', value => {
  try {
    const url = new URL(value)
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.hostname !== ''
  } catch {
    return false
  }
})

/** One setting reachable from the command line and the environment. */
export interface Setting {
  flag: string
  env: string
  /** Where it lands in the config file's shape. */
  path: string[]
  /** How the command line parses it (a boolean flag takes no value). */
  kind: 'string' | 'boolean'
  /** What the text of a flag or env value means: whole numbers and booleans are read strictly. */
  value: 'text' | 'integer' | 'boolean' | 'list'
  help: string
}

export const SETTINGS: readonly Setting[] = [
  { flag: 'origin', env: 'HIGHPROXY_ORIGIN', path: ['origin'], kind: 'string', value: 'text', help: 'proxy every request to this origin URL' },
  { flag: 'port', env: 'HIGHPROXY_PORT', path: ['listen', 'port'], kind: 'string', value: 'integer', help: 'port to listen on (default 8080)' },
  { flag: 'host', env: 'HIGHPROXY_HOST', path: ['listen', 'host'], kind: 'string', value: 'text', help: 'address to listen on (default 127.0.0.1)' },
  { flag: 'connect-timeout', env: 'HIGHPROXY_CONNECT_TIMEOUT', path: ['timeouts', 'connect'], kind: 'string', value: 'text', help: 'TCP connect timeout, e.g. 15s (default 15s) → 522' },
  { flag: 'response-timeout', env: 'HIGHPROXY_RESPONSE_TIMEOUT', path: ['timeouts', 'response'], kind: 'string', value: 'text', help: 'time to response headers (default 120s) → 524' },
  { flag: 'log-format', env: 'HIGHPROXY_LOG_FORMAT', path: ['log', 'format'], kind: 'string', value: 'text', help: 'json | pretty (default: pretty at a TTY, else json)' },
  { flag: 'fault-injection', env: 'HIGHPROXY_FAULT_INJECTION', path: ['fault_injection'], kind: 'boolean', value: 'boolean', help: 'honour x-highproxy-fault request headers (default off)' },
  { flag: 'admin-port', env: 'HIGHPROXY_ADMIN_PORT', path: ['admin', 'port'], kind: 'string', value: 'integer', help: 'admin listener port for /healthz /readyz /metrics /rays (default 9090)' },
  { flag: 'admin-host', env: 'HIGHPROXY_ADMIN_HOST', path: ['admin', 'host'], kind: 'string', value: 'text', help: 'admin listener address (default 127.0.0.1; 0.0.0.0 in a container for probes)' },
  { flag: 'tls-cert', env: 'HIGHPROXY_TLS_CERT', path: ['listen', 'tls', 'cert'], kind: 'string', value: 'text', help: 'PEM certificate file: serve HTTPS (h2 and http/1.1) on the port' },
  { flag: 'tls-key', env: 'HIGHPROXY_TLS_KEY', path: ['listen', 'tls', 'key'], kind: 'string', value: 'text', help: 'PEM private key file of --tls-cert' },
  { flag: 'tls-selfsigned', env: 'HIGHPROXY_TLS_SELFSIGNED', path: ['listen', 'tls', 'selfsigned'], kind: 'boolean', value: 'boolean', help: 'serve HTTPS with a throwaway self-signed certificate for localhost' },
  { flag: 'acme-domain', env: 'HIGHPROXY_ACME_DOMAIN', path: ['listen', 'tls', 'acme', 'domains'], kind: 'string', value: 'list', help: 'obtain and renew certificates for these names by ACME (comma-separated)' },
  { flag: 'acme-email', env: 'HIGHPROXY_ACME_EMAIL', path: ['listen', 'tls', 'acme', 'email'], kind: 'string', value: 'text', help: 'contact email of the ACME account' },
  { flag: 'acme-directory', env: 'HIGHPROXY_ACME_DIRECTORY', path: ['listen', 'tls', 'acme', 'directory'], kind: 'string', value: 'text', help: 'ACME directory URL, letsencrypt or letsencrypt-staging (default letsencrypt)' },
  { flag: 'acme-storage', env: 'HIGHPROXY_ACME_STORAGE', path: ['listen', 'tls', 'acme', 'storage'], kind: 'string', value: 'text', help: 'directory for ACME keys and certificates (default ~/.local/share/highproxy/acme)' },
  { flag: 'workers', env: 'HIGHPROXY_WORKERS', path: ['workers'], kind: 'string', value: 'integer', help: 'processes serving the port: a number or auto (default 1)' }
]

export const CONFIG_SETTING = { flag: 'config', env: 'HIGHPROXY_CONFIG' } as const

type Tree = Record<string, unknown>

function setPath (tree: Tree, path: string[], value: unknown): void {
  let node = tree
  for (const key of path.slice(0, -1)) {
    const next = node[key]
    if (typeof next !== 'object' || next === null || Array.isArray(next)) node[key] = {}
    node = node[key] as Tree
  }
  node[path[path.length - 1] as string] = value
}

function readFile (file: string): Tree {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    throw new ConfigError(file, `cannot read file (${(err as NodeJS.ErrnoException).code ?? 'error'})`)
  }
  let doc: unknown
  try {
    doc = parseYaml(text)
  } catch (err) {
    throw new ConfigError(file, `invalid YAML: ${(err as Error).message.split('\n')[0]}`)
  }
  if (doc === null || doc === undefined) return {}
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new ConfigError(file, 'must be a YAML mapping of keys')
  return doc as Tree
}

type Described = TSchema & { errorMessage?: string, format?: string, anyOf?: Array<{ const?: unknown }>, properties?: Record<string, unknown> }

function describe (schema: Described, message: string, key: string): string {
  if (schema.errorMessage !== undefined) return `expected ${schema.errorMessage}`
  if (schema.format === 'origin-url') return 'expected an http:// or https:// URL'
  if (message === 'Unexpected property') {
    // TypeBox reports the object that has no such key: its keys are the candidates.
    const near = nearest(key.slice(key.lastIndexOf('.') + 1), Object.keys(schema.properties ?? {}))
    return near === null ? 'unknown key' : `unknown key; did you mean ${key.slice(0, key.lastIndexOf('.') + 1)}${near}?`
  }
  // A choice between fixed values (log.format, log.level…): name them.
  const choices = schema.anyOf?.map(s => s.const)
  if (choices !== undefined && choices.length > 0 && choices.every(c => typeof c === 'string' || typeof c === 'number')) {
    return `expected one of ${choices.join(', ')}`
  }
  return message.charAt(0).toLowerCase() + message.slice(1)
}

/**
 * The text of a flag or env value as the type its key wants. Strict on purpose: "1.5"
 * or "1e3" for a port stays text and fails validation rather than becoming 1.
 */
function fromText (setting: Setting, text: string | boolean): unknown {
  if (typeof text === 'boolean') return text
  switch (setting.value) {
    case 'text': return text
    // Anything else (workers' "auto") stays text for the schema to judge.
    case 'integer': return /^[0-9]+$/.test(text) ? Number(text) : text
    case 'boolean': return text === 'true' || text === '1' ? true : text === 'false' || text === '0' ? false : text
    case 'list': return text.split(',').map(item => item.trim()).filter(item => item !== '')
  }
}

/** Defaults, and the first error as one line. File values are taken as written, never coerced. */
export function validate (raw: Tree, origins: ReadonlyMap<string, string> = new Map()): ConfigInput {
  const converted = Value.Default(ConfigSchema, structuredClone(raw))
  const first = Value.Errors(ConfigSchema, converted).First()
  if (first !== undefined) {
    const path = first.path.slice(1).replaceAll('/', '.')
    const from = origins.get(path)
    const key = (path || '(top level)') + (from === undefined ? '' : ` (from ${from})`)
    const shown = first.value === undefined ? '' : ` (got ${JSON.stringify(first.value)})`
    throw new ConfigError(key, describe(first.schema as Described, first.message, path) + shown)
  }
  return converted as ConfigInput
}

function readCa (file: string | undefined, key: string): string | undefined {
  if (file === undefined) return undefined
  try {
    return readFileSync(file, 'utf8')
  } catch (err) {
    throw new ConfigError(key, `cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`)
  }
}

function resolveTls (tls: TlsInput, key: string): TlsConfig {
  return { verify: tls.verify, ca: readCa(tls.ca_file, `${key}.ca_file`), servername: tls.servername }
}

const flat = (headers: Record<string, string> | undefined): string[] =>
  Object.entries(headers ?? {}).flatMap(([name, value]) => [name.toLowerCase(), value])

function resolveHealth (health: PoolInput['health'], passive: boolean): HealthConfig {
  const check = health.check
  return {
    passive,
    failures: health.failures,
    cooldownMs: durationMs(health.cooldown),
    check: check === undefined
      ? null
      : { path: check.path, intervalMs: durationMs(check.interval), timeoutMs: durationMs(check.timeout), expectStatus: check.expect_status }
  }
}

function resolvePool (pool: PoolInput, input: ConfigInput, globalTls: TlsConfig, key: string, passive = true): PoolConfig {
  const connections = { ...input.connections, ...pool.connections }
  return {
    name: pool.name,
    origins: pool.origins.map(o => new URL(o)),
    policy: pool.policy,
    connectTimeoutMs: durationMs(pool.connect_timeout ?? input.timeouts.connect),
    responseTimeoutMs: durationMs(pool.response_timeout ?? input.timeouts.response),
    tls: pool.tls === undefined ? globalTls : resolveTls(pool.tls, `${key}.tls`),
    connections: {
      reuse: connections.reuse,
      maxPerOrigin: connections.max_per_origin,
      maxQueuePerOrigin: connections.max_queue_per_origin,
      maxPendingConnects: connections.max_pending_connects,
      // One client's share of an origin: a quarter by default, so three others still fit.
      maxPerClient: connections.max_per_client ?? Math.max(1, Math.floor(connections.max_per_origin / 4))
    },
    health: resolveHealth(pool.health, passive),
    retryBudget: { percent: pool.retry_budget.percent, minRetries: pool.retry_budget.min_retries },
    adaptive: resolveAdaptive(pool.adaptive_concurrency, `${key}.adaptive_concurrency`),
    slowStartMs: slowStart(pool.slow_start, `${key}.slow_start`)
  }
}

/** The knobs of `adaptive_concurrency`, with their defaults; a wrong one is named by its key. */
function validateAdaptive (raw: Record<string, unknown>, key: string): Static<typeof AdaptiveKnobs> {
  const knobs = Value.Default(AdaptiveKnobs, structuredClone(raw))
  const first = Value.Errors(AdaptiveKnobs, knobs).First()
  if (first !== undefined) {
    const shown = first.value === undefined ? '' : ` (got ${JSON.stringify(first.value)})`
    const at = `${key}${first.path.replaceAll('/', '.')}`
    throw new ConfigError(at, describe(first.schema, first.message, at) + shown)
  }
  return knobs as Static<typeof AdaptiveKnobs>
}

/** `adaptive_concurrency`: true takes every default, an object its own knobs. */
function resolveAdaptive (input: PoolInput['adaptive_concurrency'], key: string): AdaptiveConfig | null {
  if (input === false) return null
  const k = validateAdaptive(input === true ? {} : input, key)
  if (k.min_limit > k.max_limit) throw new ConfigError(`${key}.min_limit`, `must not be above max_limit (${k.max_limit})`)
  const initial = Math.min(k.max_limit, Math.max(k.min_limit, k.initial_limit))
  return {
    queueTimeoutMs: durationMs(k.queue_timeout),
    maxQueue: k.max_queue,
    minLimit: k.min_limit,
    maxLimit: k.max_limit,
    initialLimit: initial,
    buffer: k.buffer,
    sampleIntervalMs: durationMs(k.sample_interval),
    minRttIntervalMs: durationMs(k.min_rtt_interval),
    minRttSamples: k.min_rtt_samples,
    minRttConcurrency: Math.min(k.max_limit, k.min_rtt_concurrency)
  }
}

const DAY_MS = 86_400_000

/** Slow start may be off (0s), never longer than a day: an origin would stay half-used for days. */
function slowStart (value: string, key: string): number {
  const ms = durationMs(value)
  if (ms > DAY_MS) throw new ConfigError(key, `${value} is longer than a day (24h at most)`)
  return ms
}

/** A route names a pool, or gives one origin (an implicit pool of one, with the route's timeouts). */
function poolOf (route: RouteInput, key: string, pools: Map<string, PoolConfig>, input: ConfigInput,
  globalTls: TlsConfig): PoolConfig {
  if (route.pool !== undefined && route.origin !== undefined) throw new ConfigError(key, 'give either pool or origin, not both')
  if (route.pool !== undefined) {
    for (const k of ['connect_timeout', 'response_timeout', 'tls'] as const) {
      if (route[k] !== undefined) throw new ConfigError(`${key}.${k}`, `set it on pools.${route.pool}, not on a route that names a pool`)
    }
    const pool = pools.get(route.pool)
    if (pool === undefined) throw new ConfigError(`${key}.pool`, `unknown pool "${route.pool}"`)
    return pool
  }
  if (route.origin === undefined) throw new ConfigError(key, 'needs a pool or an origin')
  const implicit = validate({ pools: [{ name: 'route', origins: [route.origin] }] }).pools[0] as PoolInput
  return resolvePool({
    ...implicit,
    name: route.name ?? `${route.host}${route.path}`,
    connect_timeout: route.connect_timeout,
    response_timeout: route.response_timeout,
    tls: route.tls
  }, input, globalTls, key, false)
}

function resolveRoute (route: RouteInput, index: number, input: ConfigInput, globalTls: TlsConfig,
  pools: Map<string, PoolConfig>): RouteConfig {
  const key = `routes.${index}`
  return {
    name: route.name ?? `${route.host}${route.path}`,
    host: route.host.toLowerCase(),
    path: route.path,
    pool: poolOf(route, key, pools, input, globalTls),
    stripPrefix: route.strip_prefix,
    hostHeader: route.host_header,
    requestHeaders: flat(route.request_headers),
    responseHeaders: flat(route.response_headers),
    statusRewrite: new Map(Object.entries(route.status_rewrite ?? {}).map(([from, to]) => [Number(from), to])),
    originErrors: route.origin_errors,
    faultInjection: route.fault_injection ?? input.fault_injection,
    maxBodyBytes: route.max_body_size ?? input.limits.max_body_size,
    upgrades: route.upgrades.map(u => u.toLowerCase()),
    staleIfError: route.stale_if_error === undefined
      ? null
      : { maxAgeMs: durationMs(route.stale_if_error.max_age), statuses: new Set(route.stale_if_error.statuses), serveWhenDown: route.stale_if_error.serve_when_down }
  }
}

function resolveClientIp (input: ConfigInput): Config['edge']['clientIp'] {
  const trusted = input.client_ip.trusted_proxies
  try {
    proxyaddr.compile(trusted)
  } catch (err) {
    throw new ConfigError('client_ip.trusted_proxies', `expected IP addresses or CIDRs (${(err as Error).message})`)
  }
  return { trustedProxies: trusted, header: input.client_ip.header === false ? null : input.client_ip.header.toLowerCase() }
}

export function resolve (input: ConfigInput, isTTY: boolean): Config {
  checkRules(input)
  const globalTls = resolveTls(input.tls, 'tls')
  const pools = new Map<string, PoolConfig>()
  input.pools.forEach((p, i) => {
    if (pools.has(p.name)) throw new ConfigError(`pools.${i}.name`, `pool "${p.name}" is defined twice`)
    pools.set(p.name, resolvePool(p, input, globalTls, `pools.${i}`))
  })
  const routes = input.routes.map((r, i) => resolveRoute(r, i, input, globalTls, pools))
  if (input.origin !== undefined) {
    routes.push(resolveRoute(validate({ routes: [{ origin: input.origin, name: 'origin' }] }).routes[0] as RouteInput,
      routes.length, input, globalTls, pools))
  }
  return {
    edge: {
      routes,
      pools: [...new Set([...pools.values(), ...routes.map(r => r.pool)])],
      edgeName: input.edge.name,
      rayHeader: input.edge.ray_header.toLowerCase(),
      receivedStatus: input.edge.received_status,
      logFields: input.log.fields,
      tlsTimeoutMs: durationMs(input.timeouts.tls),
      bodyIdleTimeoutMs: durationMs(input.timeouts.body_idle),
      originWriteTimeoutMs: durationMs(input.timeouts.origin_write),
      keepAliveTimeoutMs: durationMs(input.timeouts.keep_alive),
      maxResponseHeaderBytes: input.limits.max_response_header_size,
      maxHeaderCount: input.limits.max_header_count,
      maxRequestHeaderBytes: input.limits.max_request_header_size,
      maxUrlLength: input.limits.max_url_length,
      maxPipelined: input.limits.max_pipelined_requests,
      clientRequestTimeoutMs: durationMs(input.timeouts.client_request),
      clientWriteTimeoutMs: durationMs(input.timeouts.client_write),
      escapedSlashes: input.escaped_slashes,
      clientIp: resolveClientIp(input),
      cache: { maxBytes: input.cache.max_bytes, maxEntryBytes: input.cache.max_entry_bytes },
      hsts: input.listen.tls.hsts ?? null
    },
    client: {
      maxHeaderBytes: input.limits.max_request_header_size,
      headersTimeoutMs: durationMs(input.timeouts.client_headers),
      requestTimeoutMs: durationMs(input.timeouts.client_request),
      keepAliveTimeoutMs: durationMs(input.timeouts.client_keep_alive),
      maxConnections: input.limits.max_connections,
      maxConnectionsPerIp: input.limits.max_connections_per_ip
    },
    listen: { host: input.listen.host, port: input.listen.port, backlog: input.listen.backlog },
    front: resolveFrontDoor(input.listen),
    admin: { enabled: input.admin.enabled, host: input.admin.host, port: input.admin.port, rayBuffer: input.admin.ray_buffer },
    workers: input.workers === 'auto' ? availableParallelism() : input.workers,
    shutdownGraceMs: durationMs(input.timeouts.shutdown_grace),
    log: { level: input.log.level, format: input.log.format === 'auto' ? (isTTY ? 'pretty' : 'json') : input.log.format },
    connectTimeoutMs: durationMs(input.timeouts.connect),
    responseTimeoutMs: durationMs(input.timeouts.response),
    tls: globalTls,
    tracing: resolveTracing(input.tracing)
  }
}

export interface Sources {
  /** Parsed flag values by flag name (strings, or true for booleans). */
  flags: Record<string, string | boolean | undefined>
  env: NodeJS.ProcessEnv
  isTTY: boolean
}

/** Layer file, env and flags (in that order, later wins), validate, resolve. */
export function loadConfig ({ flags, env, isTTY }: Sources): Config {
  const file = (flags[CONFIG_SETTING.flag] as string | undefined) ?? env[CONFIG_SETTING.env]
  const tree: Tree = file === undefined || file === '' ? {} : readFile(file)
  const origins = new Map<string, string>()
  for (const s of SETTINGS) {
    const fromEnv = env[s.env]
    if (fromEnv === undefined || fromEnv === '') continue
    setPath(tree, s.path, fromText(s, fromEnv))
    origins.set(s.path.join('.'), s.env)
  }
  applyOtelEnv(tree, env, origins)
  for (const s of SETTINGS) {
    const fromFlag = flags[s.flag]
    if (fromFlag === undefined) continue
    setPath(tree, s.path, fromText(s, fromFlag))
    origins.set(s.path.join('.'), `--${s.flag}`)
  }
  return resolve(validate(tree, origins), isTTY)
}
