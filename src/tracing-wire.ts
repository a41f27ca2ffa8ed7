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

import type { Attributes, AttributeValue, HrTime, Link, SpanContext, SpanKind } from '@opentelemetry/api'
import { TraceState, hrTimeDuration } from '@opentelemetry/core'
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

/** What a reading side gives every span it reads: its own resource and instrumentation scope. */
export interface SpanOrigin {
  resource: ReadableSpan['resource']
  scope: ReadableSpan['instrumentationScope']
}

/** Reads every span of a batch, as the SDK's ReadableSpans. */
export function decodeSpans (w: Wire, origin: SpanOrigin): ReadableSpan[] {
  let i = 0
  const next = (): unknown => w[i++]
  const str = (): string => next() as string
  const num = (): number => next() as number
  const attributes = (): Attributes => {
    const a: Attributes = {}
    for (let n = num(); n > 0; n--) { const k = str(); a[k] = next() as AttributeValue }
    return a
  }
  /** Trace id, span id, flags, trace state (or null), in that order; `isRemote` read by the caller. */
  const context = (isRemote: () => boolean): SpanContext => {
    const traceId = str()
    const spanId = str()
    const traceFlags = num()
    const state = next() as string | null
    return { traceId, spanId, traceFlags, isRemote: isRemote(), ...(state === null ? {} : { traceState: new TraceState(state) }) }
  }
  const spans: ReadableSpan[] = []
  while (i < w.length) {
    const name = str()
    const kind = num() as SpanKind
    const own = context(() => false)
    const parentSpanId = next() as string | null
    const parentIsRemote = next() as boolean
    const startTime: HrTime = [num(), num()]
    const endTime: HrTime = [num(), num()]
    const code = num()
    const message = next() as string | null
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
    const links: Link[] = []
    for (let n = num(); n > 0; n--) {
      const lc = context(() => next() as boolean)
      const dropped = num()
      const a = attributes()
      links.push({ context: lc, droppedAttributesCount: dropped, ...(Object.keys(a).length > 0 ? { attributes: a } : {}) })
    }
    spans.push({
      name,
      kind,
      spanContext: () => own,
      parentSpanContext: parentSpanId === null ? undefined : { traceId: own.traceId, spanId: parentSpanId, traceFlags: own.traceFlags, isRemote: parentIsRemote },
      startTime,
      endTime,
      status: message === null ? { code } : { code, message },
      attributes: attrs,
      links,
      events,
      duration: hrTimeDuration(startTime, endTime),
      ended: true,
      resource: origin.resource,
      instrumentationScope: origin.scope,
      droppedAttributesCount,
      droppedEventsCount,
      droppedLinksCount
    })
  }
  return spans
}
