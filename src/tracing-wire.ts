// How finished spans cross from the thread that made them to the export thread: one flat
// array of numbers and strings per handful of spans. A structured clone of the spans as
// objects (a dozen attributes, events, times) cost 7–10 µs per span, more than the OTLP
// serialization it was moving off the request thread; the same facts as a flat list of
// values clone in under 3 µs (v8.serialize and deserialize of 256 server spans, the cost
// of postMessage's copy, one process, 2026-12-07).
//
// Per span, in order: name, kind, trace id, span id, trace flags, trace state (or null),
// parent span id (or null), parent is remote, start [s, ns], end [s, ns], status code,
// status message (or null), the three dropped counts; then the attributes (count, then key
// and value pairs), the events (count; each: name, time [s, ns], dropped attributes,
// attributes), the links (count; each: trace id, span id, flags, trace state, is remote,
// dropped attributes, attributes).

import type { Attributes, AttributeValue, HrTime, Link, SpanContext, SpanKind, SpanStatus } from '@opentelemetry/api'
import type { ReadableSpan, TimedEvent } from '@opentelemetry/sdk-trace-base'

export type Wire = Array<string | number | boolean | null | AttributeValue>

function putAttributes (out: Wire, a: Attributes | undefined): void {
  if (a === undefined) { out.push(0); return }
  const keys = Object.keys(a)
  out.push(keys.length)
  for (const k of keys) out.push(k, a[k] ?? null)
}

/** Appends one finished span to `out`. */
export function encodeSpan (span: ReadableSpan, out: Wire): void {
  const c = span.spanContext()
  const parent = span.parentSpanContext
  out.push(span.name, span.kind, c.traceId, c.spanId, c.traceFlags, c.traceState?.serialize() ?? null,
    parent?.spanId ?? null, parent?.isRemote === true, span.startTime[0], span.startTime[1], span.endTime[0], span.endTime[1],
    span.status.code, span.status.message ?? null, span.droppedAttributesCount, span.droppedEventsCount, span.droppedLinksCount)
  putAttributes(out, span.attributes)
  out.push(span.events.length)
  for (const e of span.events) {
    const t = e.time
    out.push(e.name, t[0], t[1], e.droppedAttributesCount ?? 0)
    putAttributes(out, e.attributes)
  }
  out.push(span.links.length)
  for (const l of span.links) {
    const lc = l.context
    out.push(lc.traceId, lc.spanId, lc.traceFlags, lc.traceState?.serialize() ?? null, lc.isRemote === true, l.droppedAttributesCount ?? 0)
    putAttributes(out, l.attributes)
  }
}

/** A span read back: everything but what the reading side supplies (its resource and scope, and trace states as objects). */
export interface DecodedSpan {
  name: string
  kind: SpanKind
  context: SpanContext & { traceStateText: string | null }
  parentSpanId: string | null
  parentIsRemote: boolean
  startTime: HrTime
  endTime: HrTime
  status: SpanStatus
  attributes: Attributes
  events: TimedEvent[]
  links: Array<Omit<Link, 'context'> & { context: SpanContext & { traceStateText: string | null } }>
  droppedAttributesCount: number
  droppedEventsCount: number
  droppedLinksCount: number
}

/** Reads every span of a batch. */
export function decodeSpans (w: Wire): DecodedSpan[] {
  let i = 0
  const next = (): unknown => w[i++]
  const str = (): string => next() as string
  const num = (): number => next() as number
  const attributes = (): Attributes => {
    const a: Attributes = {}
    for (let n = num(); n > 0; n--) { const k = str(); a[k] = next() as AttributeValue }
    return a
  }
  const spans: DecodedSpan[] = []
  while (i < w.length) {
    const name = str()
    const kind = num() as SpanKind
    const traceId = str()
    const context = { traceId, spanId: str(), traceFlags: num(), traceStateText: next() as string | null }
    const parentSpanId = next() as string | null
    const parentIsRemote = next() as boolean
    const startTime: HrTime = [num(), num()]
    const endTime: HrTime = [num(), num()]
    const code = num()
    const message = next() as string | null
    const status: SpanStatus = message === null ? { code } : { code, message }
    const droppedAttributesCount = num()
    const droppedEventsCount = num()
    const droppedLinksCount = num()
    const attrs = attributes()
    const events: TimedEvent[] = []
    for (let n = num(); n > 0; n--) {
      const eventName = str()
      const time: HrTime = [num(), num()]
      const dropped = num()
      events.push({ name: eventName, time, droppedAttributesCount: dropped, attributes: attributes() })
    }
    const links: DecodedSpan['links'] = []
    for (let n = num(); n > 0; n--) {
      const lc = { traceId: str(), spanId: str(), traceFlags: num(), traceStateText: next() as string | null, isRemote: next() as boolean }
      const dropped = num()
      const a = attributes()
      links.push({ context: lc, droppedAttributesCount: dropped, ...(Object.keys(a).length > 0 ? { attributes: a } : {}) })
    }
    spans.push({ name, kind, context, parentSpanId, parentIsRemote, startTime, endTime, status, attributes: attrs, events, links, droppedAttributesCount, droppedEventsCount, droppedLinksCount })
  }
  return spans
}
