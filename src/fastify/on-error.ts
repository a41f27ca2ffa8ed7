// edgeOnError: reply-from's `onError` hook, answering a failed origin the way the edge
// does. The failure goes through the edge's classification table; the client gets the
// edge's page in the representation it asked for (HTML, RFC 9457 JSON, Markdown), with
// Retry-After, Proxy-Status and a ray id; the app's log gets the edge's failure line.
//
// reply-from wraps the error it got (FST_REPLY_FROM_*, with the original as `cause`);
// the table reads every code in the chain, innermost first, so the wrapper changes
// nothing. The phase comes from the dialer's typed error: whatever else failed, failed
// after the connection was made.

import { Http2ServerRequest } from 'node:http2'
import { SpanStatusCode, trace } from '@opentelemetry/api'
import type {
  FastifyBaseLogger, FastifyReply, RawReplyDefaultExpression, RawRequestDefaultExpression, RawServerBase, RouteGenericInterface
} from 'fastify'
import { ConfigSchema } from '../config/schema.js'
import { clientRecordOf } from '../log/client-record.js'
import { failureLine } from '../log/failure-line.js'
import { newRayId } from '../log/ray.js'
import { typedUndiciError } from '../origin/connection.js'
import { edgeHeaders } from '../page/edge-headers.js'
import { ErrorPages } from '../page/respond.js'
import { ProxyStatus } from '../page/proxy-status.js'
import { reasonPhrase } from '../status/catalog.js'
import { classify } from '../status/classify.js'
import { causeChain, dialErrorIn } from '../status/errors.js'
import { originOf } from './dispatcher.js'
import { DEFAULTS, checkedOption } from './options.js'

export interface EdgeOnErrorOptions {
  /** The edge's short name, after the ray id and in Proxy-Status. Default 'HPX' (`edge.name`). */
  name?: string
  /** The header that carries the ray id. Default 'cf-ray' (`edge.ray_header`). */
  rayHeader?: string
  /** Where the failure line goes. Default the request's logger (`reply.log`). */
  logger?: Pick<FastifyBaseLogger, 'warn' | 'error'>
  /** A name for the upstream: Proxy-Status's next-hop and the line's `pool`. Default none. */
  pool?: string
  /** The upstream URL the line names. Default the origin edgeDispatcher dialled for the request. */
  origin?: string
}

/** A reply of any Fastify server (HTTP/1.1, HTTPS, HTTP/2), as reply-from types its hooks. */
export type AnyReply = FastifyReply<RouteGenericInterface, RawServerBase, RawRequestDefaultExpression<RawServerBase>, RawReplyDefaultExpression<RawServerBase>>

/** What reply-from hands its onError hook. */
export interface ReplyFromFailure {
  error: unknown
}

const FN = 'edgeOnError'
const NO_EXTRA: readonly string[] = []
const EDGE = ConfigSchema.properties.edge.properties

export function edgeOnError (options: EdgeOnErrorOptions = {}): (reply: AnyReply, failure: ReplyFromFailure) => void {
  const edgeName = checkedOption(FN, 'name', EDGE.name, options.name ?? DEFAULTS.edge.name)
  const rayHeader = checkedOption(FN, 'rayHeader', EDGE.ray_header, options.rayHeader ?? DEFAULTS.edge.ray_header).toLowerCase()
  const pages = new ErrorPages(edgeName)
  const proxyStatus = new ProxyStatus({ edgeName })
  const identity = { rayHeader, edgeName }
  const pool = options.pool ?? null

  return function onError (reply, { error }) {
    for (const e of causeChain(error)) if (e instanceof Error) typedUndiciError(e)
    const phase = dialErrorIn(error)?.phase ?? 'response'
    const c = classify(error, phase)
    const request = reply.request
    const ray = newRayId()

    const record = failureLine({
      ray,
      originUrl: options.origin ?? originOf(error) ?? '',
      info: null,
      fresh: false,
      ttfbMs: null,
      totalMs: reply.elapsedTime,
      attempt: 1,
      route: request.routeOptions.url ?? null,
      pool,
      client: clientRecordOf(request.raw.socket, request.raw.httpVersion)
    }, error, phase, c)
    // The app traces (its own OpenTelemetry SDK made a span current for this request):
    // the failure goes on that span as the edge puts it on its own client spans, and the
    // line and the page carry its ids.
    const span = trace.getActiveSpan()
    let traceId: string | null = null
    if (span !== undefined && span.isRecording()) {
      span.setAttributes({
        'error.type': c.proxyStatus ?? c.code ?? '_OTHER',
        'highproxy.ray_id': ray,
        'highproxy.edge_status': c.status,
        'highproxy.phase': phase,
        ...(c.code === null ? {} : { 'highproxy.error_code': c.code })
      })
      span.setStatus({ code: SpanStatusCode.ERROR, message: c.why })
      const ids = span.spanContext()
      traceId = ids.traceId
      record.trace_id = ids.traceId
      record.span_id = ids.spanId
      record.trace_flags = (ids.traceFlags & 0xff).toString(16).padStart(2, '0')
    }
    const log = options.logger ?? reply.log
    if (c.known) log.warn(record)
    else log.error(record)

    // What the request is, not the version its request line typed (`GET / HTTP/2.0` over HTTP/1).
    const http2 = request.raw instanceof Http2ServerRequest
    const headers = edgeHeaders(ray, identity, NO_EXTRA, false, http2)
    // The rest of the request body will never be read (the dispatcher destroyed it, as
    // undici's own does; edgeDispatcher's drains it): the connection cannot carry another request.
    if (!request.raw.complete && request.raw.destroyed && !http2) headers.push('connection', 'close')
    headers.push('proxy-status', proxyStatus.forFailure(c, error, pool))
    const page = pages.build({
      status: c.status,
      cause: c.cause,
      accept: request.headers.accept,
      host: request.host,
      ray,
      // undici unlinks a request body it destroys from its socket (Fastify's request.ip is then undefined).
      clientIp: request.ip ?? reply.raw.socket?.remoteAddress ?? '',
      traceId
    }, headers)
    for (let i = 0; i < page.headers.length; i += 2) reply.header(page.headers[i] as string, page.headers[i + 1])
    // Node would send `522 unknown`: the edge status's own name instead.
    reply.raw.statusMessage = reasonPhrase(c.status)
    reply.code(c.status).send(page.body)
  }
}
