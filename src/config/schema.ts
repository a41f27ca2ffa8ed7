// What may be configured, and with what defaults: one TypeBox schema is the source of
// the types, the validation and the documented defaults (config.example.yaml mirrors
// it; a test checks the example file loads and names every key).

import { Type, type Static } from '@sinclair/typebox'
import { TracingSchema, type TracingConfig } from './tracing.js'

/**
 * The access line's two shapes (`log.fields`). A configuration fact, so it lives here and
 * log/log-schema.ts reads it: config/ sits below log/.
 */
export const LOG_FIELDS = ['highproxy', 'cloudflare'] as const
export type LogFields = typeof LOG_FIELDS[number]

/** `250ms`, `15s`, `2m`. Bare numbers are refused: "15" could mean seconds or ms. */
const Duration = (def: string | undefined, description: string) =>
  Type.String({
    // Zero is refused: a 0 ms connect timeout fails every request, a 0 ms response timeout means none.
    pattern: '^(?!0+(\\.0+)?(ms|s|m|h)$)[0-9]+(\\.[0-9]+)?(ms|s|m|h)$',
    ...(def === undefined ? {} : { default: def }),
    description,
    errorMessage: 'a duration above zero like 500ms, 15s, 2m or 1h'
  })

const OriginUrl = Type.String({ format: 'origin-url', description: 'http:// or https:// URL of an origin' })

const TlsFields = {
  verify: Type.Boolean({ default: true, description: 'verify origin certificates (strict); false makes 526 impossible' }),
  ca_file: Type.Optional(Type.String({ description: 'PEM file of extra CAs trusted for origins' })),
  servername: Type.Optional(Type.String({ description: 'SNI and certificate name to check; default the origin host' }))
}
/** The top-level block has defaults; pool and route blocks exist only when written. */
const TlsSchema = Type.Object(TlsFields, { additionalProperties: false, default: {} })
const TlsOverride = Type.Object(TlsFields, { additionalProperties: false })

/** The edge's own TLS, for clients (listen.tls): off until a certificate is given. */
const CertificatePair = Type.Object({
  cert: Type.String({ minLength: 1, description: 'PEM file of the certificate (and its chain); its subjectAltName DNS names (or CN) are what SNI picks it by' }),
  key: Type.String({ minLength: 1, description: 'PEM file of its private key' })
}, { additionalProperties: false })

/** listen.tls.acme: certificates obtained and renewed by the edge itself (listen/tls/acme.ts). */
const AcmeSchema = Type.Object({
  domains: Type.Array(Type.String({ minLength: 1 }), { minItems: 1, description: 'DNS names to obtain certificates for, one certificate each; turns TLS on' }),
  email: Type.Optional(Type.String({ minLength: 1, description: 'contact address of the ACME account (expiry warnings from the CA)' })),
  directory: Type.String({ default: 'letsencrypt', minLength: 1, description: 'ACME directory URL; letsencrypt (production) and letsencrypt-staging are shortcuts' }),
  directory_ca: Type.Optional(Type.String({ minLength: 1, description: 'PEM file of a CA trusted for the directory itself (a private ACME server)' })),
  storage: Type.Optional(Type.String({ minLength: 1, description: 'directory for the account key, certificates and keys (0700, files 0600); default $XDG_DATA_HOME/highproxy/acme, else ~/.local/share/highproxy/acme' })),
  challenges: Type.Optional(Type.Array(Type.Union([Type.Literal('http-01'), Type.Literal('tls-alpn-01')]), {
    minItems: 1, description: 'challenge types, in order of preference; default both where their listener exists (http-01 needs listen.tls.redirect)'
  })),
  renew_before: Type.Optional(Duration(undefined, 'renew when this much of the lifetime is left; default a third of the lifetime')),
  retry: Type.Object({
    first: Duration('1m', 'wait after a failed order or renewal; doubled after each failure'),
    max: Duration('6h', 'longest wait between tries')
  }, { additionalProperties: false, default: {} }),
  external_account_binding: Type.Optional(Type.Object({
    kid: Type.String({ minLength: 1, description: 'key identifier the CA gave' }),
    hmac: Type.String({ minLength: 1, description: 'base64url HMAC key the CA gave' })
  }, { additionalProperties: false, description: 'for CAs that need an existing account (RFC 8555 §7.3.4)' }))
}, { additionalProperties: false })
/**
 * Mozilla's "intermediate" server profile (ssl-config.mozilla.org, version 5.7): TLS 1.3's
 * three suites, and for TLS 1.2 only forward-secret AEAD suites (GCM, ChaCha20-Poly1305).
 * Node's own default list also offers TLS 1.2 CBC suites, which scanners flag (LUCKY13).
 * The DHE suites are offered only if a DH group is configured (Node sets none). TLS 1.3's
 * suites keep Node's default order (AES-256 first), which newer OpenSSL servers follow.
 */
export const INTERMEDIATE_CIPHERS = [
  'TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256', 'TLS_AES_128_GCM_SHA256',
  'ECDHE-ECDSA-AES128-GCM-SHA256', 'ECDHE-RSA-AES128-GCM-SHA256', 'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384', 'ECDHE-ECDSA-CHACHA20-POLY1305', 'ECDHE-RSA-CHACHA20-POLY1305',
  'DHE-RSA-AES128-GCM-SHA256', 'DHE-RSA-AES256-GCM-SHA384', 'DHE-RSA-CHACHA20-POLY1305'
].join(':')

const ListenTlsSchema = Type.Object({
  cert: Type.Optional(Type.String({ minLength: 1, description: 'PEM file of the default certificate (clients without SNI, or with a name no other certificate has); turns TLS on' })),
  key: Type.Optional(Type.String({ minLength: 1, description: 'PEM file of the default certificate\'s private key' })),
  sni: Type.Array(CertificatePair, { default: [], description: 'more certificates, each chosen by SNI for the names it carries' }),
  selfsigned: Type.Boolean({ default: false, description: 'make a throwaway self-signed certificate for localhost at start (trying HTTPS locally)' }),
  min_version: Type.Union([Type.Literal('TLSv1.2'), Type.Literal('TLSv1.3')], { default: 'TLSv1.2', description: 'oldest TLS version a client may use' }),
  ciphers: Type.String({ minLength: 1, default: INTERMEDIATE_CIPHERS, description: 'OpenSSL cipher list offered to clients, TLS 1.3 suites (TLS_*) included; default Mozilla\'s intermediate profile (AEAD only)' }),
  hsts: Type.Optional(Type.String({ minLength: 1, description: 'Strict-Transport-Security value added to every answer over TLS, e.g. max-age=63072000' })),
  redirect: Type.Optional(Type.Object({
    port: Type.Integer({ minimum: 0, maximum: 65535, description: 'a plain-HTTP listener that answers 308 to https:// (same host, path and query)' }),
    host: Type.Optional(Type.String({ minLength: 1, description: 'its address; default listen.host' })),
    acme_dir: Type.Optional(Type.String({ minLength: 1, description: 'directory served at /.well-known/acme-challenge/<token> (ACME HTTP-01)' }))
  }, { additionalProperties: false })),
  acme: Type.Optional(AcmeSchema)
}, { additionalProperties: false, default: {} })

const Http2Schema = Type.Object({
  enabled: Type.Boolean({ default: true, description: 'offer h2 by ALPN beside http/1.1 on the TLS listener' }),
  max_concurrent_streams: Type.Integer({ default: 100, minimum: 1, description: 'streams a client may have open at once on one connection' }),
  idle_timeout: Duration('60s', 'an HTTP/2 connection with no frames for this long is closed (GOAWAY)'),
  max_client_resets: Type.Integer({ default: 100, minimum: 1, description: 'streams the client may reset within client_reset_window on one connection; one more and the connection gets GOAWAY and is closed (rapid reset, CVE-2023-44487)' }),
  client_reset_window: Duration('10s', 'the window max_client_resets counts in'),
  max_idle_frames: Type.Integer({ default: 20000, minimum: 0, description: 'frames a second one connection may send that move no request forward (WINDOW_UPDATE, PING, SETTINGS, PRIORITY, empty DATA), measured as their bytes at 9 a frame; past it the connection gets GOAWAY ENHANCE_YOUR_CALM and is closed. 0: no budget' })
}, { additionalProperties: false, default: {} })

const TimeoutsSchema = Type.Object({
  connect: Duration('15s', 'TCP handshake with the origin; no SYN-ACK in time → 522'),
  tls: Duration('10s', 'TLS handshake with the origin; failing or stalling → 525'),
  response: Duration('120s', 'from request sent to response headers; none in time → 524 (Cloudflare\'s Proxy Read Timeout)'),
  origin_write: Duration('30s', 'the origin must keep reading the request body: a pause this long → 524'),
  body_idle: Duration('100s', 'longest pause between two chunks of an origin response body'),
  keep_alive: Duration('4s', 'how long an idle origin connection is kept for reuse'),
  shutdown_grace: Duration('30s', 'on SIGTERM/SIGINT, how long in-flight requests may finish before exit'),
  client_headers: Duration('10s', 'a client must send its request headers within this (slowloris) → 408'),
  client_request: Duration('300s', 'a client must send its whole request, body included, within this → 408'),
  client_write: Duration('60s', 'a client must keep reading its response: one that reads none of it for this long has its stream reset (or connection cut) and the origin request cancelled, logged 499 (nginx send_timeout)'),
  client_keep_alive: Duration('5s', 'how long an idle client connection is kept open')
}, { additionalProperties: false, default: {} })

const HeaderMap = (description: string) =>
  Type.Optional(Type.Record(Type.String({ pattern: '^[A-Za-z0-9!#$%&\'*+.^_`|~-]+$' }), Type.String(), { description }))

const HealthSchema = Type.Object({
  failures: Type.Integer({ default: 3, minimum: 1, description: 'consecutive connect-phase failures that mark an origin down' }),
  cooldown: Duration('10s', 'how long a down origin rests before one request tries it again (half-open)'),
  check: Type.Optional(Type.Object({
    path: Type.String({ default: '/', pattern: '^/', description: 'active health check: GET this path' }),
    interval: Duration('5s', 'time between checks'),
    timeout: Duration('2s', 'a check with no response headers in time failed'),
    expect_status: Type.Integer({ default: 200, minimum: 100, maximum: 599, description: 'the status a healthy origin answers' })
  }, { additionalProperties: false }))
}, { additionalProperties: false, default: {} })

const REUSE_HELP = 'which requests may ride an idle origin connection: never (only those of the client connection that opened it), safe (HAProxy\'s: never a client connection\'s first request), always (any)'
const Reuse = (def?: string) => Type.Union([Type.Literal('never'), Type.Literal('safe'), Type.Literal('always')], {
  ...(def === undefined ? {} : { default: def }), description: REUSE_HELP
})
const MaxPerOrigin = (def?: number) => Type.Integer({
  minimum: 1, ...(def === undefined ? {} : { default: def }), description: 'connections (dialling, open, tunnelled) to one origin of the pool'
})
const MaxQueuePerOrigin = (def?: number) => Type.Integer({
  minimum: 0, ...(def === undefined ? {} : { default: def }), description: 'requests that may wait for a connection when every one is busy; beyond that, or past the connect timeout → 503'
})
const MaxPendingConnects = (def?: number) => Type.Integer({
  minimum: 0, ...(def === undefined ? {} : { default: def }), description: 'connects to one origin that have sent a SYN and got no answer yet; a request past it waits for an answer (at most its connect timeout) instead of sending one more SYN; 0 = no cap'
})
const MaxPerClient = () => Type.Integer({
  minimum: 0, description: 'in-flight requests (each holds one connection) one client address may have at one origin of the pool; past it, its further requests wait for one of its own to end (up to the connect timeout, then 503) while other clients are served. Default: a quarter of max_per_origin (at least 1); 0: no share'
})
const ConnectionsSchema = Type.Object({
  reuse: Reuse('never'),
  max_per_origin: MaxPerOrigin(1024),
  max_queue_per_origin: MaxQueuePerOrigin(1024),
  max_pending_connects: MaxPendingConnects(64),
  max_per_client: Type.Optional(MaxPerClient())
}, { additionalProperties: false, default: {} })
const ConnectionsOverride = Type.Object({
  reuse: Type.Optional(Reuse()),
  max_per_origin: Type.Optional(MaxPerOrigin()),
  max_queue_per_origin: Type.Optional(MaxQueuePerOrigin()),
  max_pending_connects: Type.Optional(MaxPendingConnects()),
  max_per_client: Type.Optional(MaxPerClient())
}, { additionalProperties: false })

const RetryBudgetSchema = Type.Object({
  percent: Type.Number({ default: 20, minimum: 0, maximum: 100, description: 'retries in flight at most this share of the pool\'s requests in flight (Envoy\'s budget_percent)' }),
  min_retries: Type.Integer({ default: 3, minimum: 0, description: 'retries allowed in flight whatever the share (Envoy\'s min_retry_concurrency)' })
}, { additionalProperties: false, default: {}, description: 'past the budget a failed attempt is answered, not retried; failover away from an origin that is down (refused, unreachable) is never limited' })

export const AdaptiveKnobs = Type.Object({
  queue_timeout: Duration('1s', 'how long a request past the learned limit may wait for a free slot; then 503'),
  max_queue: Type.Integer({ default: 1000, minimum: 0, description: 'requests that may wait past the limit; more are answered 503 at once' }),
  min_limit: Type.Integer({ default: 1, minimum: 1, description: 'the limit never goes below this' }),
  max_limit: Type.Integer({ default: 1000, minimum: 1, description: 'the limit never goes above this' }),
  initial_limit: Type.Integer({ default: 10, minimum: 1, description: 'the limit before anything is learned' }),
  buffer: Type.Number({ default: 0.25, minimum: 0, maximum: 10, description: 'latency above the minimum RTT tolerated before the limit shrinks, as a share of it (Envoy\'s min_rtt buffer)' }),
  sample_interval: Duration('100ms', 'how often the limit is recomputed from the latencies of that interval'),
  min_rtt_interval: Duration('30s', 'how often the minimum RTT is measured again, at min_rtt_concurrency in flight'),
  min_rtt_samples: Type.Integer({ default: 25, minimum: 1, description: 'requests that measure the minimum RTT' }),
  min_rtt_concurrency: Type.Integer({ default: 1, minimum: 1, description: 'the limit while the minimum RTT is measured (Envoy uses 3; at 3 a one-at-a-time origin queues inside and its minimum RTT reads 3× too high)' })
}, { additionalProperties: false })
// The knobs are checked on their own (load.ts), so that a wrong one is named by its key
// rather than by the union's "expected true, false or an object".
const AdaptiveConcurrency = Type.Union([Type.Boolean(), Type.Record(Type.String(), Type.Unknown())], {
  default: false, description: 'learn how many requests each origin can serve at once from its latency (a gradient over the minimum RTT), keep at most that many in flight, and shed the excess with 503 after queue_timeout', errorMessage: 'true, false, or an object of knobs'
})

const EscapedSlashes = (def?: string) => Type.Union([Type.Literal('reject'), Type.Literal('keep'), Type.Literal('unescape')], {
  ...(def === undefined ? {} : { default: def }),
  description: 'a path with %2F or %5C (an encoded slash or backslash): reject (400), keep (forwarded as sent), unescape (decoded before routing and forwarding)'
})

const Policy = Type.Union([Type.Literal('round_robin'), Type.Literal('least_in_flight'), Type.Literal('random_two')], {
  default: 'round_robin', description: 'which origin of the pool takes the next request'
})

const PoolSchema = Type.Object({
  name: Type.String({ pattern: '^[A-Za-z0-9_-]+$', description: 'what routes call this pool' }),
  origins: Type.Array(OriginUrl, { minItems: 1, description: 'the origins of the pool' }),
  policy: Policy,
  connect_timeout: Type.Optional(Duration(undefined, 'overrides timeouts.connect for this pool')),
  response_timeout: Type.Optional(Duration(undefined, 'overrides timeouts.response for this pool')),
  tls: Type.Optional(TlsOverride),
  connections: Type.Optional(ConnectionsOverride),
  health: HealthSchema,
  retry_budget: RetryBudgetSchema,
  adaptive_concurrency: AdaptiveConcurrency,
  slow_start: Type.String({
    default: '30s',
    pattern: '^[0-9]+(\\.[0-9]+)?(ms|s|m|h)$',
    description: 'an origin back from down or drowning gets its share of the pool\'s traffic ramped up over this long (0s: at once); at most 24h',
    errorMessage: 'a duration like 30s or 2m (0s: off), at most 24h'
  })
}, { additionalProperties: false })

/** Edge statuses that may be answered from a stored copy. */
const STALE_STATUSES = [520, 521, 522, 523, 524, 525, 526, 530, 502, 503]

const StaleIfErrorSchema = Type.Object({
  max_age: Duration('1h', 'a stored copy this old or younger may answer for a failing origin (the origin\'s own stale-if-error window also counts)'),
  statuses: Type.Array(Type.Union(STALE_STATUSES.map(s => Type.Literal(s)), { errorMessage: `an edge status: one of ${STALE_STATUSES.join(', ')}` }), {
    default: [520, 521, 522, 523, 524, 525, 530], minItems: 1, uniqueItems: true, description: 'edge statuses answered with the stored copy instead of the error page'
  }),
  serve_when_down: Type.Boolean({ default: false, description: 'while passive health has every origin of the pool down (or half-open), answer from the copy at once instead of trying the origin' })
}, { additionalProperties: false, description: 'Always online: answer an origin failure with the last good copy (off when absent)' })

const RouteSchema = Type.Object({
  name: Type.Optional(Type.String({ description: 'label used in logs and metrics; default host+path' })),
  host: Type.String({ default: '*', description: 'exact host, *.example.com, or * for any' }),
  path: Type.String({ default: '/', pattern: '^/', description: 'path prefix; first matching route wins' }),
  pool: Type.Optional(Type.String({ description: 'name of a pool under pools:' })),
  origin: Type.Optional(OriginUrl),
  strip_prefix: Type.Boolean({ default: false, description: 'remove the matched path prefix before forwarding' }),
  host_header: Type.Union([Type.Literal('origin'), Type.Literal('keep')], {
    default: 'origin', description: 'Host sent to the origin: the origin\'s own, or the client\'s'
  }),
  request_headers: HeaderMap('headers added to (or replacing) the request sent to the origin'),
  response_headers: HeaderMap('headers added to (or replacing) the response sent to the client'),
  status_rewrite: Type.Optional(Type.Record(Type.String({ pattern: '^[0-9]{3}$' }), Type.Integer({ minimum: 200, maximum: 599 }), {
    description: 'HTTP status sent instead of an edge status, e.g. {"520": 502}; the body keeps the edge status'
  })),
  origin_errors: Type.Union([Type.Literal('pass'), Type.Literal('replace')], {
    default: 'pass', description: "the origin's own 5xx: passed through untouched, or replaced by the edge's 502 page"
  }),
  connect_timeout: Type.Optional(Duration(undefined, 'with origin: overrides timeouts.connect for this route')),
  response_timeout: Type.Optional(Duration(undefined, 'with origin: overrides timeouts.response for this route')),
  tls: Type.Optional(TlsOverride),
  fault_injection: Type.Optional(Type.Boolean({ description: 'overrides fault_injection for this route' })),
  max_body_size: Type.Optional(Type.Integer({ minimum: 0, description: 'overrides limits.max_body_size for this route' })),
  upgrades: Type.Array(Type.String({ pattern: '^[A-Za-z0-9!#$%&\'*+.^_`|~-]+$' }), {
    default: ['websocket'], description: 'Upgrade protocols forwarded to the origin; any other Upgrade header is dropped (the request is proxied as plain HTTP)'
  }),
  stale_if_error: Type.Optional(StaleIfErrorSchema)
}, { additionalProperties: false })

export const ConfigSchema = Type.Object({
  origin: Type.Optional(Type.String({ format: 'origin-url', description: 'shortcut: one route * → this origin' })),
  pools: Type.Array(PoolSchema, { default: [], description: 'named origin pools' }),
  routes: Type.Array(RouteSchema, { default: [] }),
  listen: Type.Object({
    host: Type.String({ default: '127.0.0.1', minLength: 1 }),
    port: Type.Integer({ default: 8080, minimum: 0, maximum: 65535 }),
    backlog: Type.Integer({ default: 4096, minimum: 1, description: 'connections the kernel may queue before the edge accepts them (capped by net.core.somaxconn)' }),
    tls: ListenTlsSchema,
    http2: Http2Schema
  }, { additionalProperties: false, default: {} }),
  edge: Type.Object({
    name: Type.String({ default: 'HPX', pattern: '^[A-Za-z0-9]{1,8}$', description: 'short code after the ray id' }),
    ray_header: Type.String({ default: 'cf-ray', pattern: '^[A-Za-z0-9-]+$' }),
    received_status: Type.Boolean({ default: false, description: 'add Proxy-Status: <edge>; received-status=<status> to the responses relayed from origins' })
  }, { additionalProperties: false, default: {} }),
  timeouts: TimeoutsSchema,
  tls: TlsSchema,
  connections: ConnectionsSchema,
  escaped_slashes: EscapedSlashes('reject'),
  client_ip: Type.Object({
    trusted_proxies: Type.Array(Type.String({ minLength: 1 }), {
      default: [], description: 'addresses or CIDRs of proxies in front of the edge; from them, the client is the rightmost untrusted X-Forwarded-For hop'
    }),
    header: Type.Union([Type.String({ pattern: '^[A-Za-z0-9-]+$' }), Type.Literal(false)], {
      default: 'x-real-ip', description: 'request header that carries the client address the edge decided on; false: none'
    })
  }, { additionalProperties: false, default: {} }),
  limits: Type.Object({
    max_response_header_size: Type.Integer({ default: 131072, minimum: 1024, description: 'bytes; larger origin headers → 520' }),
    max_request_header_size: Type.Integer({ default: 16384, minimum: 1024, description: 'bytes of client request headers; larger → 431' }),
    max_header_count: Type.Integer({ default: 100, minimum: 1, description: 'client request headers; more → 431' }),
    max_url_length: Type.Integer({ default: 8192, minimum: 64, description: 'bytes of request target; longer → 414' }),
    max_body_size: Type.Integer({ default: 104857600, minimum: 0, description: 'bytes of request body (per route: max_body_size); larger → 413; 0 = no limit' }),
    max_connections: Type.Integer({ default: 20000, minimum: 1, description: 'open client connections; beyond → 503 with Retry-After' }),
    max_connections_per_ip: Type.Integer({ default: 0, minimum: 0, description: 'open connections from one client address; beyond → 429; 0 = no limit' }),
    max_pipelined_requests: Type.Integer({ default: 16, minimum: 1, description: 'requests a client connection may have waiting (pipelined) before the edge stops reading it; they are answered one at a time, in order' })
  }, { additionalProperties: false, default: {} }),
  fault_injection: Type.Boolean({ default: false, description: 'honour x-highproxy-fault request headers' }),
  cache: Type.Object({
    max_bytes: Type.Integer({ default: 67108864, minimum: 0, description: 'bytes of stored copies for stale_if_error routes (each worker), least recently used evicted first' }),
    max_entry_bytes: Type.Integer({ default: 1048576, minimum: 0, description: 'largest response body copied; larger ones stream through uncached' })
  }, { additionalProperties: false, default: {} }),
  workers: Type.Union([Type.Integer({ minimum: 1, maximum: 64 }), Type.Literal('auto')], {
    default: 1, description: 'processes serving the port (node:cluster); auto: one per CPU', errorMessage: 'a number of processes (1-64) or auto'
  }),
  admin: Type.Object({
    enabled: Type.Boolean({ default: true, description: 'serve /healthz, /readyz, /metrics, /rays/<id> and /cache' }),
    host: Type.String({ default: '127.0.0.1', minLength: 1 }),
    port: Type.Integer({ default: 9090, minimum: 0, maximum: 65535 }),
    ray_buffer: Type.Integer({ default: 10000, minimum: 1, description: 'failure records kept for /rays/<id>' })
  }, { additionalProperties: false, default: {} }),
  log: Type.Object({
    level: Type.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map(l => Type.Literal(l)), { default: 'info' }),
    format: Type.Union([Type.Literal('auto'), Type.Literal('json'), Type.Literal('pretty')], {
      default: 'auto', description: 'auto: pretty at a TTY, JSON otherwise'
    }),
    fields: Type.Union(LOG_FIELDS.map(f => Type.Literal(f)), {
      default: 'highproxy', description: "the access line's field names: highproxy, or cloudflare (Logpush http_requests names, types and units)"
    })
  }, { additionalProperties: false, default: {} }),
  tracing: TracingSchema
}, { additionalProperties: false })

/** The file/env/flag shape, after defaults. */
export type ConfigInput = Static<typeof ConfigSchema>
export type RouteInput = Static<typeof RouteSchema>
export type TlsInput = Static<typeof TlsSchema>
export type PoolInput = Static<typeof PoolSchema>
export type ListenTlsInput = Static<typeof ListenTlsSchema>

/** The runtime shape: durations in ms, files read, the origin shortcut turned into a route. */
export interface TlsConfig {
  verify: boolean
  ca: string | undefined
  servername: string | undefined
}

export type Policy = 'round_robin' | 'least_in_flight' | 'random_two'

export interface HealthConfig {
  /** False for a route's single `origin:`: like the edge in front of one origin, always dial. */
  passive: boolean
  failures: number
  cooldownMs: number
  check: { path: string, intervalMs: number, timeoutMs: number, expectStatus: number } | null
}

export type ReusePolicy = 'never' | 'safe' | 'always'
export type EscapedSlashes = 'reject' | 'keep' | 'unescape'

export interface ConnectionsConfig {
  reuse: ReusePolicy
  maxPerOrigin: number
  /** In-flight requests of one client address at one origin; 0: no share. */
  maxPerClient: number
  maxQueuePerOrigin: number
  /** 0: no cap. */
  maxPendingConnects: number
}

export interface RetryBudgetConfig {
  /** 0..100. */
  percent: number
  minRetries: number
}

export interface AdaptiveConfig {
  queueTimeoutMs: number
  maxQueue: number
  minLimit: number
  maxLimit: number
  initialLimit: number
  buffer: number
  sampleIntervalMs: number
  minRttIntervalMs: number
  minRttSamples: number
  minRttConcurrency: number
}

export interface PoolConfig {
  name: string
  origins: URL[]
  policy: Policy
  connectTimeoutMs: number
  responseTimeoutMs: number
  tls: TlsConfig
  connections: ConnectionsConfig
  health: HealthConfig
  retryBudget: RetryBudgetConfig
  /** null: off. */
  adaptive: AdaptiveConfig | null
  /** Slow start: how long a recovering origin's share ramps up; 0 off. */
  slowStartMs: number
}

export interface RouteConfig {
  name: string
  host: string
  path: string
  pool: PoolConfig
  stripPrefix: boolean
  hostHeader: 'origin' | 'keep'
  /** Flat name/value lists, lower-case names. */
  requestHeaders: string[]
  responseHeaders: string[]
  statusRewrite: ReadonlyMap<number, number>
  originErrors: 'pass' | 'replace'
  faultInjection: boolean
  /** Bytes; 0 = no limit. */
  maxBodyBytes: number
  /** Upgrade protocols forwarded, lower case. */
  upgrades: string[]
  /** Always online; null: off. */
  staleIfError: StaleIfErrorConfig | null
}

export interface StaleIfErrorConfig {
  maxAgeMs: number
  statuses: ReadonlySet<number>
  serveWhenDown: boolean
}

export interface CacheConfig {
  maxBytes: number
  maxEntryBytes: number
}

export interface EdgeConfig {
  routes: RouteConfig[]
  pools: PoolConfig[]
  edgeName: string
  rayHeader: string
  /** Add our Proxy-Status member, with the origin's status, to relayed responses. */
  receivedStatus: boolean
  /** The access line's shape (log/log-schema.ts). */
  logFields: LogFields
  tlsTimeoutMs: number
  bodyIdleTimeoutMs: number
  originWriteTimeoutMs: number
  keepAliveTimeoutMs: number
  maxResponseHeaderBytes: number
  maxHeaderCount: number
  /** HTTP/2's header list size limit (RFC 9113 §6.5.2); Node's parser enforces it on HTTP/1.x. */
  maxRequestHeaderBytes: number
  maxUrlLength: number
  maxPipelined: number
  /** HTTP/2's timeouts.client_request; Node enforces it on HTTP/1.x. */
  clientRequestTimeoutMs: number
  /** timeouts.client_write: a client that reads none of its response this long is cut (499). */
  clientWriteTimeoutMs: number
  escapedSlashes: EscapedSlashes
  clientIp: { trustedProxies: string[], header: string | null }
  /** The store of stale_if_error copies. */
  cache: CacheConfig
  /** Strict-Transport-Security on every answer of the TLS listener; null: none. */
  hsts: string | null
}

/** Limits on the client side, enforced by the HTTP server itself. */
export interface ClientLimits {
  maxHeaderBytes: number
  headersTimeoutMs: number
  requestTimeoutMs: number
  keepAliveTimeoutMs: number
  maxConnections: number
  maxConnectionsPerIp: number
}

/** One certificate the edge serves, read and checked (config/certificates.ts). */
export interface ServerCertificate {
  cert: string
  key: string
  /** DNS names it is picked by (lower case; `*.example.com` for a wildcard). */
  names: string[]
  /** SHA-256 fingerprint, for the logs. */
  fingerprint: string
  /** When it expires, ms since the epoch (highproxy_certificate_expiry_timestamp_seconds). */
  notAfter: number
}

export interface Http2Limits {
  enabled: boolean
  maxConcurrentStreams: number
  idleTimeoutMs: number
  maxClientResets: number
  clientResetWindowMs: number
  /** Frames a second that move no request forward; 0: no budget (listen/tls/frame-budget.ts). */
  maxIdleFrames: number
}

export interface FrontDoor {
  /** The first is the default; empty until a self-signed one is made (`selfsigned`). */
  certificates: ServerCertificate[]
  selfsigned: boolean
  minVersion: 'TLSv1.2' | 'TLSv1.3'
  /** OpenSSL cipher list (listen.tls.ciphers). */
  ciphers: string
  hsts: string | null
  redirect: { port: number, host: string, acmeDir: string | null } | null
  http2: Http2Limits
  /** listen.tls.acme, resolved; null: no ACME. */
  acme: AcmeConfig | null
}

export interface AcmeConfig {
  domains: string[]
  email: string | null
  directoryUrl: string
  /** PEM text of directory_ca. */
  directoryCa: string | null
  /** The storage directory as configured (or the default). */
  storage: string
  /** In order of preference. */
  challenges: Array<'http-01' | 'tls-alpn-01'>
  /** null: a third of the lifetime. */
  renewBeforeMs: number | null
  retryFirstMs: number
  retryMaxMs: number
  eab: { kid: string, hmac: string } | null
}

export interface AdminConfig {
  enabled: boolean
  host: string
  port: number
  rayBuffer: number
}

export interface Config {
  edge: EdgeConfig
  listen: { host: string, port: number, backlog: number }
  /** The edge's own TLS and HTTP/2 for clients; null: plain HTTP/1.1. */
  front: FrontDoor | null
  admin: AdminConfig
  client: ClientLimits
  workers: number
  shutdownGraceMs: number
  log: { level: string, format: 'json' | 'pretty' }
  /** Global values the routes were resolved from (printed at start). */
  connectTimeoutMs: number
  responseTimeoutMs: number
  /** The top-level TLS settings: what a URL outside every pool is dialled with (probe). */
  tls: TlsConfig
  /** OpenTelemetry traces; null: off. */
  tracing: TracingConfig | null
}
