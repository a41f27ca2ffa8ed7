// The metrics: fed with records as the edge plugin writes them, read back as the
// Prometheus text a scrape gets.

import t from 'tap'
import { AggregatorRegistry, register as globalRegistry } from 'prom-client'
import { createMetrics, type OriginHealth } from '../../src/admin/metrics.js'
import { synDropOrigin } from '../../src/lab/faults.js'
import type { AccessRecord, FailureRecord } from '../../src/log/log.js'
import { dial } from '../../src/origin/dial.js'

function access (over: Partial<AccessRecord> = {}): AccessRecord {
  return {
    msg: 'access',
    method: 'GET',
    host: 'example.test',
    path: '/',
    status: 200,
    ray_id: '0123456789abcdef',
    duration_ms: 12,
    route: 'web',
    edge_status: null,
    ttfb_ms: 10,
    connect_ms: 0.4,
    pool: 'web',
    origin: 'http://127.0.0.1:9001',
    client: { protocol: 'HTTP/1.1', tls_protocol: null, tls_cipher: null },
    ...over
  }
}

function failure (over: Partial<FailureRecord> = {}): FailureRecord {
  return {
    msg: 'origin failure',
    edge_status: 521,
    ray_id: '0123456789abcdef',
    origin: { url: 'http://127.0.0.1:1', address: '127.0.0.1', port: 1 },
    error: { code: 'HPX_ERR_CONNECT', message: 'TCP connection to the origin failed', cause: { code: 'ECONNREFUSED', message: 'connect ECONNREFUSED' } },
    timings: { dns_ms: null, connect_ms: 0.3, tls_ms: null, ttfb_ms: null, total_ms: 0.6 },
    attempt: 1,
    phase: 'connect',
    why: 'refused',
    client: { protocol: 'HTTP/1.1', tls_protocol: null, tls_cipher: null },
    cause: null,
    classified: true,
    dialled: [],
    source: null,
    truncated: false,
    injected: false,
    served: 'page',
    origin_condition: 'down',
    route: 'web',
    pool: 'web',
    ...over
  }
}

/** The value of one sample line, matched by its full name and label set as written. */
function sample (text: string, series: string): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue
    const at = line.lastIndexOf(' ')
    if (line.slice(0, at) === series) return Number(line.slice(at + 1))
  }
  return undefined
}

const noHealth = (): OriginHealth[] => []

t.test('names, types and help are all there, on a registry of its own', async t => {
  const metrics = createMetrics({ originHealth: noHealth })
  const text = await metrics.registry.metrics()
  for (const [name, type] of [
    ['highproxy_requests_total', 'counter'],
    ['highproxy_edge_errors_total', 'counter'],
    ['highproxy_request_duration_seconds', 'histogram'],
    ['highproxy_origin_requests_total', 'counter'],
    ['highproxy_origin_failures_total', 'counter'],
    ['highproxy_stale_served_total', 'counter'],
    ['highproxy_origin_connect_seconds', 'histogram'],
    ['highproxy_origin_ttfb_seconds', 'histogram'],
    ['highproxy_origin_requests_in_flight', 'gauge'],
    ['highproxy_pending_connects', 'gauge'],
    ['highproxy_origin_up', 'gauge'],
    ['highproxy_origin_pending_connects', 'gauge'],
    ['highproxy_origin_connects_waiting', 'gauge'],
    ['highproxy_origin_concurrency_limit', 'gauge'],
    ['highproxy_origin_queue_length', 'gauge'],
    ['highproxy_origin_shed_total', 'counter'],
    ['highproxy_retry_budget_refused_total', 'counter']
  ]) {
    t.match(text, new RegExp(`^# TYPE ${name} ${type}$`, 'm'), `${name} is a ${type}`)
    t.match(text, new RegExp(`^# HELP ${name} \\S`, 'm'), `${name} has help`)
  }
  t.match(text, /^highproxy_process_cpu_user_seconds_total /m, 'default metrics, prefixed')
  t.match(text, /^highproxy_nodejs_eventloop_lag_seconds /m)
  t.same(await globalRegistry.getMetricsAsJSON(), [], 'the global registry is untouched')
  t.match(metrics.registry.contentType, /^text\/plain; version=0\.0\.4/)
  // A second instance in the same process must not collide with the first.
  const other = createMetrics({ originHealth: noHealth })
  other.observeAccess(access())
  t.equal(sample(await metrics.registry.metrics(), 'highproxy_requests_total{status="200",route="web"}'), undefined)
})

t.test('access records: requests by status and route, edge errors by status', async t => {
  const metrics = createMetrics({ originHealth: noHealth })
  metrics.observeAccess(access())
  metrics.observeAccess(access())
  metrics.observeAccess(access({ route: 'api', status: 404, ttfb_ms: null, connect_ms: null }))
  metrics.observeAccess(access({ status: 521, edge_status: 521, ttfb_ms: null, connect_ms: null }))
  metrics.observeAccess(access({ status: 522, edge_status: 522, ttfb_ms: null, connect_ms: null }))
  metrics.observeAccess(access({ status: 522, edge_status: 522, ttfb_ms: null, connect_ms: null }))
  metrics.observeAccess(access({ route: null, status: 404, edge_status: 404, ttfb_ms: null, connect_ms: null }))
  metrics.observeAccess(access({ status: 499, ttfb_ms: null, connect_ms: null }))
  const text = await metrics.registry.metrics()
  t.equal(sample(text, 'highproxy_requests_total{status="200",route="web"}'), 2)
  t.equal(sample(text, 'highproxy_requests_total{status="404",route="api"}'), 1, 'an origin 404 is not an edge error')
  t.equal(sample(text, 'highproxy_requests_total{status="521",route="web"}'), 1)
  t.equal(sample(text, 'highproxy_requests_total{status="522",route="web"}'), 2)
  t.equal(sample(text, 'highproxy_requests_total{status="404",route=""}'), 1, 'no route matched')
  t.equal(sample(text, 'highproxy_requests_total{status="499",route="web"}'), 1)
  t.equal(sample(text, 'highproxy_edge_errors_total{status="521",route="web"}'), 1)
  t.equal(sample(text, 'highproxy_edge_errors_total{status="522",route="web"}'), 2)
  t.equal(sample(text, 'highproxy_edge_errors_total{status="404",route=""}'), 1)
  t.notMatch(text, /^highproxy_edge_errors_total\{status="(200|499)"/m, 'no edge errors for origin answers or client aborts')
  // TTFB and connect: the two records that had them, nothing else.
  t.equal(sample(text, 'highproxy_origin_ttfb_seconds_count'), 2)
  t.equal(sample(text, 'highproxy_origin_ttfb_seconds_sum'), 0.02)
  t.equal(sample(text, 'highproxy_origin_ttfb_seconds_bucket{le="0.005"}'), 0)
  t.equal(sample(text, 'highproxy_origin_ttfb_seconds_bucket{le="0.01"}'), 2, '10 ms lands in le=0.01')
  t.equal(sample(text, 'highproxy_origin_connect_seconds_count'), 2)
  t.equal(sample(text, 'highproxy_origin_connect_seconds_bucket{le="0.0005"}'), 2, '0.4 ms lands in the first bucket')
})

t.test('failure records: failures by status and phase; connect times of failed dials', async t => {
  const metrics = createMetrics({ originHealth: noHealth })
  metrics.observeFailure(failure())
  metrics.observeFailure(failure({ edge_status: 522, timings: { dns_ms: null, connect_ms: 15000.2, tls_ms: null, ttfb_ms: null, total_ms: 15001 } }))
  // Connected, then the origin went silent: its connect time belongs to its access record.
  metrics.observeFailure(failure({ edge_status: 524, phase: 'response', timings: { dns_ms: null, connect_ms: 0.2, tls_ms: null, ttfb_ms: null, total_ms: 100000 } }))
  metrics.observeFailure(failure({ edge_status: 530, phase: 'dns', timings: { dns_ms: 3, connect_ms: null, tls_ms: null, ttfb_ms: null, total_ms: 3 } }))
  metrics.observeFailure(failure({ edge_status: 525, phase: 'tls', timings: { dns_ms: null, connect_ms: 0.7, tls_ms: 2, ttfb_ms: null, total_ms: 3 } }))
  metrics.observeFailure(failure({ edge_status: 522, injected: true, timings: { dns_ms: null, connect_ms: 15000, tls_ms: null, ttfb_ms: null, total_ms: 15000 } }))
  const text = await metrics.registry.metrics()
  t.equal(sample(text, 'highproxy_origin_failures_total{status="521",phase="connect",pool="web",origin="127.0.0.1:1"}'), 1)
  t.equal(sample(text, 'highproxy_origin_failures_total{status="522",phase="connect",pool="web",origin="127.0.0.1:1"}'), 2, 'injected faults are counted')
  t.equal(sample(text, 'highproxy_origin_failures_total{status="524",phase="response",pool="web",origin="127.0.0.1:1"}'), 1)
  t.equal(sample(text, 'highproxy_origin_failures_total{status="530",phase="dns",pool="web",origin="127.0.0.1:1"}'), 1)
  t.equal(sample(text, 'highproxy_origin_failures_total{status="525",phase="tls",pool="web",origin="127.0.0.1:1"}'), 1)
  t.equal(sample(text, 'highproxy_origin_connect_seconds_count'), 3, 'refused, timed out, TLS failed: not 524, 530 or injected')
  t.equal(sample(text, 'highproxy_origin_connect_seconds_bucket{le="0.0005"}'), 1)
  t.equal(sample(text, 'highproxy_origin_connect_seconds_bucket{le="0.001"}'), 2)
  t.equal(sample(text, 'highproxy_origin_connect_seconds_bucket{le="10"}'), 2)
  t.equal(sample(text, 'highproxy_origin_connect_seconds_bucket{le="15"}'), 2, '15000.2 ms is over 15 s')
  t.equal(sample(text, 'highproxy_origin_connect_seconds_bucket{le="30"}'), 3)
  t.equal(sample(text, 'highproxy_origin_connect_seconds_bucket{le="+Inf"}'), 3)
  t.equal(sample(text, 'highproxy_requests_total{status="521",route="web"}'), undefined, 'failures are not requests')
})

t.test('stale answers: counted by route and the status they replaced, and still as origin failures', async t => {
  const metrics = createMetrics({ originHealth: noHealth })
  metrics.observeFailure(failure({ served: 'stale' }))
  metrics.observeFailure(failure({ served: 'stale', edge_status: 522 }))
  metrics.observeFailure(failure({ served: 'page' }))
  metrics.observeFailure(failure({ served: 'none' }))
  const text = await metrics.registry.metrics()
  t.equal(sample(text, 'highproxy_stale_served_total{route="web",status="521"}'), 1)
  t.equal(sample(text, 'highproxy_stale_served_total{route="web",status="522"}'), 1)
  t.equal(sample(text, 'highproxy_origin_failures_total{status="521",phase="connect",pool="web",origin="127.0.0.1:1"}'), 3)
})

t.test('origin health is read at each scrape, labelled host:port; a removed origin disappears', async t => {
  let health: OriginHealth[] = [
    { pool: 'web', origin: 'http://10.0.0.1', up: true, inFlight: 3 },
    { pool: 'web', origin: 'https://10.0.0.2:8443', up: false, inFlight: 0 }
  ]
  const metrics = createMetrics({ originHealth: () => health })
  let text = await metrics.registry.metrics()
  t.equal(sample(text, 'highproxy_origin_up{pool="web",origin="10.0.0.1:80"}'), 1, 'the default port written out')
  t.equal(sample(text, 'highproxy_origin_up{pool="web",origin="10.0.0.2:8443"}'), 0)
  t.equal(sample(text, 'highproxy_origin_requests_in_flight{pool="web",origin="10.0.0.1:80"}'), 3)
  t.equal(sample(text, 'highproxy_origin_requests_in_flight{pool="web",origin="10.0.0.2:8443"}'), 0)
  health = [{ pool: 'web', origin: 'https://10.0.0.2:8443', up: true, inFlight: 1 }]
  text = await metrics.registry.metrics()
  t.equal(sample(text, 'highproxy_origin_up{pool="web",origin="10.0.0.1:80"}'), undefined)
  t.equal(sample(text, 'highproxy_origin_requests_in_flight{pool="web",origin="10.0.0.1:80"}'), undefined)
  t.equal(sample(text, 'highproxy_origin_up{pool="web",origin="10.0.0.2:8443"}'), 1)
  t.equal(sample(text, 'highproxy_origin_requests_in_flight{pool="web",origin="10.0.0.2:8443"}'), 1)
})

t.test('origin requests: by the final attempt\'s origin; every configured origin is there at 0', async t => {
  const health: OriginHealth[] = [
    { pool: 'web', origin: 'http://127.0.0.1:9001', up: true, inFlight: 0 },
    { pool: 'web', origin: 'http://127.0.0.1:9002', up: true, inFlight: 0 }
  ]
  const metrics = createMetrics({ originHealth: () => health })
  t.equal(sample(await metrics.registry.metrics(), 'highproxy_origin_requests_total{pool="web",origin="127.0.0.1:9002"}'), 0,
    'there before any request, so that a failure ratio has a denominator')
  metrics.observeAccess(access())
  metrics.observeAccess(access({ status: 521, edge_status: 521 }))
  metrics.observeAccess(access({ status: 404, edge_status: 404, route: null, pool: null, origin: null }))
  const text = await metrics.registry.metrics()
  t.equal(sample(text, 'highproxy_origin_requests_total{pool="web",origin="127.0.0.1:9001"}'), 2)
  t.equal(sample(text, 'highproxy_origin_requests_total{pool="web",origin="127.0.0.1:9002"}'), 0)
  t.notMatch(text, /^highproxy_origin_requests_total\{pool="",/m, 'no origin tried, not counted')
})

t.test('request duration: a histogram by route and status class', async t => {
  const metrics = createMetrics({ originHealth: noHealth })
  metrics.observeAccess(access({ duration_ms: 0.5 }))
  metrics.observeAccess(access({ duration_ms: 12 }))
  metrics.observeAccess(access({ duration_ms: 250, status: 204 }))
  metrics.observeAccess(access({ duration_ms: 15000, status: 522, edge_status: 522 }))
  metrics.observeAccess(access({ duration_ms: 200000, status: 524, edge_status: 524 }))
  metrics.observeAccess(access({ duration_ms: 3, status: 404, route: null }))
  const text = await metrics.registry.metrics()
  const ok = (le: string): number | undefined => sample(text, `highproxy_request_duration_seconds_bucket{route="web",status_class="2xx",le="${le}"}`)
  t.equal(ok('0.001'), 1, '0.5 ms')
  t.equal(ok('0.01'), 1)
  t.equal(ok('0.025'), 2, '12 ms')
  t.equal(ok('0.25'), 3, '250 ms lands in le=0.25 (less or equal)')
  t.equal(ok('+Inf'), 3)
  t.equal(sample(text, 'highproxy_request_duration_seconds_count{route="web",status_class="2xx"}'), 3)
  t.equal(sample(text, 'highproxy_request_duration_seconds_sum{route="web",status_class="2xx"}'), 0.2625)
  t.equal(sample(text, 'highproxy_request_duration_seconds_bucket{route="web",status_class="5xx",le="10"}'), 0)
  t.equal(sample(text, 'highproxy_request_duration_seconds_bucket{route="web",status_class="5xx",le="30"}'), 1)
  t.equal(sample(text, 'highproxy_request_duration_seconds_bucket{route="web",status_class="5xx",le="120"}'), 1, 'past the last bound')
  t.equal(sample(text, 'highproxy_request_duration_seconds_bucket{route="web",status_class="5xx",le="+Inf"}'), 2)
  t.equal(sample(text, 'highproxy_request_duration_seconds_count{route="",status_class="4xx"}'), 1, 'no route: ""')
})

t.test('summed across workers the way the primary does it (AggregatorRegistry)', async t => {
  const health = (up: boolean): OriginHealth[] => [{ pool: 'web', origin: 'http://127.0.0.1:9001', up, inFlight: 2 }]
  const a = createMetrics({ originHealth: () => health(true) })
  const b = createMetrics({ originHealth: () => health(false) })
  for (const m of [a, b]) {
    m.observeAccess(access({ duration_ms: 12 }))
    m.observeFailure(failure())
  }
  b.observeAccess(access({ duration_ms: 400 }))
  const text = await AggregatorRegistry.aggregate([await a.registry.getMetricsAsJSON(), await b.registry.getMetricsAsJSON()]).metrics()
  t.equal(sample(text, 'highproxy_requests_total{status="200",route="web"}'), 3)
  t.equal(sample(text, 'highproxy_request_duration_seconds_bucket{route="web",status_class="2xx",le="0.025"}'), 2)
  t.equal(sample(text, 'highproxy_request_duration_seconds_bucket{route="web",status_class="2xx",le="0.5"}'), 3)
  t.equal(sample(text, 'highproxy_request_duration_seconds_count{route="web",status_class="2xx"}'), 3)
  t.equal(sample(text, 'highproxy_origin_failures_total{status="521",phase="connect",pool="web",origin="127.0.0.1:1"}'), 2)
  t.equal(sample(text, 'highproxy_origin_requests_in_flight{pool="web",origin="127.0.0.1:9001"}'), 4, 'in flight: summed')
  t.equal(sample(text, 'highproxy_origin_up{pool="web",origin="127.0.0.1:9001"}'), 0, 'up: the minimum (one worker has it down)')
  t.equal(sample(text, 'highproxy_pending_connects'), 0)
})

t.test('the pending connects gauge shows a real dial stuck in the TCP handshake', async t => {
  const metrics = createMetrics({ originHealth: noHealth })
  const origin = await synDropOrigin()
  t.teardown(() => origin.close())
  const port = Number(new URL(origin.url).port)
  t.equal(sample(await metrics.registry.metrics(), 'highproxy_pending_connects'), 0)
  const pending = dial({ protocol: 'http:', hostname: '127.0.0.1', port }, { connectTimeoutMs: 500, tlsTimeoutMs: 500, tls: { verify: true } })
  const settled = pending.then(() => 'connected', (err: { code?: string }) => err.code)
  t.equal(sample(await metrics.registry.metrics(), 'highproxy_pending_connects'), 1, 'one dial in SYN_SENT')
  t.equal(await settled, 'HPX_ERR_CONNECT_TIMEOUT')
  t.equal(sample(await metrics.registry.metrics(), 'highproxy_pending_connects'), 0, 'back to 0 once it timed out')
})
