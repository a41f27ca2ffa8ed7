// What may be configured, and with what defaults: one TypeBox schema is the source of
// the types, the validation and the documented defaults (config.example.yaml mirrors
// it; a test checks the example file loads and names every key).

import { Type, type Static } from '@sinclair/typebox'

/** `250ms`, `15s`, `2m`. Bare numbers are refused: "15" could mean seconds or ms. */
const Duration = (def: string | undefined, description: string) =>
  Type.String({
    pattern: '^[0-9]+(\\.[0-9]+)?(ms|s|m)$',
    ...(def === undefined ? {} : { default: def }),
    description,
    errorMessage: 'a duration like 500ms, 15s or 2m'
  })

const OriginUrl = Type.String({ format: 'origin-url', description: 'http:// or https:// URL of an origin' })

const TlsSchema = Type.Object({
  verify: Type.Boolean({ default: true, description: 'verify origin certificates (strict); false makes 526 impossible' }),
  ca_file: Type.Optional(Type.String({ description: 'PEM file of extra CAs trusted for origins' })),
  servername: Type.Optional(Type.String({ description: 'SNI and certificate name to check; default the origin host' }))
}, { additionalProperties: false, default: {} })

const TimeoutsSchema = Type.Object({
  connect: Duration('15s', 'TCP handshake with the origin; no SYN-ACK in time → 522'),
  tls: Duration('10s', 'TLS handshake with the origin; failing or stalling → 525'),
  response: Duration('100s', 'from request sent to response headers; none in time → 524'),
  body_idle: Duration('100s', 'longest pause between two chunks of an origin response body'),
  keep_alive: Duration('4s', 'how long an idle origin connection is kept for reuse')
}, { additionalProperties: false, default: {} })

const RouteSchema = Type.Object({
  name: Type.Optional(Type.String({ description: 'label used in logs; default host+path' })),
  host: Type.String({ default: '*', description: 'exact host, *.example.com, or * for any' }),
  path: Type.String({ default: '/', pattern: '^/', description: 'path prefix; first matching route wins' }),
  origin: OriginUrl,
  strip_prefix: Type.Boolean({ default: false, description: 'remove the matched path prefix before forwarding' }),
  host_header: Type.Union([Type.Literal('origin'), Type.Literal('keep')], {
    default: 'origin', description: 'Host sent to the origin: the origin\'s own, or the client\'s'
  }),
  connect_timeout: Type.Optional(Duration(undefined, 'overrides timeouts.connect for this route')),
  response_timeout: Type.Optional(Duration(undefined, 'overrides timeouts.response for this route')),
  tls: Type.Optional(TlsSchema),
  fault_injection: Type.Optional(Type.Boolean({ description: 'overrides fault_injection for this route' }))
}, { additionalProperties: false })

export const ConfigSchema = Type.Object({
  origin: Type.Optional(Type.String({ format: 'origin-url', description: 'shortcut: one route * → this origin' })),
  routes: Type.Array(RouteSchema, { default: [] }),
  listen: Type.Object({
    host: Type.String({ default: '127.0.0.1', minLength: 1 }),
    port: Type.Integer({ default: 8080, minimum: 0, maximum: 65535 })
  }, { additionalProperties: false, default: {} }),
  edge: Type.Object({
    name: Type.String({ default: 'HPX', pattern: '^[A-Za-z0-9]{1,8}$', description: 'short code after the ray id' }),
    ray_header: Type.String({ default: 'cf-ray', pattern: '^[A-Za-z0-9-]+$' })
  }, { additionalProperties: false, default: {} }),
  timeouts: TimeoutsSchema,
  tls: TlsSchema,
  limits: Type.Object({
    max_response_header_size: Type.Integer({ default: 131072, minimum: 1024, description: 'bytes; larger origin headers → 520' })
  }, { additionalProperties: false, default: {} }),
  fault_injection: Type.Boolean({ default: false, description: 'honour x-highproxy-fault request headers' }),
  log: Type.Object({
    level: Type.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map(l => Type.Literal(l)), { default: 'info' }),
    format: Type.Union([Type.Literal('auto'), Type.Literal('json'), Type.Literal('pretty')], {
      default: 'auto', description: 'auto: pretty at a TTY, JSON otherwise'
    })
  }, { additionalProperties: false, default: {} })
}, { additionalProperties: false })

/** The file/env/flag shape, after defaults. */
export type ConfigInput = Static<typeof ConfigSchema>
export type RouteInput = Static<typeof RouteSchema>
export type TlsInput = Static<typeof TlsSchema>

/** The runtime shape: durations in ms, files read, the origin shortcut turned into a route. */
export interface TlsConfig {
  verify: boolean
  ca: string | undefined
  servername: string | undefined
}

export interface RouteConfig {
  name: string
  host: string
  path: string
  origin: URL
  stripPrefix: boolean
  hostHeader: 'origin' | 'keep'
  connectTimeoutMs: number
  responseTimeoutMs: number
  tls: TlsConfig
  faultInjection: boolean
}

export interface EdgeConfig {
  routes: RouteConfig[]
  edgeName: string
  rayHeader: string
  tlsTimeoutMs: number
  bodyIdleTimeoutMs: number
  keepAliveTimeoutMs: number
  maxResponseHeaderBytes: number
}

export interface Config {
  edge: EdgeConfig
  listen: { host: string, port: number }
  log: { level: string, format: 'json' | 'pretty' }
  /** Global values the routes were resolved from (printed at start). */
  connectTimeoutMs: number
  responseTimeoutMs: number
  tlsVerify: boolean
}
