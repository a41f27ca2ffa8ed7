// One request's tracing hooks, called as the edge calls them, on plain objects shaped like an
// Exchange and its Attempt: what bench/span-cost.mjs and bench/trace-ab.mjs measure. With
// `tracing` null it builds the same objects and makes the same null checks, as the edge does
// with tracing off, so that "added by tracing" is the hooks alone.

import { performance } from 'node:perf_hooks'

const url = new URL('http://127.0.0.1:9000')
const member = { url, origin: url.origin, pool: 'web' }
const info = { timings: { dns_ms: null, connect_ms: 0.4, tls_ms: null }, address: '127.0.0.1', port: 9000, localAddress: '127.0.0.1', localPort: 40000 }

/** `tracing`: an edge tracing (its `begin`) or null; `fresh`: the attempt dialled its connection. */
export function tracedRequest (tracing, host, fresh) {
  const exchange = {
    start: performance.now(), method: 'GET', host, path: '/checkout', ray: '0123456789abcdef', req: { httpVersion: '1.1' },
    headers: { host, 'user-agent': 'bench/1', accept: '*/*' },
    client: { ip: '127.0.0.1', peer: '127.0.0.1', scheme: 'http' }, http2: false,
    route: { config: { name: 'shop' } }, pool: { config: { name: 'web' } }, edgeStatus: null, failure: null, refused: null,
    upgrade: null, truncated: false, aborted: false, attempt: null
  }
  const trace = tracing === null ? null : tracing.begin(exchange)
  const attempt = { member, number: 1, error: null, phase: 'body', connection: { info }, fresh, ttfbMs: 0.8, originStatus: 200, ok: true }
  exchange.attempt = attempt
  if (trace !== null) trace.attemptStarted(attempt)
  const headers = ['host', host]
  if (trace !== null) trace.inject(headers)
  if (trace !== null) trace.attemptEnded(attempt)
  const record = {}
  if (trace !== null) {
    const ids = trace.fields()
    record.trace_id = ids.trace_id
    record.span_id = ids.span_id
    record.trace_flags = ids.trace_flags
    trace.end(200)
  }
  return record
}
