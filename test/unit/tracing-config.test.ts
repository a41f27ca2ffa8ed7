// The tracing block and the OTEL_* variables: env over file, each variable read as the
// OpenTelemetry spec says, a bad value one ConfigError naming the variable.

import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { loadConfig } from '../../src/config/load.js'
import { samplerOf } from '../../src/tracing.js'

const dir = mkdtempSync(join(tmpdir(), 'hp-tracing-'))
const file = (text: string): string => {
  const path = join(dir, `c${Math.random().toString(36).slice(2)}.yaml`)
  writeFileSync(path, text)
  return path
}
const load = (env: Record<string, string>, config?: string) =>
  loadConfig({ flags: { origin: 'http://127.0.0.1:9000', ...(config === undefined ? {} : { config }) }, env, isTTY: false }).tracing
const problem = (env: Record<string, string>, config?: string): string => {
  try { load(env, config) } catch (err) { return (err as Error).message }
  return 'no error'
}

t.test('off by default; OTEL_TRACES_EXPORTER=otlp turns it on with the spec defaults', async t => {
  t.equal(load({}), null)
  t.same(load({ OTEL_TRACES_EXPORTER: 'otlp' }), {
    url: 'http://localhost:4318/v1/traces',
    protocol: 'http/protobuf',
    headers: {},
    serviceName: 'highproxy',
    resourceAttributes: {},
    sampler: 'parentbased_always_on',
    samplerArg: 1,
    maxQueueSize: 2048,
    trustIncoming: true
  })
})

t.test('the env wins over the file, key by key', async t => {
  const config = file(`tracing:
  enabled: true
  endpoint: http://collector.internal:4318/
  protocol: http/json
  headers: { x-file: one, x-both: file }
  service_name: from-file
  resource_attributes: { team: edge }
  sampler: traceidratio
  sampler_arg: 0.5
  max_queue_size: 100
  trust_incoming: false
`)
  const fromFile = load({}, config)
  t.match(fromFile, { url: 'http://collector.internal:4318/v1/traces', protocol: 'http/json', serviceName: 'from-file', sampler: 'traceidratio', samplerArg: 0.5, maxQueueSize: 100, trustIncoming: false })
  const both = load({
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://127.0.0.1:4000/custom',
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
    OTEL_EXPORTER_OTLP_HEADERS: 'x-both=env,api-key=a%2Cb',
    OTEL_SERVICE_NAME: 'from-env',
    OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment.name=prod',
    OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
    OTEL_TRACES_SAMPLER_ARG: '0.01',
    OTEL_BSP_MAX_QUEUE_SIZE: '64'
  }, config)
  t.same(both, {
    url: 'http://127.0.0.1:4000/custom',
    protocol: 'http/protobuf',
    headers: { 'x-file': 'one', 'x-both': 'env', 'api-key': 'a,b' },
    serviceName: 'from-env',
    resourceAttributes: { team: 'edge', 'deployment.environment.name': 'prod' },
    sampler: 'parentbased_traceidratio',
    samplerArg: 0.01,
    maxQueueSize: 64,
    trustIncoming: false
  })
  t.equal(load({ OTEL_TRACES_EXPORTER: 'none' }, config), null, 'OTEL_TRACES_EXPORTER=none turns the file\'s tracing off')
  t.equal(load({ OTEL_SDK_DISABLED: 'true', OTEL_TRACES_EXPORTER: 'otlp' }), null, 'OTEL_SDK_DISABLED wins')
  t.equal(load({ OTEL_TRACES_EXPORTER: 'otlp', OTEL_RESOURCE_ATTRIBUTES: 'service.name=svc' })?.serviceName, 'svc', 'service.name from OTEL_RESOURCE_ATTRIBUTES')
  t.equal(load({ OTEL_TRACES_EXPORTER: 'otlp', OTEL_RESOURCE_ATTRIBUTES: 'service.name=svc', OTEL_SERVICE_NAME: 'named' })?.serviceName, 'named', '… unless OTEL_SERVICE_NAME says')
})

t.test('bad values: one line naming the key and the variable', async t => {
  const on = { OTEL_TRACES_EXPORTER: 'otlp' }
  t.equal(problem({ OTEL_TRACES_EXPORTER: 'zipkin' }), 'config tracing.enabled (from OTEL_TRACES_EXPORTER): expected otlp or none (got "zipkin")')
  t.match(problem({ ...on, OTEL_TRACES_SAMPLER: 'xray' }), /^config tracing\.sampler \(from OTEL_TRACES_SAMPLER\): expected one of always_on, /)
  t.match(problem({ ...on, OTEL_TRACES_SAMPLER_ARG: '2' }), /^config tracing\.sampler_arg \(from OTEL_TRACES_SAMPLER_ARG\): expected number to be less or equal to 1/)
  t.match(problem({ ...on, OTEL_TRACES_SAMPLER_ARG: 'half' }), /^config tracing\.sampler_arg \(from OTEL_TRACES_SAMPLER_ARG\): expected number/)
  t.equal(problem({ ...on, OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' }), 'config tracing.protocol (from OTEL_EXPORTER_OTLP_PROTOCOL): expected http/protobuf or http/json (grpc is not supported) (got "grpc")')
  t.equal(problem({ ...on, OTEL_EXPORTER_OTLP_ENDPOINT: 'localhost:4318' }), 'config tracing.endpoint (from OTEL_EXPORTER_OTLP_ENDPOINT): expected an http:// or https:// URL (got "localhost:4318")')
  t.match(problem({ ...on, OTEL_EXPORTER_OTLP_HEADERS: 'novalue' }), /^config tracing \(from OTEL_EXPORTER_OTLP_HEADERS\): expected key=value pairs/)
  t.match(problem({ ...on, OTEL_BSP_MAX_QUEUE_SIZE: '0' }), /^config tracing\.max_queue_size \(from OTEL_BSP_MAX_QUEUE_SIZE\): /)
  t.match(problem({}, file('tracing:\n  enabled: yes please\n')), /^config tracing\.enabled: expected boolean/)
})

t.test('each sampler name is the SDK sampler the spec names', async t => {
  t.equal(samplerOf('always_on', 1).toString(), 'AlwaysOnSampler')
  t.equal(samplerOf('always_off', 1).toString(), 'AlwaysOffSampler')
  t.equal(samplerOf('traceidratio', 0.25).toString(), 'TraceIdRatioBased{0.25}')
  t.match(samplerOf('parentbased_traceidratio', 0.1).toString(), /^ParentBased\{root=TraceIdRatioBased\{0.1\}/)
  t.match(samplerOf('parentbased_always_off', 1).toString(), /^ParentBased\{root=AlwaysOffSampler/)
})
