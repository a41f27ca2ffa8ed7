// How the edge answers on its own, and what it writes down: an edge error page (the same
// for every failure and refusal, through whichever sink the client has), the failure
// line of a failed attempt, and the one access line every request gets, whichever way
// it ends.

import { STATUS_CODES } from 'node:http'
import type { UnknownErrorCause } from '../status/catalog.js'
import { CLIENT_ABORT_STATUS, type Classification, type ProxyErrorType } from '../status/classify.js'
import type { Phase } from '../status/errors.js'
import type { Attempt } from './attempt.js'
import type { Exchange } from './exchange.js'
import { edgeHeaders } from './forward-headers.js'
import { accessRecord, failureRecord, type FailureExtras } from './records.js'
import type { EdgeRuntime } from './runtime.js'

/** What the edge answers with: a classification, or a refusal described the same way. */
export interface EdgeAnswer {
  status: number
  cause: UnknownErrorCause | null
  proxyStatus: ProxyErrorType | null
  /** Words for the log and Proxy-Status's `details`: never anything the client sent. */
  why: string
}

/** The failure behind an answer, when there was one: for Proxy-Status's parameters. */
export interface Behind {
  error: unknown
  /** What the origin answered, when the edge replaced it. */
  receivedStatus: number | null
}

/**
 * The edge's own answer: the negotiated page, with the headers every edge answer
 * carries, and the route's status rewrite on the status line (the body keeps the edge
 * status). `close`: the request's body was not read, so the connection cannot carry
 * another request.
 */
export function answerError (edge: EdgeRuntime, exchange: Exchange, answer: EdgeAnswer, close = false, behind?: Behind): void {
  exchange.edgeStatus = answer.status
  const sink = exchange.sink
  if (sink.started || sink.gone) return
  const rules = exchange.route?.settings.headers ?? edge.bare
  const http2 = exchange.client.http2
  const before = edgeHeaders(exchange.ray, rules, http2)
  // HTTP/2 has no connection header: an unread stream body is reset, not the connection.
  if (close && !rules.flags.draining && !http2) before.push('connection', 'close')
  // status_rewrite changes the status line, never this: a client that knows only 502
  // still reads error=connection_timeout.
  before.push('proxy-status', edge.proxyStatus.forFailure(answer, behind?.error, exchange.pool?.config.name ?? null, behind?.receivedStatus ?? null))
  const page = edge.pages.build({
    status: answer.status,
    cause: answer.cause,
    accept: exchange.headers.accept,
    host: exchange.host,
    ray: exchange.ray,
    clientIp: exchange.client.ip,
    traceId: exchange.trace === null ? null : exchange.trace.pageTraceId()
  }, before)
  const wire = exchange.route?.config.statusRewrite.get(answer.status) ?? answer.status
  sink.start(wire, STATUS_CODES[wire] ?? '', page.headers)
  sink.end(exchange.method === 'HEAD' ? undefined : page.body)
}

/** One failure line per failed attempt (or per answer without one: pool down, injected). */
export function logFailure (edge: EdgeRuntime, exchange: Exchange, attempt: Attempt | null, err: unknown, phase: Phase,
  c: Classification, extra?: FailureExtras): void {
  const record = failureRecord(exchange, attempt, err, phase, c, extra)
  exchange.failure = record
  if (exchange.trace !== null) exchange.trace.failed(record, attempt, c)
  if (c.known) edge.log.warn(record)
  else edge.log.error(record)
  edge.hooks.onFailure?.(record)
}

/** The exchange is over: its access line, exactly once, and the next request on its connection may start. */
export function finish (edge: EdgeRuntime, exchange: Exchange): void {
  if (exchange.finished) return
  exchange.finished = true
  const sink = exchange.sink
  if (!sink.completed && !exchange.truncated) exchange.abort()
  const status = exchange.clientError ?? (sink.started ? sink.status : CLIENT_ABORT_STATUS)
  const record = accessRecord(exchange, status)
  if (exchange.trace !== null) {
    const ids = exchange.trace.fields()
    record.trace_id = ids.trace_id
    record.span_id = ids.span_id
    record.trace_flags = ids.trace_flags
    exchange.trace.end(status)
  }
  edge.access.request(record, exchange)
  edge.hooks.onAccess?.(record)
  exchange.connection.done(exchange)
}
