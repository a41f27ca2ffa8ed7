// The OpenTelemetry SDK, set up once per process (each worker exports its own spans):
// a tracer provider with the configured sampler and resource, a batch span processor
// in front of the OTLP/HTTP exporter (protobuf or JSON), and the count of what was not
// exported. The per-request side, an Exchange and its Attempts turned into spans, is
// edge/trace.ts; nothing here runs per request but the ids and the processor's onEnd.
//
// Why these packages: @opentelemetry/sdk-trace-base is the SDK without Node's automatic
// instrumentation (sdk-trace-node would add a context manager for async_hooks, which the
// edge does not need: its spans carry their parent explicitly). The two OTLP exporters
// are the SDK's own, so the wire format is never ours. @opentelemetry/resources builds the
// resource (service.name and the rest), @opentelemetry/core has the W3C propagator.
// The 2.x SDK line is used because 3.x needs Node 22; highproxy supports Node 20.

import { DiagLogLevel, diag, TraceFlags, type Attributes, type Context, type DiagLogger, type Link, type SpanKind, type Tracer } from '@opentelemetry/api'
import { ExportResultCode, type ExportResult } from '@opentelemetry/core'
import { OTLPTraceExporter as ProtobufExporter } from '@opentelemetry/exporter-trace-otlp-proto'
import { OTLPTraceExporter as JsonExporter } from '@opentelemetry/exporter-trace-otlp-http'
import { defaultResource, resourceFromAttributes } from '@opentelemetry/resources'
import {
  AlwaysOffSampler, AlwaysOnSampler, BasicTracerProvider, BatchSpanProcessor, ParentBasedSampler, RandomIdGenerator, TraceIdRatioBasedSampler,
  type IdGenerator, type ReadableSpan, type Sampler, type SamplingResult, type Span, type SpanExporter, type SpanProcessor
} from '@opentelemetry/sdk-trace-base'
import type { Logger } from 'pino'
import type { SamplerName, TracingConfig } from './config/tracing.js'
import { edgeTracing, type EdgeTracing, type TraceIds } from './edge/trace.js'

/** What the exporter did with the spans handed to it, for /metrics. */
export interface SpanCounts {
  /** Accepted by the receiver. */
  exported: number
  /** Never sent: the queue was full (a receiver down or slow). */
  droppedQueueFull: number
  /** Sent and refused, or the export failed or timed out. */
  droppedExportFailed: number
}

export interface Tracing {
  readonly edge: EdgeTracing
  counts: () => SpanCounts
  /** Exports what is queued now. */
  flush: () => Promise<void>
  /** Exports what is queued, then stops. */
  shutdown: () => Promise<void>
}

export function samplerOf (name: SamplerName, ratio: number): Sampler {
  switch (name) {
    case 'always_on': return new AlwaysOnSampler()
    case 'always_off': return new AlwaysOffSampler()
    case 'traceidratio': return new TraceIdRatioBasedSampler(ratio)
    case 'parentbased_always_on': return new ParentBasedSampler({ root: new AlwaysOnSampler() })
    case 'parentbased_always_off': return new ParentBasedSampler({ root: new AlwaysOffSampler() })
    case 'parentbased_traceidratio': return new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(ratio) })
  }
}

/**
 * The queue's bound, kept here rather than inside the batch processor: the processor
 * drops past its own bound silently (a debug line), and the operator must see the drops.
 * Every span handed on is pending until the exporter reports its batch; past
 * `maxQueueSize` pending, a span is dropped here and counted. The processor's own queue
 * is then never full.
 */
class BoundedQueue implements SpanProcessor {
  pending = 0
  readonly counts: SpanCounts = { exported: 0, droppedQueueFull: 0, droppedExportFailed: 0 }
  inner: SpanProcessor | null = null

  constructor (private readonly max: number) {}

  onStart (_span: Span, _parent: Context): void {}

  onEnd (span: ReadableSpan): void {
    if ((span.spanContext().traceFlags & TraceFlags.SAMPLED) === 0) return
    if (this.pending >= this.max) { this.counts.droppedQueueFull++; return }
    this.pending++
    this.inner?.onEnd(span)
  }

  settled (count: number, result: ExportResult): void {
    this.pending -= count
    if (result.code === ExportResultCode.SUCCESS) this.counts.exported += count
    else this.counts.droppedExportFailed += count
  }

  async forceFlush (): Promise<void> { await this.inner?.forceFlush() }
  async shutdown (): Promise<void> { await this.inner?.shutdown() }
}

/**
 * The SDK's random ids and its sampler, with room for what the edge already decided: the
 * edge asks the sampler on a trace id before it starts a span (edge/trace.ts), so that an
 * unsampled request makes none; the span it then starts takes that id and that decision
 * (the tracer asks its sampler once per span: a pinned decision answers it, once).
 */
class Pinned implements IdGenerator, TraceIds, Sampler {
  private readonly random = new RandomIdGenerator()
  private traceIdPinned: string | null = null
  private decision: SamplingResult | null = null

  constructor (private readonly sampler: Sampler) {}

  generateTraceId = (): string => {
    const id = this.traceIdPinned
    if (id === null) return this.random.generateTraceId()
    this.traceIdPinned = null
    return id
  }

  generateSpanId = (): string => this.random.generateSpanId()
  traceId = (): string => this.random.generateTraceId()
  spanId = (): string => this.random.generateSpanId()
  pin = (traceId: string | null, decision: SamplingResult | null): void => { this.traceIdPinned = traceId; this.decision = decision }

  shouldSample (context: Context, traceId: string, name: string, kind: SpanKind, attributes: Attributes, links: Link[]): SamplingResult {
    const decided = this.decision
    if (decided === null) return this.sampler.shouldSample(context, traceId, name, kind, attributes, links)
    this.decision = null
    return decided
  }

  toString (): string { return this.sampler.toString() }
}

/** The exporter, telling the queue how each batch ended. */
class CountingExporter implements SpanExporter {
  constructor (private readonly inner: SpanExporter, private readonly queue: BoundedQueue) {}

  export (spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    let reported = false
    this.inner.export(spans, result => {
      if (!reported) { reported = true; this.queue.settled(spans.length, result) }
      done(result)
    })
  }

  shutdown (): Promise<void> { return this.inner.shutdown() }
  forceFlush (): Promise<void> { return this.inner.forceFlush?.() ?? Promise.resolve() }
}

/** A receiver that is down fails every export: one warning per interval, with the count, not one per batch. */
const DIAG_INTERVAL_MS = 30_000

function diagLogger (log: Logger): DiagLogger {
  let last = 0
  let quiet = 0
  const say = (message: string): void => {
    const now = Date.now()
    if (now - last < DIAG_INTERVAL_MS) { quiet++; return }
    log.warn({ msg: 'tracing: export problem', detail: message.slice(0, 500), similar_since_last: quiet })
    last = now
    quiet = 0
  }
  const text = (m: string, args: unknown[]): string => [m, ...args.map(a => a instanceof Error ? a.message : typeof a === 'string' ? a : JSON.stringify(a))].join(' ')
  const ignore = (): void => {}
  return { error: (m, ...a) => say(text(m, a)), warn: (m, ...a) => say(text(m, a)), info: ignore, debug: ignore, verbose: ignore }
}

export function startTracing (config: TracingConfig, log: Logger, version: string): Tracing {
  diag.setLogger(diagLogger(log), { logLevel: DiagLogLevel.WARN, suppressOverrideMessage: true })
  const queue = new BoundedQueue(config.maxQueueSize)
  const options = { url: config.url, headers: config.headers }
  const exporter = new CountingExporter(config.protocol === 'http/json' ? new JsonExporter(options) : new ProtobufExporter(options), queue)
  queue.inner = new BatchSpanProcessor(exporter, { maxQueueSize: config.maxQueueSize })
  const resource = defaultResource().merge(resourceFromAttributes({
    ...config.resourceAttributes,
    'service.name': config.serviceName,
    'service.version': version,
    // With --workers every worker exports: its pid says which one.
    'process.pid': process.pid
  }))
  const sampler = samplerOf(config.sampler, config.samplerArg)
  const pinned = new Pinned(sampler)
  const provider = new BasicTracerProvider({ resource, sampler: pinned, idGenerator: pinned, spanProcessors: [queue] })
  // Not registered as the global provider: an app that embeds the edge keeps its own.
  const tracer: Tracer = provider.getTracer('highproxy', version)
  return {
    edge: edgeTracing({ tracer, sampler, ids: pinned, trustIncoming: config.trustIncoming }),
    counts: () => ({ ...queue.counts }),
    // A failed export rejects the flush; the counts already say what failed, and a flush at
    // shutdown must not turn a receiver that is down into an exit with an error.
    flush: () => provider.forceFlush().catch(() => {}),
    shutdown: () => provider.shutdown().catch(() => {})
  }
}
