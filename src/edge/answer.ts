// How the edge answers on its own, and what it writes down: an edge error page (the same
// for every failure and refusal, through whichever sink the client has), and the failure
// line of a failed attempt. (The access line every request gets, whichever way it ends,
// is written where the exchange ends: handle-request.ts.)

import { reasonPhrase, type UnknownErrorCause } from '../status/catalog.js'
import type { Classification, ProxyErrorType } from '../status/classify.js'
import type { Phase } from '../status/errors.js'
import type { OriginCondition } from '../origin/conditions.js'
import type { Attempt } from './attempt.js'
import type { Exchange } from './exchange.js'
import { watchFlush } from './client-write.js'
import { edgeHeaders } from '../page/edge-headers.js'
import { writeToSink } from '../page/write.js'
import { failureRecord, type FailureExtras } from './records.js'
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
  exchange.answered(answer.status)
  const sink = exchange.sink
  if (sink.started || sink.gone) return
  const rules = exchange.route?.settings.headers ?? edge.bare
  const http2 = exchange.http2
  const before = edgeHeaders(exchange.ray, rules, rules.responseExtra, rules.flags.draining, http2)
  // HTTP/2 has no connection header: an unread stream body is reset, not the connection.
  if (close && !rules.flags.draining && !http2) before.push('connection', 'close')
  // Nothing read after a request whose connection closes is served: a pipelined request
  // behind it is not the edge's to answer (the client was told the connection ends).
  if (close && !http2) exchange.connection.last()
  // status_rewrite changes the status line, never this: a client that knows only 502
  // still reads error=connection_timeout.
  const condition = answer.status >= 520 && answer.status <= 526 ? conditionOf(exchange) : null
  const said = condition === null ? null : wordsOf(condition)
  before.push('proxy-status', edge.proxyStatus.forFailure(answer, behind?.error, exchange.pool?.config.name ?? null, behind?.receivedStatus ?? null,
    said === null ? null : said.proxyStatus))
  const page = edge.pages.build({
    status: answer.status,
    cause: answer.cause,
    accept: exchange.headers.accept,
    host: exchange.host,
    ray: exchange.ray,
    clientIp: exchange.client.ip,
    ownerNote: said === null ? null : said.owner,
    traceId: exchange.trace === null ? null : exchange.trace.pageTraceId()
  }, before)
  const wire = exchange.route?.config.statusRewrite.get(answer.status) ?? answer.status
  writeToSink(sink, wire, reasonPhrase(wire), page.headers, page.body, exchange.method === 'HEAD')
  // A client that reads nothing (an HTTP/2 window of 0) must not hold the page for ever.
  if (!sink.completed) watchFlush(exchange, edge.config.clientWriteTimeoutMs)
}

/**
 * The condition of the origin behind an edge error, when it is worth telling: drowning
 * or down, with what the edge saw. The last attempt's origin, or a pool of one's only one
 * (a pool answered as down without an attempt).
 */
function conditionOf (exchange: Exchange): OriginCondition | null {
  const pool = exchange.pool
  const member = exchange.attempt?.member ?? (pool?.members.length === 1 ? pool.members[0] : undefined)
  const c = member?.health.condition
  return c !== undefined && (c.condition === 'drowning' || c.condition === 'down') && c.evidence !== '' ? c : null
}

/** A condition's words on a page and in Proxy-Status, made once per change of its evidence. */
interface ConditionWords {
  readonly condition: string
  readonly evidence: string
  readonly proxyStatus: string
  readonly owner: string
}

const wordsByCondition = new WeakMap<OriginCondition, ConditionWords>()

/** A storm's thousand answers tell the same condition: its words are built (and hashed, by Proxy-Status's cache) once. */
function wordsOf (c: OriginCondition): ConditionWords {
  let words = wordsByCondition.get(c)
  if (words === undefined || words.condition !== c.condition || words.evidence !== c.evidence) {
    words = {
      condition: c.condition,
      evidence: c.evidence,
      proxyStatus: `origin ${c.condition}: ${c.evidence}`,
      owner: `The origin appears to be ${c.condition}: ${c.evidence}.`
    }
    wordsByCondition.set(c, words)
  }
  return words
}

/** One failure line per failed attempt (or per answer without one: pool down, injected). */
export function logFailure (edge: EdgeRuntime, exchange: Exchange, attempt: Attempt | null, err: unknown, phase: Phase,
  c: Classification, extra?: FailureExtras): void {
  const record = failureRecord(exchange, attempt, err, phase, c, extra)
  exchange.failed(record)
  if (exchange.trace !== null) exchange.trace.failed(record, attempt, c)
  if (c.known) edge.log.warn(record)
  else edge.log.error(record)
  edge.hooks.onFailure?.(record)
}
