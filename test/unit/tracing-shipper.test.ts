// The request thread's side of span export (tracing.ts, Shipper; tracing-wire.ts): the
// bound, what happens to spans when the export thread is gone, and the spans' way across.
// The export itself is tested end to end in e2e/tracing.test.ts.

import { Worker } from 'node:worker_threads'
import t from 'tap'
import { SpanKind, SpanStatusCode, TraceFlags } from '@opentelemetry/api'
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base'
import { TraceState } from '@opentelemetry/core'
import { Shipper } from '../../src/tracing.js'
import { decodeSpans, encodeSpan, type Wire } from '../../src/tracing-wire.js'

t.test('an export thread that exits: what it held and everything after is counted as failed, said once; a flush does not hang', async t => {
  // A thread that answers nothing and exits on the first spans it gets.
  const worker = new Worker('require("node:worker_threads").parentPort.on("message", m => { if (m.spans) process.exit(3) })', { eval: true })
  const said: string[] = []
  const shipper = new Shipper(10, worker, m => { said.push(m) })
  const tracer = new BasicTracerProvider({ spanProcessors: [shipper] }).getTracer('test')
  tracer.startSpan('one').end()
  tracer.startSpan('two').end()
  t.equal(shipper.pending, 2, 'pending until the exporter reports')
  await shipper.forceFlush()
  t.same(shipper.counts, { exported: 0, droppedQueueFull: 0, droppedExportFailed: 2 }, 'the two it held: failed')
  t.match(said, [/^the export thread exited \(code 3\): spans are counted as export_failed/], 'said once, for the log')
  tracer.startSpan('three').end()
  await shipper.forceFlush()
  t.same(shipper.counts, { exported: 0, droppedQueueFull: 0, droppedExportFailed: 3 }, 'one ended after: failed too')
  t.equal(shipper.pending, 0)
  await shipper.shutdown()
  t.equal(said.length, 1)
})

t.test('the bound: past max_queue_size pending, a span is dropped and counted as queue_full', async t => {
  const worker = new Worker('require("node:worker_threads").parentPort.on("message", () => {})', { eval: true })
  const shipper = new Shipper(2, worker, () => {})
  const tracer = new BasicTracerProvider({ spanProcessors: [shipper] }).getTracer('test')
  for (let i = 0; i < 5; i++) tracer.startSpan(`s${i}`).end()
  t.same(shipper.counts, { exported: 0, droppedQueueFull: 3, droppedExportFailed: 0 })
  await worker.terminate()
})

t.test('a span crosses as it was: ids, parent, times, status, attributes of every kind, events, links, trace state', async t => {
  const memory = new InMemorySpanExporter()
  const tracer = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(memory)] }).getTracer('test')
  const linked = { traceId: 'a'.repeat(32), spanId: 'b'.repeat(16), traceFlags: TraceFlags.SAMPLED, isRemote: true, traceState: new TraceState('k=v') }
  const parent = tracer.startSpan('parent', { kind: SpanKind.SERVER, links: [{ context: linked, attributes: { why: 'untrusted caller' } }] })
  parent.setAttributes({ s: 'x', n: 2.5, b: false, list: ['a', 'b'] })
  parent.addEvent('first byte', { 'highproxy.duration_ms': 1.5 }, 1000)
  parent.setStatus({ code: SpanStatusCode.ERROR, message: 'refused' })
  parent.end()
  const sent = memory.getFinishedSpans()[0] as ReadableSpan
  const wire: Wire = []
  encodeSpan(sent, wire)
  encodeSpan(sent, wire)
  const origin = { resource: sent.resource, scope: { name: 'test' } }
  const [got, again] = decodeSpans(structuredClone(wire), origin)
  t.match(got, {
    name: 'parent',
    kind: SpanKind.SERVER,
    parentSpanContext: undefined,
    startTime: sent.startTime,
    endTime: sent.endTime,
    duration: sent.duration,
    ended: true,
    status: { code: SpanStatusCode.ERROR, message: 'refused' },
    attributes: { s: 'x', n: 2.5, b: false, list: ['a', 'b'] },
    events: [{ name: 'first byte', attributes: { 'highproxy.duration_ms': 1.5 }, time: sent.events[0]?.time, droppedAttributesCount: 0 }],
    links: [{ context: { traceId: linked.traceId, spanId: linked.spanId, traceFlags: TraceFlags.SAMPLED, isRemote: true }, attributes: { why: 'untrusted caller' }, droppedAttributesCount: 0 }],
    droppedAttributesCount: 0,
    droppedEventsCount: 0,
    droppedLinksCount: 0
  })
  t.same(got?.spanContext(), { traceId: sent.spanContext().traceId, spanId: sent.spanContext().spanId, traceFlags: TraceFlags.SAMPLED, isRemote: false }, 'its own ids, no trace state')
  t.equal(got?.links[0]?.context.traceState?.serialize(), 'k=v', "the link's trace state")
  t.equal(got?.resource, origin.resource, "the reading side's resource and scope")
  t.equal(got?.instrumentationScope, origin.scope)
  const back: Wire = []
  for (const span of [got, again]) encodeSpan(span as ReadableSpan, back)
  t.same(back, wire, 'spans follow one another in one batch; read back, they encode as they were sent')
})
