// One client request, top to bottom:
//   arrive   → an Exchange (ray id, who the client is), queued behind the requests before
//              it on its connection (answered one at a time, in order)
//   admit    → refusals before routing: 414, 431, 400 (Host, dot segments, escaped slashes)
//   route    → 404 when none matches; 413 for a declared body over the route's limit
//   inject   → x-highproxy-fault, when the route allows it
//   proxy    → the proxy loop (proxy-loop.ts): attempts at origins until one answers or
//              the edge answers for them
//   finish   → the access line, when the response is over, whichever way it ended
// Upgrade requests arrive on a raw socket (plugin.ts), and HTTP/2 streams from the TLS
// front door as streams (stream-request.ts); both take the same path.

import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http'
import { Http2ServerRequest, type ServerHttp2Stream } from 'node:http2'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import type { EventEmitter } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import { CLIENT_ABORT_STATUS, classify } from '../status/classify.js'
import type { ErrorCode } from '../status/errors.js'
import { refusalOf, unescapeSlashes, type Refusal } from './admit.js'
import { answerError, logFailure } from './answer.js'
import { accessRecord } from './records.js'
import { hasBody, meterBody } from './body.js'
import { refusedAccess } from './access-log.js'
import { rawResponse } from '../page/raw-response.js'
import { refusal, refusalFacts } from '../page/refusal.js'
import { writeToSink } from '../page/write.js'
import { clientFacts } from './client-ip.js'
import { ClientConnection, type ExchangeRunner } from './client-connection.js'
import { linkOf } from './client-link.js'
import { Exchange, type ClientRequest, type RoutedExchange } from './exchange.js'
import { FAULT_HEADER, applies, injectedFailure, parseFault } from './fault-injection.js'
import { proxy } from './proxy-loop.js'
import { watchRequestDeadline } from './request-deadline.js'
import { isRayId, newRayId, rayHeaderValue } from '../log/ray.js'
import { hostOnly, splitTarget } from './router.js'
import type { EdgeRuntime } from './runtime.js'
import { ResponseSink, SocketSink, StreamSink, type ClientSink } from './sink.js'
import { StreamRequest } from './stream-request.js'

/** Runs an exchange when its turn on its connection comes. */
export function runner (edge: EdgeRuntime): ExchangeRunner {
  return {
    run: exchange => { serve(edge, exchange).catch(err => internalError(edge, exchange, err)) },
    abandon: exchange => finish(edge, exchange)
  }
}

/** A request Fastify routed to the edge (HTTP/1.1, or HTTP/2 through Node's compatible API). */
export function handleRequest (edge: EdgeRuntime, run: ExchangeRunner, req: IncomingMessage, res: ServerResponse, id: string): void {
  // What the request is, never what it says it is: an HTTP/1 request line may end in any
  // version a client types (`HTTP/2.0`), and admit answers it 505. Known here, once.
  const stream = req instanceof Http2ServerRequest ? req.stream : null
  const sink = new ResponseSink(res, stream)
  try {
    arrive(edge, run, req, stream, sink, id)
  } catch (err) {
    arrivalFailed(edge, req, stream, sink, id, err)
  }
}

/** An Upgrade request: it has no ServerResponse, only its socket. */
export function handleUpgrade (edge: EdgeRuntime, run: ExchangeRunner, req: IncomingMessage, socket: Duplex, head: Buffer): void {
  const sink = new SocketSink(socket)
  const ray = newRayId()
  try {
    const exchange = arrive(edge, run, req, null, sink, ray, false)
    exchange.upgradeRequested(String(req.headers.upgrade ?? '').trim().toLowerCase(), head)
    exchange.connection.admit(exchange)
  } catch (err) {
    arrivalFailed(edge, req, null, sink, ray, err)
  }
}

/** An HTTP/2 stream of the TLS front door, with its session's socket. */
export function handleStream (edge: EdgeRuntime, run: ExchangeRunner, stream: ServerHttp2Stream, headers: IncomingHttpHeaders,
  rawHeaders: string[], socket: Socket): void {
  // A stream's errors (a reset, a write after the client left) end it; its 'close' ends the exchange.
  stream.on('error', ignore)
  // What Node's HTTP/1.1 server and its HTTP/2 compatibility API do: the body may come.
  if (!stream.endAfterHeaders && headers.expect !== undefined && CONTINUE.test(headers.expect)) stream.additionalHeaders({ ':status': 100 })
  const req = new StreamRequest(stream, headers, rawHeaders, socket)
  const sink = new StreamSink(stream)
  try {
    arrive(edge, run, req, stream, sink, '')
  } catch (err) {
    arrivalFailed(edge, req, stream, sink, '', err)
  }
}

const CONTINUE = /^\s*100-continue\s*$/i
const ignore = (): void => {}

/** @param stream the HTTP/2 stream the request came on (the entry point knows); null over HTTP/1.x */
function arrive (edge: EdgeRuntime, run: ExchangeRunner, req: ClientRequest, stream: ServerHttp2Stream | null, sink: ClientSink, id: string,
  admit = true): Exchange {
  const ray = isRayId(id) ? id : newRayId()
  // An HTTP/1.1 connection serves its requests in turn; an HTTP/2 session's streams run
  // side by side. (Node types a stream's session as possibly gone: not while it arrives.)
  const connection = stream === null
    ? ClientConnection.of(req.socket, true, edge.config.maxPipelined, run)
    : ClientConnection.of(stream.session as EventEmitter, false, edge.config.maxPipelined, run)
  const client = clientFacts(req, edge.trust, linkOf(req.socket, stream !== null ? '2.0' : req.httpVersion === '1.0' ? '1.0' : '1.1'))
  const exchange = new Exchange(ray, req, sink, client, connection, splitTarget(req.url ?? '/'), stream)
  if (edge.tracing !== null) exchange.traced(edge.tracing.begin(exchange))
  sink.onClose(() => { finish(edge, exchange) })
  // An HTTP/2 stream reset before Fastify routed its request here (Node's compatibility
  // API) is over already: no origin sees it.
  if (exchange.finished) return exchange
  if (stream !== null && hasBody(exchange)) watchRequestDeadline(edge, exchange, req)
  if (admit) connection.admit(exchange)
  return exchange
}

/**
 * The exchange is over, whichever way it ended: its access line, exactly once, and the
 * next request on its connection may start (client-connection.ts). Called when the
 * client's response closes, or when its connection closed before the request's turn.
 */
export function finish (edge: EdgeRuntime, exchange: Exchange): void {
  if (!exchange.end()) return
  const stalled = exchange.clientWriteTimedOut
  if (stalled !== null) slowReader(edge, exchange, stalled)
  const sink = exchange.sink
  // A client that stopped reading is the client's failure whatever else was said: 499.
  const status = stalled !== null ? CLIENT_ABORT_STATUS : exchange.clientError ?? (sink.started ? sink.status : CLIENT_ABORT_STATUS)
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

/**
 * A client that stopped reading its response (timeouts.client_write): a warn line that
 * names the client, never an origin failure, and the access line says 499.
 */
function slowReader (edge: EdgeRuntime, exchange: Exchange, ms: number): void {
  edge.log.warn({
    msg: 'client write timeout',
    ray_id: exchange.ray,
    error: { code: 'HPX_ERR_CLIENT_WRITE_TIMEOUT' satisfies ErrorCode, message: `the client read none of the response for ${ms} ms` },
    why: 'the client stopped reading its response: its stream was reset (or its connection cut) and any origin request cancelled; not counted against the origin',
    client: { ip: exchange.client.ip, ...exchange.client.log },
    route: exchange.route?.config.name ?? null,
    pool: exchange.pool?.config.name ?? null,
    origin: exchange.attempt?.member.origin ?? null
  })
}

/**
 * A bug of ours before the exchange existed: never swallowed. The error line has the ray
 * id, the client gets a 502 that closes its connection (or a reset stream), and the
 * access line says so.
 */
function arrivalFailed (edge: EdgeRuntime, req: ClientRequest, stream: ServerHttp2Stream | null, sink: ClientSink, id: string, err: unknown): void {
  const ray = isRayId(id) ? id : newRayId()
  edge.log.error({ ray_id: ray, err }, 'internal error while serving a request')
  edge.access.refusal(refusedAccess(ray, 502, 'internal_error', req.method ?? '', String(req.headers.host ?? req.headers[':authority'] ?? ''), req.socket), req.socket, req.url ?? '')
  const http1 = stream === null
  try {
    if (!sink.started && !sink.gone) {
      const headers = [edge.config.rayHeader, rayHeaderValue(ray, edge.config.edgeName), 'content-type', 'text/plain; charset=utf-8']
      if (http1) headers.push('connection', 'close')
      writeToSink(sink, 502, 'Bad Gateway', headers, '502 Bad Gateway: the edge failed to serve this request\n', false)
    } else sink.cut()
  } catch {
    sink.cut()
  }
  // Whatever the connection carries next was read by a parser the edge no longer trusts.
  if (http1) req.socket?.destroySoon()
}

async function serve (edge: EdgeRuntime, exchange: Exchange): Promise<void> {
  const req = exchange.req
  const config = edge.config
  const refused = refusalOf(req, exchange.http2, exchange.host, exchange.path, config.escapedSlashes, config)
  if (refused !== null) { refuse(edge, exchange, refused); return }
  if (config.escapedSlashes === 'unescape') exchange.admitPath(unescapeSlashes(exchange.path))

  const match = edge.state.router.match(hostOnly(exchange.host), exchange.path)
  if (match === null) {
    exchange.refuse('no_route')
    answerError(edge, exchange, NO_ROUTE)
    return
  }
  const routed = exchange.routed(match)
  const route = routed.route

  if (hasBody(exchange)) {
    const declared = req.headers['content-length']
    const limit = route.config.maxBodyBytes
    if (limit > 0 && declared !== undefined && Number(declared) > limit) { refuse(edge, exchange, { status: 413, reason: 'body_too_large' }); return }
    // A declared length is enforced by the parser; only a chunked body is counted.
    if (exchange.upgradeAsked === null) exchange.sendsBody(meterBody(req, declared === undefined ? limit : 0))
  }
  if (exchange.upgradeAsked !== null) {
    // Only the protocols the route allows are forwarded (websocket by default): an
    // `Upgrade: h2c` would tunnel past every route and path check once answered 101.
    // Any other is dropped and the request proxied as plain HTTP; one with a body is
    // refused, since the socket is no longer framed by Node's parser.
    // A body on an upgrade request is refused whether or not the upgrade is allowed: the
    // tunnel would carry it unframed, and a refused upgrade's socket is no longer framed
    // by Node's parser.
    if (hasBody(exchange)) { refuse(edge, exchange, { status: 400, reason: 'upgrade_with_body' }); return }
    if (route.config.upgrades.includes(exchange.upgradeAsked)) exchange.forwardUpgrade()
    else if (exchange.upgradeHead !== null && exchange.upgradeHead.length > 0) {
      // Node stops parsing at an Upgrade request: what came after it (a pipelined request)
      // was never read as a request. Not tunnelled, the upgrade is answered on a socket
      // that then closes; the bytes behind it get their own refusal and line.
      refuseTrailing(edge, exchange)
      refuse(edge, exchange, { status: 400, reason: 'upgrade_pipelined' })
      return
    }
  }

  if (req.headers[FAULT_HEADER] !== undefined && await injected(edge, routed)) return
  await proxy(edge, routed)
}

/** Refused before any origin saw it. An unread body means the connection cannot carry another request. */
function refuse (edge: EdgeRuntime, exchange: Exchange, refusal: Refusal): void {
  exchange.refuse(refusal.reason)
  // A request the edge cannot frame or speak (a version, a transfer coding) leaves the
  // connection's next bytes unframed too: it closes.
  const close = hasBody(exchange) || refusal.status === 505 || refusal.status === 501
  answerError(edge, exchange, refusalFacts(refusal.status, refusal.reason), close)
}

/** The bytes pipelined behind a refused upgrade request: a 400 of their own, after its answer. */
function refuseTrailing (edge: EdgeRuntime, exchange: Exchange): void {
  const ray = newRayId()
  const socket = exchange.req.socket
  const answer = refusal({ rayHeader: edge.config.rayHeader, edgeName: edge.config.edgeName, proxyStatus: edge.proxyStatus }, 400, ray)
  if ((exchange.sink as SocketSink).follow(rawResponse(400, answer.headers, answer.body))) {
    edge.access.refusal(refusedAccess(ray, 400, 'pipelined_after_upgrade', '', '', socket), socket)
  }
}

const NO_ROUTE = { status: 404, cause: null, proxyStatus: 'destination_not_found' as const, why: 'no route matches this host and path' }

/** Fault injection: true when this request got an injected fault instead of the origin. */
async function injected (edge: EdgeRuntime, exchange: RoutedExchange): Promise<boolean> {
  const header = exchange.headers[FAULT_HEADER]
  if (header === undefined) return false
  const route = exchange.route
  const fault = parseFault(header)
  if (!route.config.faultInjection || fault === null) {
    edge.log.info({ ray_id: exchange.ray, header: String(header).slice(0, 64), enabled: route.config.faultInjection }, 'fault injection header ignored')
    return false
  }
  if (!applies(fault)) return false
  const failure = injectedFailure(fault.status, route.config.pool)
  if (failure.waitMs > 0) {
    const ac = new AbortController()
    exchange.sink.onClose(() => ac.abort())
    try { await sleep(failure.waitMs, undefined, { signal: ac.signal }) } catch { return true }
  }
  const c = classify(failure.error, failure.phase)
  logFailure(edge, exchange, null, failure.error, failure.phase, c,
    { injected: true, ...(fault.status === 522 ? { connectMs: failure.waitMs } : {}) })
  answerError(edge, exchange, c, false, { error: failure.error, receivedStatus: null })
  return true
}

/** A bug of ours must not leave the client hanging: 502 page, an error line with the stack. */
function internalError (edge: EdgeRuntime, exchange: Exchange, err: unknown): void {
  edge.log.error({ ray_id: exchange.ray, err }, 'internal error while serving a request')
  if (exchange.sink.started) exchange.sink.cut()
  else answerError(edge, exchange, { status: 502, cause: null, proxyStatus: 'proxy_internal_error', why: 'the edge failed to serve this request' }, true)
}
