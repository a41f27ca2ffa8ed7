#!/usr/bin/env node
// Tracing's CPU per request, this build against another one, in one process: the edge's
// tracing hooks of one request (server span, one attempt's client span, the origin's
// traceparent, the log fields, the end) and the OTLP protobuf serialization of what it
// exported (the exporter's own serializer, by batches of 512 as its batch processor sends
// them), without the network. The two builds run in turn, round by round, each round a
// fresh order: the ratios are paired, which is what survives a shared, loaded machine.
//   node bench/trace-ab.mjs --base /tmp/base-build [--ratios 1,0.01,0] [--rounds 7] [--requests 40000]
// --base: a checkout of another commit with its dist/ built (e.g. `git archive main | tar -x -C
// /tmp/base`, node_modules symlinked, `npx tsc -p tsconfig.build.json`).
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import {
  AlwaysOffSampler, AlwaysOnSampler, BasicTracerProvider, RandomIdGenerator, TraceIdRatioBasedSampler
} from '@opentelemetry/sdk-trace-base'
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer'
import { tracedRequest } from './lib/traced-request.mjs'

const { values } = parseArgs({
  options: {
    base: { type: 'string' },
    ratios: { type: 'string', default: '1,0.01,0' },
    rounds: { type: 'string', default: '7' },
    requests: { type: 'string', default: '40000' }
  }
})
if (values.base === undefined) { process.stderr.write('trace-ab: --base <a built checkout> is required\n'); process.exit(2) }
const here = fileURLToPath(new URL('..', import.meta.url))
const builds = [{ name: 'base', dir: path.resolve(values.base) }, { name: 'this', dir: here }]
const N = Number(values.requests)
const ROUNDS = Number(values.rounds)
const BATCH = 512

/**
 * The tracer as tracing.ts builds it, with an in-memory processor in place of the batch
 * one: the ids and the decision the edge pins (older builds ignore them), and the sampler.
 */
function setup (mod, ratio) {
  const inner = ratio === 1 ? new AlwaysOnSampler() : ratio === 0 ? new AlwaysOffSampler() : new TraceIdRatioBasedSampler(ratio)
  const random = new RandomIdGenerator()
  let pinnedId = null
  let decided = null
  const pinned = {
    generateTraceId: () => { const id = pinnedId; if (id === null) return random.generateTraceId(); pinnedId = null; return id },
    generateSpanId: () => random.generateSpanId(),
    traceId: () => random.generateTraceId(),
    spanId: () => random.generateSpanId(),
    pin: (id, decision) => { pinnedId = id; decided = decision ?? null },
    shouldSample: (...args) => { const d = decided; if (d === null) return inner.shouldSample(...args); decided = null; return d },
    toString: () => inner.toString()
  }
  const ended = []
  const processor = { onStart () {}, onEnd (span) { ended.push(span) }, forceFlush: async () => {}, shutdown: async () => {} }
  const provider = new BasicTracerProvider({ sampler: pinned, idGenerator: pinned, spanProcessors: [processor] })
  const tracer = provider.getTracer('highproxy', 'bench')
  return { edge: mod.edgeTracing({ tracer, sampler: inner, ids: pinned, trustIncoming: true }), ended }
}

/** One request's hooks; one connection in 16 is fresh (its connect phase), the rest ride a pooled one. */
const request = (edge, i) => tracedRequest(edge, '127.0.0.1:8080', (i & 15) === 0)

function run (env, n) {
  const before = process.cpuUsage()
  let bytes = 0
  for (let i = 0; i < n; i++) {
    request(env?.edge ?? null, i)
    if (env !== null && env.ended.length >= BATCH) bytes += ProtobufTraceSerializer.serializeRequest(env.ended.splice(0, BATCH)).length
  }
  const used = process.cpuUsage(before)
  return { us: (used.user + used.system) / n, bytes: bytes / n }
}

const median = a => { const s = [...a].sort((x, y) => x - y); return s.length % 2 === 1 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2 }
const mods = await Promise.all(builds.map(b => import(path.join(b.dir, 'dist/edge/trace.js'))))
const off = []
for (const ratio of values.ratios.split(',').map(Number)) {
  const envs = mods.map(m => setup(m, ratio))
  for (const env of envs) run(env, N / 2) // warm-up: JIT
  run(null, N / 2)
  const us = builds.map(() => [])
  let bytes = [0, 0]
  for (let r = 0; r < ROUNDS; r++) {
    const order = r % 2 === 0 ? [0, 1] : [1, 0]
    for (const k of order) { const m = run(envs[k], N); us[k].push(m.us); bytes[k] = m.bytes }
    off.push(run(null, N).us)
  }
  const ratios = us[1].map((x, i) => x / us[0][i])
  console.log(`sampled ${ratio * 100}%: µs CPU per request (hooks + serialization), ${ROUNDS} rounds`)
  for (const k of [0, 1]) console.log(`  ${builds[k].name.padEnd(5)} median ${median(us[k]).toFixed(2).padStart(6)}  rounds ${us[k].map(x => x.toFixed(2)).join(' ')}  (${bytes[k].toFixed(0)} protobuf bytes per request)`)
  console.log(`  this/base per round ${ratios.map(x => x.toFixed(2)).join(' ')}  median ${median(ratios).toFixed(2)}`)
}
console.log(`tracing off (the same request objects, no hooks): median ${median(off).toFixed(2)} µs per request`)
