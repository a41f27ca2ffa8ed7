// The export thread: the SDK's batch span processor and OTLP exporter, in a worker thread
// of their own. The thread that serves requests hands its finished spans over as data
// (tracing-wire.ts); here they become the SDK's ReadableSpans again, and are batched,
// serialized and sent as the SDK does on any thread.
//
// Why a thread: with the exporter on the request thread, a process sampling 1% of its
// requests cost 7–10% more CPU than one with tracing off, though its spans and their
// export came to under 2% in its profile: every batch ran the SDK's serializer and Node's
// HTTP client on the isolate whose code V8 had optimized for serving requests, and V8 kept
// recompiling both. A worker has its own isolate; side by side, moving the batching and
// serialization here took a point or three off the 1% reading (docs/tracing.md, Cost).
// Moving only the sending (the serialized bytes handed over) did not.
//
// Messages in: { spans: Wire }, { flush: id }, { shutdown: id }.
// Messages out: { settled: n, ok } for each export, for the counts; { done: id } when a
// flush or shutdown is over; { diag: text }, an export problem for the main log.

import { parentPort, workerData } from 'node:worker_threads'
import { DiagLogLevel, diag } from '@opentelemetry/api'
import { ExportResultCode, type ExportResult } from '@opentelemetry/core'
import { OTLPTraceExporter as ProtobufExporter } from '@opentelemetry/exporter-trace-otlp-proto'
import { OTLPTraceExporter as JsonExporter } from '@opentelemetry/exporter-trace-otlp-http'
import { defaultResource, resourceFromAttributes } from '@opentelemetry/resources'
import { BatchSpanProcessor, type ReadableSpan, type SpanExporter } from '@opentelemetry/sdk-trace-base'
import { diagLines } from './tracing-diag.js'
import { decodeSpans, type Wire } from './tracing-wire.js'

/** What the main thread gives the export thread when it starts. */
export interface ExportSetup {
  url: string
  protocol: 'http/protobuf' | 'http/json'
  headers: Record<string, string>
  maxQueueSize: number
  /** The resource's attributes, service.name and the rest, as the main thread settled them. */
  resource: Record<string, string | number>
  scope: { name: string, version: string }
  /** Marks the thread as this one: an app that runs highproxy in a worker thread of its own never starts an exporter by importing this. */
  highproxyExport: true
}

export type ToExporter = { spans: Wire } | { flush: number } | { shutdown: number }
export type FromExporter = { settled: number, ok: boolean } | { done: number } | { diag: string }

/** The exporter, telling the main thread how each batch ended (once, whatever the SDK calls back). */
class CountingExporter implements SpanExporter {
  constructor (private readonly inner: SpanExporter, private readonly tell: (m: FromExporter) => void) {}

  export (spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    let reported = false
    this.inner.export(spans, result => {
      if (!reported) { reported = true; this.tell({ settled: spans.length, ok: result.code === ExportResultCode.SUCCESS }) }
      done(result)
    })
  }

  shutdown (): Promise<void> { return this.inner.shutdown() }
  forceFlush (): Promise<void> { return this.inner.forceFlush?.() ?? Promise.resolve() }
}

function run (port: NonNullable<typeof parentPort>, setup: ExportSetup): void {
  const tell = (m: FromExporter): void => { port.postMessage(m) }
  diag.setLogger(diagLines(line => { tell({ diag: line }) }), { logLevel: DiagLogLevel.WARN, suppressOverrideMessage: true })
  const options = { url: setup.url, headers: setup.headers }
  const exporter = new CountingExporter(setup.protocol === 'http/json' ? new JsonExporter(options) : new ProtobufExporter(options), tell)
  const processor = new BatchSpanProcessor(exporter, { maxQueueSize: setup.maxQueueSize })
  const origin = { resource: defaultResource().merge(resourceFromAttributes(setup.resource)), scope: setup.scope }
  // A failed export rejects a flush; the counts already say what failed.
  const answer = (p: Promise<void>, id: number): void => { p.catch(() => {}).finally(() => { tell({ done: id }) }) }
  port.on('message', (m: ToExporter) => {
    if ('spans' in m) for (const span of decodeSpans(m.spans, origin)) processor.onEnd(span)
    else if ('flush' in m) answer(processor.forceFlush(), m.flush)
    else answer(processor.shutdown(), m.shutdown)
  })
}

if (parentPort !== null && (workerData as Partial<ExportSetup> | null)?.highproxyExport === true) run(parentPort, workerData as ExportSetup)
