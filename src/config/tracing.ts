// The `tracing:` block, and the standard OpenTelemetry environment variables that say the
// same (OTEL_TRACES_EXPORTER, OTEL_EXPORTER_OTLP_*, OTEL_SERVICE_NAME, ...). An operator who
// already runs OpenTelemetry elsewhere sets the same variables here; env wins over the
// file, as for every other key. The variables are read here, once, rather than left to
// the SDK, so that a bad value is one line naming the variable and exit 2 like any other
// bad setting, and so that the file's values and the env's are layered in one place.

import { Type, type Static } from '@sinclair/typebox'
import { ConfigError } from '../status/errors.js'

export const SAMPLERS = [
  'always_on', 'always_off', 'traceidratio', 'parentbased_always_on', 'parentbased_always_off', 'parentbased_traceidratio'
] as const
export type SamplerName = typeof SAMPLERS[number]

const PROTOCOLS = ['http/protobuf', 'http/json'] as const
export type OtlpProtocol = typeof PROTOCOLS[number]

const StringMap = (description: string) => Type.Record(Type.String({ minLength: 1 }), Type.String(), { default: {}, description })

export const TracingSchema = Type.Object({
  enabled: Type.Boolean({ default: false, description: 'export OpenTelemetry traces (OTEL_TRACES_EXPORTER=otlp turns it on, =none off)' }),
  endpoint: Type.String({
    format: 'origin-url', default: 'http://localhost:4318', description: 'OTLP/HTTP base URL; /v1/traces is added (OTEL_EXPORTER_OTLP_ENDPOINT)'
  }),
  traces_endpoint: Type.Optional(Type.String({ format: 'origin-url', description: 'full URL of the traces endpoint, used as is (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT)' })),
  protocol: Type.Union(PROTOCOLS.map(p => Type.Literal(p)), {
    default: 'http/protobuf', description: 'http/protobuf or http/json (OTEL_EXPORTER_OTLP_PROTOCOL)', errorMessage: 'http/protobuf or http/json (grpc is not supported)'
  }),
  headers: StringMap('headers sent with every export, e.g. an API key (OTEL_EXPORTER_OTLP_HEADERS)'),
  service_name: Type.String({ minLength: 1, default: 'highproxy', description: 'the service.name resource attribute (OTEL_SERVICE_NAME)' }),
  resource_attributes: StringMap('more resource attributes, e.g. deployment.environment.name (OTEL_RESOURCE_ATTRIBUTES)'),
  sampler: Type.Union(SAMPLERS.map(s => Type.Literal(s)), {
    default: 'parentbased_always_on', description: 'which requests are traced (OTEL_TRACES_SAMPLER)', errorMessage: `one of ${SAMPLERS.join(', ')}`
  }),
  sampler_arg: Type.Number({ minimum: 0, maximum: 1, default: 1, description: 'the ratio of the traceidratio samplers, 0 to 1 (OTEL_TRACES_SAMPLER_ARG)' }),
  max_queue_size: Type.Integer({ minimum: 1, default: 2048, description: 'spans waiting for export; past it new spans are dropped and counted (OTEL_BSP_MAX_QUEUE_SIZE)' }),
  trust_incoming: Type.Boolean({
    default: true,
    description: "continue a client's traceparent; false: start a new trace (linked to the client's) since an edge faces the internet"
  })
}, { additionalProperties: false, default: {} })

export type TracingInput = Static<typeof TracingSchema>

/** What the process traces with (null in Config: tracing is off). */
export interface TracingConfig {
  /** The traces endpoint, /v1/traces included. */
  url: string
  protocol: OtlpProtocol
  headers: Record<string, string>
  serviceName: string
  resourceAttributes: Record<string, string>
  sampler: SamplerName
  samplerArg: number
  maxQueueSize: number
  trustIncoming: boolean
}

type Tree = Record<string, unknown>

/**
 * OTEL_EXPORTER_OTLP_HEADERS and OTEL_RESOURCE_ATTRIBUTES: `key=value,key2=value2`, values
 * percent-encoded (the W3C Baggage form the OpenTelemetry spec uses for both).
 */
export function parseKeyValues (text: string, variable: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const part of text.split(',')) {
    if (part.trim() === '') continue
    const eq = part.indexOf('=')
    if (eq <= 0) throw new ConfigError(`tracing (from ${variable})`, `expected key=value pairs separated by commas (got ${JSON.stringify(part.trim())})`)
    let key: string, value: string
    try {
      key = decodeURIComponent(part.slice(0, eq).trim())
      value = decodeURIComponent(part.slice(eq + 1).trim())
    } catch {
      throw new ConfigError(`tracing (from ${variable})`, `bad percent-encoding in ${JSON.stringify(part.trim())}`)
    }
    out[key] = value
  }
  return out
}

const branch = (tree: Tree): Tree => {
  const t = tree.tracing
  if (typeof t === 'object' && t !== null && !Array.isArray(t)) return t as Tree
  const fresh: Tree = {}
  tree.tracing = fresh
  return fresh
}

/**
 * The OTEL_* variables, over the file's `tracing:` block. `origins` learns which variable
 * set which key, so that a validation error names the variable.
 */
export function applyOtelEnv (tree: Tree, env: NodeJS.ProcessEnv, origins: Map<string, string>): void {
  const get = (name: string): string | undefined => {
    const v = env[name]
    return v === undefined || v.trim() === '' ? undefined : v.trim()
  }
  const set = (key: string, value: unknown, variable: string): void => {
    branch(tree)[key] = value
    origins.set(`tracing.${key}`, variable)
  }
  const exporter = get('OTEL_TRACES_EXPORTER')
  if (exporter !== undefined) {
    if (exporter === 'otlp') set('enabled', true, 'OTEL_TRACES_EXPORTER')
    else if (exporter === 'none') set('enabled', false, 'OTEL_TRACES_EXPORTER')
    else throw new ConfigError('tracing.enabled (from OTEL_TRACES_EXPORTER)', `expected otlp or none (got ${JSON.stringify(exporter)})`)
  }
  // The spec's kill switch: no telemetry at all, whatever else says.
  if (get('OTEL_SDK_DISABLED')?.toLowerCase() === 'true') set('enabled', false, 'OTEL_SDK_DISABLED')
  const endpoint = get('OTEL_EXPORTER_OTLP_ENDPOINT')
  if (endpoint !== undefined) set('endpoint', endpoint, 'OTEL_EXPORTER_OTLP_ENDPOINT')
  const tracesEndpoint = get('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT')
  if (tracesEndpoint !== undefined) set('traces_endpoint', tracesEndpoint, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT')
  const protocol = get('OTEL_EXPORTER_OTLP_TRACES_PROTOCOL') ?? get('OTEL_EXPORTER_OTLP_PROTOCOL')
  if (protocol !== undefined) set('protocol', protocol, get('OTEL_EXPORTER_OTLP_TRACES_PROTOCOL') !== undefined ? 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL' : 'OTEL_EXPORTER_OTLP_PROTOCOL')
  for (const variable of ['OTEL_EXPORTER_OTLP_HEADERS', 'OTEL_EXPORTER_OTLP_TRACES_HEADERS']) {
    const text = get(variable)
    if (text === undefined) continue
    const current = branch(tree).headers
    set('headers', { ...(typeof current === 'object' && current !== null ? current : {}), ...parseKeyValues(text, variable) }, variable)
  }
  const service = get('OTEL_SERVICE_NAME')
  if (service !== undefined) set('service_name', service, 'OTEL_SERVICE_NAME')
  const attributes = get('OTEL_RESOURCE_ATTRIBUTES')
  if (attributes !== undefined) {
    const parsed = parseKeyValues(attributes, 'OTEL_RESOURCE_ATTRIBUTES')
    const current = branch(tree).resource_attributes
    set('resource_attributes', { ...(typeof current === 'object' && current !== null ? current : {}), ...parsed }, 'OTEL_RESOURCE_ATTRIBUTES')
    // OTEL_SERVICE_NAME wins over a service.name here (the spec's order).
    if (parsed['service.name'] !== undefined && service === undefined) set('service_name', parsed['service.name'], 'OTEL_RESOURCE_ATTRIBUTES')
  }
  const sampler = get('OTEL_TRACES_SAMPLER')
  if (sampler !== undefined) set('sampler', sampler, 'OTEL_TRACES_SAMPLER')
  const arg = get('OTEL_TRACES_SAMPLER_ARG')
  if (arg !== undefined) set('sampler_arg', /^[0-9]*\.?[0-9]+$/.test(arg) ? Number(arg) : arg, 'OTEL_TRACES_SAMPLER_ARG')
  const queue = get('OTEL_BSP_MAX_QUEUE_SIZE')
  if (queue !== undefined) set('max_queue_size', /^[0-9]+$/.test(queue) ? Number(queue) : queue, 'OTEL_BSP_MAX_QUEUE_SIZE')
}

/** The validated block, resolved; null when tracing is off. */
export function resolveTracing (input: TracingInput): TracingConfig | null {
  if (!input.enabled) return null
  const base = input.endpoint.replace(/\/+$/, '')
  return {
    url: input.traces_endpoint ?? `${base}/v1/traces`,
    protocol: input.protocol,
    headers: input.headers,
    serviceName: input.service_name,
    resourceAttributes: input.resource_attributes,
    sampler: input.sampler,
    samplerArg: input.sampler_arg,
    maxQueueSize: input.max_queue_size,
    trustIncoming: input.trust_incoming
  }
}
