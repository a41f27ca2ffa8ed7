// What the admin listener's /metrics says. The names are a public interface (dashboards
// and alerts are written against them, deploy/monitoring/ ships some, and the README
// lists each one with its labels; a test holds the two together): change one only with
// a changelog entry.
//
//   highproxy_requests_total{status,route}          counter   one per access record; status is what
//                                                              the client got (499: client left);
//                                                              route is the route name, "" when no
//                                                              route matched
//   highproxy_edge_errors_total{status,route}       counter   access records answered by the edge
//                                                              itself (edge_status set: 52x, 530,
//                                                              and the edge's own 400/404)
//   highproxy_request_duration_seconds{route,status_class}
//                                                   histogram request arrival to response end, per
//                                                              access record; status_class 2xx..5xx
//   highproxy_origin_requests_total{pool,origin}    counter   access records whose final attempt went
//                                                              to that origin; every configured origin
//                                                              is there from the start (at 0), so that
//                                                              a failure ratio has a denominator
//   highproxy_origin_failures_total{status,phase,pool,origin}
//                                                   counter   one per failure record (per attempt);
//                                                              phase: dns, connect, tls, response, body
//   highproxy_stale_served_total{route,status}      counter   failure records answered with a stored copy
//                                                              (served: "stale"); status is the edge status
//                                                              the copy replaced; the failure still counts
//                                                              in highproxy_origin_failures_total
//   highproxy_origin_connect_seconds                histogram TCP connect time of origin connections:
//                                                              every fresh connection (access records)
//                                                              and every failed dial that had a TCP
//                                                              phase (failure records: refused, timed
//                                                              out, TLS failed; not injected faults);
//                                                              a dropped SYN lands at the connect timeout
//   highproxy_origin_ttfb_seconds                   histogram time from request arrival to the origin's
//                                                              response headers
//   highproxy_origin_requests_in_flight{pool,origin} gauge    requests at that origin right now
//   highproxy_pending_connects                      gauge     origin dials in progress right now
//   highproxy_origin_up{pool,origin}                gauge     1 while the origin is considered up, 0 down
//   highproxy_origin_pending_connects{pool,origin}  gauge     connects with a SYN sent and no answer (the cap's count)
//   highproxy_origin_connects_waiting{pool,origin}  gauge     dials waiting at the pending-connect cap
//   highproxy_origin_concurrency_limit{pool,origin} gauge     adaptive concurrency's learned limit
//   highproxy_origin_queue_length{pool,origin}      gauge     requests queued under that limit
//   highproxy_origin_shed_total{pool,origin}        counter   requests shed (503 or a stored copy) at that limit
//   highproxy_retry_budget_refused_total{pool}      counter   failures answered because the retry budget was spent
//   highproxy_origin_condition{pool,origin,condition}
//                                                   gauge     1 for the origin's current condition (up,
//                                                              drowning, down, recovering), 0 for the
//                                                              other three; with workers, how many
//                                                              workers see it in that condition
//   highproxy_certificate_expiry_timestamp_seconds{name}
//                                                   gauge     when the certificate served for that name
//                                                              expires (Unix seconds): configured ones and
//                                                              ACME's; with workers, the minimum
//   highproxy_acme_failures_total                   counter   failed ACME orders and renewals (each try)
//   highproxy_trace_spans_exported_total            counter   spans the OTLP receiver accepted (0 with tracing off)
//   highproxy_trace_spans_dropped_total{reason}     counter   spans never exported (0 with tracing off): queue_full
//                                                              (the receiver is down or slow and the bounded
//                                                              queue is full), export_failed (sent and refused,
//                                                              or the export failed or timed out)
//   highproxy_process_*, highproxy_nodejs_*                   prom-client's default process metrics
//
// `origin` is the configured URL's host:port (origin-label.ts). Every label is bounded by
// the config: routes (+ ""), pools and their origins, the few edge statuses and phases.
//
// With --workers, the primary sums the workers' registries (cluster-view.ts): every
// counter and histogram is summed, and so are the gauges but one (highproxy_origin_condition
// then counts the workers that see each condition): highproxy_origin_up is
// the minimum, 0 as soon as one worker has marked the origin down (each worker keeps its
// own passive health, and one that marked it down answers its share of requests with
// that failure at once).
//
// Everything lives on a registry of its own (never prom-client's global one), so two
// proxies in one process (tests, reloads) never share or collide on a metric.
//
// The hot path: observeAccess runs once per request: a few map lookups and number
// increments into cells (cells.ts), handed to prom-client when scraped. Measured here:
// ~0.55 us per record with the connect and TTFB histograms as prom-client's own
// (unlabelled) observe(), ~0.15 us with every histogram in cells and the new labelled
// series added. The gauges are read at scrape. The failure counter is in cells too: it runs
// once per failed attempt, and a 522 storm is a thousand failed attempts at once (its
// labelled inc() was 3% of the storm's CPU).

import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client'
import type { AccessRecord, FailureRecord } from '../log/log.js'
import { CONDITIONS, type Condition } from '../origin/conditions.js'
import { pendingDials } from '../origin/dial.js'
import type { OriginLoad } from '../origin/load.js'
import {
  CellTable, counterCell, exportCounter, histogramCell, observeCell, registerCellHistogram,
  type CounterCell, type HistogramCell
} from './cells.js'
import { originLabel } from './origin-label.js'
import type { SpanCounts } from '../tracing.js'

export interface OriginHealth {
  pool: string
  /** The configured origin URL. */
  origin: string
  up: boolean
  inFlight: number
  /** The pending-connect cap, adaptive concurrency and the retry budget (absent in tests that do not care). */
  load?: OriginLoad
  /** Absent where nothing tracks it: no highproxy_origin_condition series then. */
  condition?: Condition
}

export interface MetricsOptions {
  /** Read at each scrape for the per-origin gauges and the configured origins. */
  originHealth: () => OriginHealth[]
  /** Read at each scrape: every certificate the TLS listener serves, by name. */
  certificates?: () => Array<{ name: string, notAfter: number }>
  /** Tracing's export counts, read at each scrape; absent: tracing is off (the trace counters stay at 0). */
  spans?: () => SpanCounts
}

export interface Metrics {
  registry: Registry
  observeAccess: (record: AccessRecord) => void
  observeFailure: (record: FailureRecord) => void
  /** One failed ACME try. */
  acmeFailure: () => void
}

/** Seconds: 0.5 ms (loopback) to 30 s (twice the default connect timeout). */
export const CONNECT_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30]
/**
 * Seconds: 1 ms to 120 s (the default response timeout, after which it is a 524); the
 * request duration uses them too, so that TTFB and duration read side by side.
 */
export const TTFB_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120]

/** Failures whose timings describe a dial of their own (nothing was sent yet). */
const DIAL_PHASES = new Set(['dns', 'connect', 'tls'])
/** Edge statuses of a dial that failed: refused, timed out, unreachable, TLS failed. */
const DIAL_FAILURE_STATUSES = new Set([521, 522, 523, 525, 526, 530])

type RequestLabels = 'status' | 'route'
type DurationLabels = 'route' | 'status_class'
type OriginLabels = 'pool' | 'origin'
type FailureLabels = 'status' | 'phase' | 'pool' | 'origin'

export function createMetrics (opts: MetricsOptions): Metrics {
  const registry = new Registry()
  const registers = [registry]

  const requests = new CellTable((route: string, status: number): CounterCell<RequestLabels> =>
    counterCell({ status: String(status), route }))
  const edgeErrors = new CellTable((route: string, status: number): CounterCell<RequestLabels> =>
    counterCell({ status: String(status), route }))
  const originRequests = new CellTable((pool: string, origin: string): CounterCell<OriginLabels> =>
    counterCell({ pool, origin }))
  const durations = new CellTable((route: string, hundreds: number): HistogramCell<DurationLabels> =>
    histogramCell({ route, status_class: `${hundreds}xx` }, TTFB_BUCKETS))

  /** Origin label values of the configured origins, as the health snapshot has them. */
  const health = (): Array<OriginHealth & { label: string }> =>
    opts.originHealth().map(h => ({ ...h, label: originLabel(h.origin) }))

  void new Counter({
    name: 'highproxy_requests_total',
    help: 'Requests answered, by the status the client got and the route that served them ("" when none matched).',
    labelNames: ['status', 'route'] as const,
    registers,
    collect () { exportCounter(this, requests.list) }
  })
  void new Counter({
    name: 'highproxy_edge_errors_total',
    help: 'Requests answered by the edge itself rather than the origin, by status and route.',
    labelNames: ['status', 'route'] as const,
    registers,
    collect () { exportCounter(this, edgeErrors.list) }
  })
  registerCellHistogram({
    name: 'highproxy_request_duration_seconds',
    help: 'Request arrival to the end of the response, by route and status class (2xx..5xx).',
    buckets: TTFB_BUCKETS,
    cells: durations.list,
    registry
  })
  void new Counter({
    name: 'highproxy_origin_requests_total',
    help: 'Requests whose final attempt went to that origin (host:port), by pool.',
    labelNames: ['pool', 'origin'] as const,
    registers,
    collect () {
      for (const h of health()) originRequests.get(h.pool, h.label)
      exportCounter(this, originRequests.list)
    }
  })
  // In cells too: a 522 storm counts a thousand failures at once, and prom-client's
  // labelled inc() validated and hashed the labels of each (3% of the storm's CPU).
  const originFailures = new CellTable((statusPhase: string, poolOrigin: string): CounterCell<FailureLabels> => {
    const [status = '', phase = ''] = statusPhase.split('\n')
    const [pool = '', origin = ''] = poolOrigin.split('\n')
    return counterCell({ status, phase, pool, origin })
  })
  void new Counter({
    name: 'highproxy_origin_failures_total',
    help: 'Failed origin attempts (one per attempt), by edge status, the phase the request was in, pool and origin (host:port).',
    labelNames: ['status', 'phase', 'pool', 'origin'] as const,
    registers,
    collect () { exportCounter(this, originFailures.list) }
  })
  const staleServed = new Counter({
    name: 'highproxy_stale_served_total',
    help: 'Origin failures answered with a stored copy (Always online), by route and the edge status it replaced.',
    labelNames: ['route', 'status'] as const,
    registers
  })
  const connect = histogramCell<never>({}, CONNECT_BUCKETS)
  registerCellHistogram({
    name: 'highproxy_origin_connect_seconds',
    help: 'TCP connect time of origin connections, successful or not.',
    buckets: CONNECT_BUCKETS,
    cells: [connect],
    registry
  })
  const ttfb = histogramCell<never>({}, TTFB_BUCKETS)
  registerCellHistogram({
    name: 'highproxy_origin_ttfb_seconds',
    help: 'Time from request arrival to the origin response headers.',
    buckets: TTFB_BUCKETS,
    cells: [ttfb],
    registry
  })
  // Registered for their collect(); nothing else refers to them. Each resets first: an
  // origin removed by a reload must not stay in the output forever.
  void new Gauge({
    name: 'highproxy_origin_requests_in_flight',
    help: 'Requests at that origin (host:port) right now, by pool.',
    labelNames: ['pool', 'origin'] as const,
    registers,
    collect () {
      this.reset()
      for (const h of health()) this.inc({ pool: h.pool, origin: h.label }, h.inFlight)
    }
  })
  void new Gauge({
    name: 'highproxy_pending_connects',
    help: 'Origin dials in progress (DNS, TCP or TLS not finished yet).',
    registers,
    collect () { this.set(pendingDials()) }
  })
  void new Gauge({
    name: 'highproxy_origin_up',
    help: 'Origin health as the proxy sees it: 1 up, 0 down (with workers: the minimum over them).',
    labelNames: ['pool', 'origin'] as const,
    aggregator: 'min',
    registers,
    collect () {
      this.reset()
      for (const h of health()) this.set({ pool: h.pool, origin: h.label }, h.up ? 1 : 0)
    }
  })
  // The pending-connect cap, adaptive concurrency and the retry budget (origin/load.ts),
  // read at scrape like the gauges above.
  const loads = (): Array<{ pool: string, origin: string, load: OriginLoad }> =>
    health().flatMap(h => h.load === undefined ? [] : [{ pool: h.pool, origin: h.label, load: h.load }])
  // One row per metric: its name, kind and help, and what it reads of an origin's load
  // (null: that origin's pool does not have the feature, so it gets no sample).
  const perOrigin: Array<[string, typeof Gauge | typeof Counter, string, (l: OriginLoad) => number | null]> = [
    ['highproxy_origin_pending_connects', Gauge,
      'Connects to that origin that sent a SYN and have no answer yet (what connections.max_pending_connects caps), by pool.',
      l => l.connects?.pending ?? null],
    ['highproxy_origin_connects_waiting', Gauge,
      'Dials to that origin waiting at the pending-connect cap for an unanswered connect to end, by pool.',
      l => l.connects?.waiting ?? null],
    ['highproxy_origin_concurrency_limit', Gauge,
      'The concurrency limit adaptive concurrency has learned for that origin (pools with adaptive_concurrency only).',
      l => l.adaptive?.limit ?? null],
    ['highproxy_origin_queue_length', Gauge,
      'Requests waiting for a slot under that origin\'s learned concurrency limit (adaptive_concurrency).',
      l => l.adaptive?.queued ?? null],
    ['highproxy_origin_shed_total', Counter,
      'Requests adaptive concurrency answered with 503 (or a stored copy) because that origin was at its learned limit.',
      l => l.adaptive?.shed ?? null]
  ]
  for (const [name, Metric, help, read] of perOrigin) {
    void new Metric({
      name,
      help,
      labelNames: ['pool', 'origin'] as const,
      registers,
      collect () {
        this.reset()
        for (const l of loads()) {
          const value = read(l.load)
          if (value === null) continue
          // A counter's collect sets its total from the source, as a gauge's sets its value.
          if (this instanceof Gauge) this.set({ pool: l.pool, origin: l.origin }, value)
          else this.inc({ pool: l.pool, origin: l.origin }, value)
        }
      }
    })
  }
  void new Counter({
    name: 'highproxy_retry_budget_refused_total',
    help: 'Failed attempts answered rather than retried because the pool\'s retry budget was spent.',
    labelNames: ['pool'] as const,
    registers,
    collect () {
      this.reset()
      const seen = new Set<string>()
      for (const l of loads()) {
        if (seen.has(l.pool)) continue
        seen.add(l.pool)
        this.inc({ pool: l.pool }, l.load.retryBudget.refused)
      }
    }
  })
  void new Gauge({
    name: 'highproxy_origin_condition',
    help: 'The origin\'s condition: 1 for the current one of up, drowning, down, recovering (with workers: how many workers see it so).',
    labelNames: ['pool', 'origin', 'condition'] as const,
    registers,
    collect () {
      this.reset()
      for (const h of health()) {
        if (h.condition === undefined) continue
        for (const c of CONDITIONS) this.set({ pool: h.pool, origin: h.label, condition: c }, c === h.condition ? 1 : 0)
      }
    }
  })
  void new Gauge({
    name: 'highproxy_certificate_expiry_timestamp_seconds',
    help: 'When the certificate served for that name expires, in Unix seconds (with workers: the earliest).',
    labelNames: ['name'] as const,
    aggregator: 'min',
    registers,
    collect () {
      this.reset()
      for (const c of opts.certificates?.() ?? []) this.set({ name: c.name }, Math.floor(c.notAfter / 1000))
    }
  })
  const acmeFailures = new Counter({
    name: 'highproxy_acme_failures_total',
    help: 'Failed ACME tries (orders and renewals), each retried with backoff.',
    registers
  })
  // Always there (at 0 while tracing is off), so that a dashboard's series exist before tracing is turned on.
  const noSpans: SpanCounts = { exported: 0, droppedQueueFull: 0, droppedExportFailed: 0 }
  const spans = opts.spans ?? (() => noSpans)
  void new Counter({
    name: 'highproxy_trace_spans_exported_total',
    help: 'Spans the OTLP receiver accepted (0 while tracing is off).',
    registers,
    collect () { this.reset(); this.inc(spans().exported) }
  })
  void new Counter({
    name: 'highproxy_trace_spans_dropped_total',
    help: 'Spans never exported: queue_full (the receiver is down or slow and the queue is full), export_failed.',
    labelNames: ['reason'] as const,
    registers,
    collect () {
      const c = spans()
      this.reset()
      this.inc({ reason: 'queue_full' }, c.droppedQueueFull)
      this.inc({ reason: 'export_failed' }, c.droppedExportFailed)
    }
  })
  collectDefaultMetrics({ register: registry, prefix: 'highproxy_' })

  const observeAccess = (record: AccessRecord): void => {
    const route = record.route ?? ''
    requests.get(route, record.status).value++
    if (record.edge_status !== null) edgeErrors.get(route, record.edge_status).value++
    observeCell(durations.get(route, Math.trunc(record.status / 100)), TTFB_BUCKETS, record.duration_ms / 1000)
    const origin = record.origin ?? null
    if (origin !== null) originRequests.get(record.pool ?? '', originLabel(origin)).value++
    // An edge answer for a failed dial carries that dial's connect time, which its failure
    // record counts already (with the failed dials of earlier attempts).
    if (record.connect_ms !== null && !DIAL_FAILURE_STATUSES.has(record.edge_status ?? 0)) {
      observeCell(connect, CONNECT_BUCKETS, record.connect_ms / 1000)
    }
    if (record.ttfb_ms !== null) observeCell(ttfb, TTFB_BUCKETS, record.ttfb_ms / 1000)
  }

  const observeFailure = (record: FailureRecord): void => {
    originFailures.get(`${record.edge_status}\n${record.phase}`, `${record.pool ?? ''}\n${originLabel(record.origin.url)}`).value++
    if (record.served === 'stale') staleServed.inc({ route: record.route ?? '', status: String(record.edge_status) })
    // A failure after the connection was made (520, 524) carries the dial timings of a
    // fresh socket, which its access record counts already; injected faults never dialled.
    const ms = record.timings.connect_ms
    if (ms !== null && !record.injected && DIAL_PHASES.has(record.phase)) observeCell(connect, CONNECT_BUCKETS, ms / 1000)
  }

  return { registry, observeAccess, observeFailure, acmeFailure: () => { acmeFailures.inc() } }
}
