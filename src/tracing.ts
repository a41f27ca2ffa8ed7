// The OpenTelemetry SDK, set up once per process (each worker exports its own spans):
// a tracer provider with the configured sampler and resource, whose finished spans are
// handed to the export thread (tracing-export.ts: the SDK's batch span processor in front
// of its OTLP/HTTP exporter, protobuf or JSON), and the count of what was not exported.
// The per-request side, an Exchange and its Attempts turned into spans, is edge/trace.ts;
// nothing here runs per request but the ids and the processor's onEnd.
//
// Why these packages: @opentelemetry/sdk-trace-base is the SDK without Node's automatic
// instrumentation (sdk-trace-node would add a context manager for async_hooks, which the
// edge does not need: its spans carry their parent explicitly). The two OTLP exporters
// are the SDK's own, so the wire format is never ours. @opentelemetry/resources builds the
// resource (service.name and the rest), @opentelemetry/core has the W3C propagator.
// The 2.x SDK line is used because 3.x needs Node 22; highproxy supports Node 20.

import { Worker } from 'node:worker_threads'
import { DiagLogLevel, diag, TraceFlags, type Attributes, type Context, type Link, type SpanKind, type Tracer } from '@opentelemetry/api'
import {
  AlwaysOffSampler, AlwaysOnSampler, BasicTracerProvider, ParentBasedSampler, RandomIdGenerator, TraceIdRatioBasedSampler,
  type IdGenerator, type ReadableSpan, type Sampler, type SamplingResult, type Span, type SpanProcessor
} from '@opentelemetry/sdk-trace-base'
import type { Logger } from 'pino'
import type { SamplerName, TracingConfig } from './config/tracing.js'
import { edgeTracing, type EdgeTracing, type TraceIds } from './edge/trace.js'
import { diagLines } from './tracing-diag.js'
import type { ExportSetup, FromExporter, ToExporter } from './tracing-export.js'
import { encodeSpan, type Wire } from './tracing-wire.js'

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

/** Spans go to the export thread this often, or at once when this many wait: one copy per handful, not per span. */
const SHIP_MS = 1000
const SHIP_AT = 256

/**
 * The span processor of the request thread: it hands each sampled span to the export
 * thread, and keeps the queue's bound. The bound is kept here rather than by the batch
 * processor, which drops past its own bound silently (a debug line): the operator must see
 * the drops. Every span handed on is pending until the exporter reports its batch; past
 * `maxQueueSize` pending, a span is dropped here and counted. The processor's own queue is
 * then never full. The thread does not keep the process alive, except while a flush or
 * shutdown it was asked for is awaited.
 */
export class Shipper implements SpanProcessor {
  pending = 0
  readonly counts: SpanCounts = { exported: 0, droppedQueueFull: 0, droppedExportFailed: 0 }
  private wire: Wire = []
  /** Spans in `wire`. */
  private held = 0
  private timer: NodeJS.Timeout | null = null
  private asked = 0
  private readonly waiting = new Map<number, () => void>()
  /** The thread is gone (it failed, exited, or was shut down): what would be handed on is counted as failed. */
  private gone = false

  constructor (private readonly max: number, private readonly worker: Worker, say: (m: string) => void) {
    worker.unref()
    worker.on('message', (m: FromExporter) => {
      if ('settled' in m) this.settled(m.settled, m.ok)
      else if ('done' in m) this.answered(m.done)
      else say(m.diag)
    })
    worker.on('error', err => { say(`the export thread failed: ${err.message}`) })
    worker.on('exit', code => {
      if (!this.gone) say(`the export thread exited (code ${code}): spans are counted as export_failed from now on`)
      this.lost()
    })
  }

  onStart (_span: Span, _parent: Context): void {}

  onEnd (span: ReadableSpan): void {
    if ((span.spanContext().traceFlags & TraceFlags.SAMPLED) === 0) return
    if (this.pending >= this.max) { this.counts.droppedQueueFull++; return }
    this.pending++
    encodeSpan(span, this.wire)
    if (++this.held >= SHIP_AT) this.ship()
    else this.timer ??= setTimeout(this.ship, SHIP_MS).unref()
  }

  private readonly ship = (): void => {
    if (this.timer !== null) { clearTimeout(this.timer); this.timer = null }
    if (this.held === 0) return
    const spans = this.wire
    const count = this.held
    this.wire = []
    this.held = 0
    if (this.gone) this.settled(count, false)
    else this.post({ spans })
  }

  private settled (count: number, ok: boolean): void {
    this.pending -= count
    if (ok) this.counts.exported += count
    else this.counts.droppedExportFailed += count
  }

  private post (m: ToExporter): void { this.worker.postMessage(m) }

  /** Hands on what waits, then asks the thread to flush (or shut down) and waits for its answer. */
  private ask (what: 'flush' | 'shutdown'): Promise<void> {
    this.ship()
    if (this.gone) return Promise.resolve()
    const id = ++this.asked
    this.worker.ref()
    return new Promise<void>(resolve => {
      this.waiting.set(id, resolve)
      this.post(what === 'flush' ? { flush: id } : { shutdown: id })
    })
  }

  private answered (id: number): void {
    this.waiting.get(id)?.()
    this.waiting.delete(id)
    if (this.waiting.size === 0) this.worker.unref()
  }

  private lost (): void {
    if (this.gone) return
    this.gone = true
    // What the thread held never reaches the receiver.
    this.settled(this.pending - this.held, false)
    for (const resolve of this.waiting.values()) resolve()
    this.waiting.clear()
  }

  forceFlush (): Promise<void> { return this.ask('flush') }

  async shutdown (): Promise<void> {
    await this.ask('shutdown')
    this.gone = true
    await this.worker.terminate()
  }
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

/** A receiver that is down fails every export: one warning per interval, with the count, not one per batch. */
const DIAG_INTERVAL_MS = 30_000

function exportProblems (log: Logger): (message: string) => void {
  let last = 0
  let quiet = 0
  return message => {
    const now = Date.now()
    if (now - last < DIAG_INTERVAL_MS) { quiet++; return }
    log.warn({ msg: 'tracing: export problem', detail: message.slice(0, 500), similar_since_last: quiet })
    last = now
    quiet = 0
  }
}

/** The export thread's module, beside this one (dist/tracing-export.js, or the .ts a TypeScript loader maps it to). */
const EXPORT_THREAD = new URL('./tracing-export.js', import.meta.url)

export function startTracing (config: TracingConfig, log: Logger, version: string): Tracing {
  const say = exportProblems(log)
  diag.setLogger(diagLines(say), { logLevel: DiagLogLevel.WARN, suppressOverrideMessage: true })
  const setup: ExportSetup = {
    url: config.url,
    protocol: config.protocol,
    headers: config.headers,
    maxQueueSize: config.maxQueueSize,
    resource: {
      ...config.resourceAttributes,
      'service.name': config.serviceName,
      'service.version': version,
      // With --workers every worker exports: its pid says which one.
      'process.pid': process.pid
    },
    scope: { name: 'highproxy', version },
    highproxyExport: true
  }
  const queue = new Shipper(config.maxQueueSize, new Worker(EXPORT_THREAD, { workerData: setup }), say)
  const sampler = samplerOf(config.sampler, config.samplerArg)
  const pinned = new Pinned(sampler)
  const provider = new BasicTracerProvider({ sampler: pinned, idGenerator: pinned, spanProcessors: [queue] })
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
