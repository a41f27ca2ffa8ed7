// Traces: one exchange is one SERVER span, each attempt at an origin one CLIENT span, in
// the stable HTTP semantic conventions. A span is filled in where the access and failure
// lines are written, from the facts they carry; what must exist earlier is only what the
// wire needs: the server span at arrival (to continue the client's trace), and the
// attempt's client span before its request goes out (the origin's traceparent names it).
//
// Tracing off: the exchange's `trace` is null and every hook is that one check.
// Tracing on, a request not sampled: the sampler is asked before any span exists, and the
// request gets two ids (its trace's and its server span's, for the logs and the origin's
// traceparent) and nothing else: no Span, no Context, no attributes.

import { performance } from 'node:perf_hooks'
import type { IncomingHttpHeaders } from 'node:http'
import {
  ROOT_CONTEXT, SpanKind, SpanStatusCode, isSpanContextValid, trace,
  type Attributes, type Context, type Link, type Span, type SpanContext, type TextMapGetter, type TraceState, type Tracer
} from '@opentelemetry/api'
import { W3CTraceContextPropagator } from '@opentelemetry/core'
import { SamplingDecision, type Sampler, type SamplingResult } from '@opentelemetry/sdk-trace-base'
import type { FailureRecord } from '../log/log.js'
import { CLIENT_ABORT_STATUS, classify, type Classification } from '../status/classify.js'
import { dialErrorIn } from '../status/errors.js'
import type { Attempt } from './attempt.js'
import type { Exchange } from './exchange.js'

/**
 * What the edge traces with: built once per process (tracing.ts), and the only way in to
 * this module, so that the OpenTelemetry packages are loaded only when tracing is on.
 */
export interface EdgeTracing {
  /** The spans of a request that just arrived. */
  begin: (exchange: Exchange) => ExchangeTrace
}

export interface TracingOptions {
  readonly tracer: Tracer
  /** The tracer's own sampler: asked first, so that an unsampled request makes no span. */
  readonly sampler: Sampler
  /** The tracer's id generator. */
  readonly ids: TraceIds
  /** Continue a client's traceparent; false: start a new trace, linked to the client's. */
  readonly trustIncoming: boolean
}

export function edgeTracing (options: TracingOptions): EdgeTracing {
  return { begin: exchange => new ExchangeTrace(options, exchange) }
}

const propagator = new W3CTraceContextPropagator()

const headerGetter: TextMapGetter<IncomingHttpHeaders> = {
  get: (carrier, key) => carrier[key],
  keys: carrier => Object.keys(carrier)
}

/** The methods the semantic conventions name; any other is `_OTHER` (its spelling goes in http.request.method_original). */
const KNOWN_METHODS = new Set(['CONNECT', 'DELETE', 'GET', 'HEAD', 'OPTIONS', 'PATCH', 'POST', 'PUT', 'QUERY', 'TRACE'])

/** The log lines' correlation fields (OpenTelemetry's names for logs). */
export interface TraceFields {
  trace_id: string
  span_id: string
  trace_flags: string
}

interface AttemptSpan {
  readonly attempt: Attempt
  readonly span: Span
  readonly start: number
  ended: boolean
}

const hexFlags = (flags: number): string => (flags & 0xff).toString(16).padStart(2, '0')

/**
 * The trace ids the edge makes itself, and the one the tracer's next root span takes: the
 * sampler decides on a trace id before any span exists (an unsampled request then makes
 * none), and the server span of a sampled one must carry that same id.
 */
export interface TraceIds {
  traceId: () => string
  spanId: () => string
  /**
   * The next span the tracer starts takes this sampling decision (already made, so it is
   * not made twice) and, a root span, this trace id (the one the decision was made on).
   */
  pin: (traceId: string | null, decision: SamplingResult | null) => void
}

/** The sampler's read-only inputs for a server span: none of the standard samplers reads them. */
const NO_ATTRIBUTES: Attributes = Object.freeze({})
const NO_LINKS: Link[] = []

export class ExchangeTrace {
  /** The server span; null when the request is not sampled (nothing is made for it but its ids). */
  readonly server: Span | null
  readonly recording: boolean
  readonly traceId: string
  /** The server span's id (an unsampled request's is made here, for the logs and the origin's traceparent). */
  readonly spanId: string
  /** The trace flags as the logs write them: 01 sampled, 00 not. */
  readonly flags: string
  private readonly traceState: TraceState | undefined
  /** The span name: the method, or HTTP for one the conventions do not name. */
  private readonly name: string
  /** Made on the first attempt of a sampled request only. */
  private attempts: AttemptSpan[] | null = null
  private readonly context: Context | null
  /** An unsampled request's traceparent, the same for each of its attempts. */
  private traceparent: string | null = null
  /** The RFC 9209 type of the failure the edge answered for, for the server span. */
  private failureType: string | null = null

  constructor (private readonly tracing: TracingOptions, private readonly exchange: Exchange) {
    let parent = ROOT_CONTEXT
    let remote: SpanContext | undefined
    let links: Link[] | undefined
    // Most requests come without one: no context is built for them.
    if (exchange.headers.traceparent !== undefined) {
      const incoming = propagator.extract(ROOT_CONTEXT, exchange.headers, headerGetter)
      const sc = trace.getSpanContext(incoming)
      if (sc !== undefined && isSpanContextValid(sc)) {
        // An untrusted caller's trace is linked, not joined: its sampled flag decides nothing here.
        if (tracing.trustIncoming) { parent = incoming; remote = sc } else links = [{ context: sc }]
      }
    }
    this.name = KNOWN_METHODS.has(exchange.method) ? exchange.method : 'HTTP'
    // The sampling decision first, on the trace id, as the SDK's tracer would make it: a
    // request that is not sampled then costs two ids and nothing else (no Span, no Context).
    const traceId = remote?.traceId ?? tracing.ids.traceId()
    const decision = tracing.sampler.shouldSample(parent, traceId, this.name, SpanKind.SERVER, NO_ATTRIBUTES, links ?? NO_LINKS)
    if (decision.decision === SamplingDecision.NOT_RECORD) {
      this.server = null
      this.recording = false
      this.context = null
      this.traceId = traceId
      this.spanId = tracing.ids.spanId()
      this.flags = '00'
      this.traceState = decision.traceState ?? remote?.traceState
      return
    }
    // The tracer's span takes the decision made here, and a new trace the id it was made on.
    tracing.ids.pin(remote === undefined ? traceId : null, decision)
    const server = tracing.tracer.startSpan(this.name, { kind: SpanKind.SERVER, startTime: exchange.start, links }, parent)
    tracing.ids.pin(null, null)
    const c = server.spanContext()
    this.server = server
    this.recording = server.isRecording()
    this.context = trace.setSpan(ROOT_CONTEXT, server)
    this.traceId = c.traceId
    this.spanId = c.spanId
    this.flags = hexFlags(c.traceFlags)
    this.traceState = c.traceState
    if (this.recording) server.setAttributes(serverAttributes(exchange))
  }

  /** The span ids a log line carries: the attempt's client span, or the server span. */
  fields (attempt: Attempt | null = null): TraceFields {
    const entry = attempt === null ? undefined : this.spanOf(attempt)
    if (entry === undefined) return { trace_id: this.traceId, span_id: this.spanId, trace_flags: this.flags }
    const c = entry.span.spanContext()
    return { trace_id: c.traceId, span_id: c.spanId, trace_flags: hexFlags(c.traceFlags) }
  }

  /** The trace id for an error page: only when the trace is recorded (an unsampled id leads nowhere). */
  pageTraceId (): string | null {
    return this.recording ? this.traceId : null
  }

  /**
   * An attempt begins (before its dial): its client span. Not for a request that is not
   * recorded: with every standard sampler its children would not be either (a parent-based
   * one follows the parent, a ratio one decides on the same trace id), so the origin's
   * traceparent names the server span's id, and nothing more is made.
   */
  attemptStarted (attempt: Attempt): void {
    if (!this.recording) return
    const member = attempt.member
    const start = performance.now()
    const span = this.tracing.tracer.startSpan(this.name, { kind: SpanKind.CLIENT, startTime: start }, this.context ?? ROOT_CONTEXT)
    if (span.isRecording()) {
      const url = member.url
      const attributes: Attributes = {
        'http.request.method': methodOf(this.exchange.method),
        'server.address': url.hostname,
        'server.port': url.port === '' ? (url.protocol === 'https:' ? 443 : 80) : Number(url.port),
        // The path only: a query may carry secrets, and the origin's logs have it.
        'url.full': member.origin + this.exchange.path,
        'highproxy.pool': member.pool,
        'highproxy.attempt': attempt.number
      }
      if (this.exchange.method !== attributes['http.request.method']) attributes['http.request.method_original'] = this.exchange.method
      if (attempt.number > 1) attributes['http.request.resend_count'] = attempt.number - 1
      span.setAttributes(attributes)
    }
    const entry: AttemptSpan = { attempt, span, start, ended: false }
    if (this.attempts === null) this.attempts = [entry]
    else this.attempts.push(entry)
  }

  /**
   * The origin's traceparent (and tracestate): the current attempt's client span is its
   * parent. Written here rather than by the SDK's propagator, which wants a Context per call.
   */
  inject (headers: string[]): void {
    if (!this.recording) {
      headers.push('traceparent', this.traceparent ??= `00-${this.traceId}-${this.spanId}-${this.flags}`)
    } else {
      const attempt = this.exchange.attempt
      const current = attempt === null ? undefined : this.spanOf(attempt)
      if (current === undefined) headers.push('traceparent', `00-${this.traceId}-${this.spanId}-${this.flags}`)
      else {
        const c = current.span.spanContext()
        headers.push('traceparent', `00-${c.traceId}-${c.spanId}-${hexFlags(c.traceFlags)}`)
      }
    }
    if (this.traceState !== undefined) headers.push('tracestate', this.traceState.serialize())
  }

  /** The attempt is over: its client span ends with how far it got and how it ended. */
  attemptEnded (attempt: Attempt): void {
    const entry = this.spanOf(attempt)
    if (entry === undefined || entry.ended) return
    entry.ended = true
    const span = entry.span
    if (span.isRecording()) describeAttempt(span, attempt, entry.start, this.exchange.start, this.exchange.aborted)
    span.end()
  }

  /** A failure line: it carries the span ids, and the server span learns the failure's type. */
  failed (record: FailureRecord, attempt: Attempt | null, c: Classification): void {
    const f = this.fields(attempt)
    record.trace_id = f.trace_id
    record.span_id = f.span_id
    record.trace_flags = f.trace_flags
    if (c.status >= 500 || record.truncated) this.failureType = c.proxyStatus ?? c.code ?? '_OTHER'
  }

  /** The exchange is over (its access line): the server span ends, and any attempt still open. */
  end (status: number): void {
    const span = this.server
    if (span === null) return
    const exchange = this.exchange
    if (this.attempts !== null) for (const entry of this.attempts) if (!entry.ended) this.attemptEnded(entry.attempt)
    if (this.recording) {
      const route = exchange.route?.config.name ?? null
      if (route !== null) span.updateName(`${this.name} ${route}`)
      // highproxy.ray_id is set at the start, with the request's attributes.
      const a: Attributes = {}
      if (route !== null) a['highproxy.route'] = route
      if (exchange.pool !== null) a['highproxy.pool'] = exchange.pool.config.name
      if (exchange.edgeStatus !== null) a['highproxy.edge_status'] = exchange.edgeStatus
      if (exchange.failure?.served === 'stale') a['highproxy.served'] = 'stale'
      if (exchange.refused !== null) a['highproxy.refused'] = exchange.refused
      if (exchange.upgrade !== null) a['highproxy.upgrade'] = exchange.upgrade
      // 499: the client left; no status went out, and the edge is not at fault.
      if (status !== CLIENT_ABORT_STATUS) a['http.response.status_code'] = status
      if (exchange.truncated) {
        a['error.type'] = this.failureType ?? 'http_response_incomplete'
        span.setStatus({ code: SpanStatusCode.ERROR, message: 'the origin failed after the status was sent: the client got a cut connection' })
      } else if (status >= 500 && status !== CLIENT_ABORT_STATUS) {
        // A server span is an error for 5xx only (4xx is the client's).
        a['error.type'] = this.failureType ?? String(status)
        span.setStatus({ code: SpanStatusCode.ERROR })
      }
      span.setAttributes(a)
    }
    span.end()
  }

  private spanOf (attempt: Attempt): AttemptSpan | undefined {
    const attempts = this.attempts
    if (attempts === null) return undefined
    for (let i = attempts.length - 1; i >= 0; i--) {
      const entry = attempts[i] as AttemptSpan
      if (entry.attempt === attempt) return entry
    }
    return undefined
  }
}

const methodOf = (method: string): string => KNOWN_METHODS.has(method) ? method : '_OTHER'

function serverAttributes (exchange: Exchange): Attributes {
  const client = exchange.client
  const a: Attributes = {
    'http.request.method': methodOf(exchange.method),
    'url.path': exchange.path,
    'url.scheme': client.scheme,
    'client.address': client.ip,
    'network.protocol.version': exchange.http2 ? '2' : exchange.req.httpVersion,
    'highproxy.ray_id': exchange.ray
  }
  if (a['http.request.method'] !== exchange.method) a['http.request.method_original'] = exchange.method
  // The socket's address only when a trusted proxy header made client.address another one:
  // the same value twice is bytes in every exported span and nothing more to read.
  if (client.peer !== client.ip) a['network.peer.address'] = client.peer
  const host = exchange.host
  // host[:port], or [v6]:port.
  const m = /^(\[[^\]]*\]|[^:]*)(?::([0-9]+))?$/.exec(host)
  if (m !== null && m[1] !== '') {
    a['server.address'] = m[1] as string
    if (m[2] !== undefined) a['server.port'] = Number(m[2])
  }
  const agent = exchange.headers['user-agent']
  if (agent !== undefined) a['user_agent.original'] = agent
  return a
}

/** One dial phase: its duration as an attribute, and an event at the time it ended. */
function phase (span: Span, a: Attributes, name: string, key: string, ms: number, at: number): number {
  a[key] = ms
  span.addEvent(name, { 'highproxy.duration_ms': ms }, at + ms)
  return at + ms
}

/**
 * The attempt's facts on its span: where it went (the address dialled), its phases as
 * events with their durations, the origin's status, and how it failed. A client span is
 * an error for any failure and for an origin's 4xx or 5xx (the conventions' client rule).
 */
function describeAttempt (span: Span, attempt: Attempt, start: number, exchangeStart: number, clientLeft: boolean): void {
  const err = attempt.error
  const dialErr = dialErrorIn(err)
  const info = attempt.connection?.info ?? null
  const timings = dialErr?.timings ?? (attempt.fresh ? info?.timings ?? null : null)
  const a: Attributes = {}
  const address = dialErr?.address ?? info?.address ?? null
  if (address !== null) {
    a['network.peer.address'] = address
    a['network.peer.port'] = dialErr?.port ?? info?.port ?? 0
  }
  // Not network.local.*: opt-in in the conventions; a failure line's `source` has the edge's end.
  if (info !== null && dialErr === null) a['highproxy.connection.reused'] = !attempt.fresh
  // Phase events, at the time each phase ended, with its duration.
  if (timings !== null) {
    let at = start
    if (timings.dns_ms !== null) at = phase(span, a, 'dns', 'highproxy.dns_ms', timings.dns_ms, at)
    if (timings.connect_ms !== null) at = phase(span, a, 'connect', 'highproxy.connect_ms', timings.connect_ms, at)
    if (timings.tls_ms !== null) phase(span, a, 'tls', 'highproxy.tls_ms', timings.tls_ms, at)
  }
  if (attempt.ttfbMs !== null) {
    const firstByte = exchangeStart + attempt.ttfbMs
    a['highproxy.ttfb_ms'] = Math.round((firstByte - start) * 10) / 10
    span.addEvent('first byte', { 'highproxy.duration_ms': a['highproxy.ttfb_ms'] }, firstByte)
  }
  if (attempt.originStatus !== 0) a['http.response.status_code'] = attempt.originStatus
  if (err !== null) {
    const c = classify(err, attempt.phase)
    a['highproxy.phase'] = attempt.phase
    if (c.status === CLIENT_ABORT_STATUS) {
      // The client left: the attempt was cancelled, not failed by the origin.
      a['error.type'] = 'client_aborted'
    } else {
      a['error.type'] = c.proxyStatus ?? c.code ?? '_OTHER'
      if (c.code !== null) a['highproxy.error_code'] = c.code
      a['highproxy.edge_status'] = c.status
      span.setStatus({ code: SpanStatusCode.ERROR, message: c.why })
    }
  } else if (clientLeft && !attempt.ok) {
    // The exchange ended (the client left) before the cancelled attempt reported back.
    a['error.type'] = 'client_aborted'
  } else if (attempt.originStatus >= 400) {
    a['error.type'] = String(attempt.originStatus)
    span.setStatus({ code: SpanStatusCode.ERROR })
  }
  span.setAttributes(a)
}
