// What the admin listener's /metrics says. The names are a public interface (dashboards
// and alerts are written against them): change one only with a changelog entry.
//
//   highproxy_requests_total{status,route}          counter   one per access record; status is what
//                                                              the client got (499: client left);
//                                                              route is the route name, "" when no
//                                                              route matched
//   highproxy_edge_errors_total{status}             counter   access records answered by the edge
//                                                              itself (edge_status set: 52x, 530,
//                                                              and the edge's own 400/404)
//   highproxy_origin_failures_total{status,phase}   counter   one per failure record (per attempt);
//                                                              phase: dns, connect, tls, response, body
//   highproxy_origin_connect_seconds                histogram TCP connect time of origin connections:
//                                                              every fresh connection (access records)
//                                                              and every failed dial that had a TCP
//                                                              phase (failure records: refused, timed
//                                                              out, TLS failed; not injected faults);
//                                                              a dropped SYN lands at the connect timeout
//   highproxy_origin_ttfb_seconds                   histogram time from request arrival to the origin's
//                                                              response headers
//   highproxy_pending_connects                      gauge     origin dials in progress right now
//   highproxy_origin_up{pool,origin}                gauge     1 while the origin is considered up, 0 down
//   highproxy_process_*, highproxy_nodejs_*                   prom-client's default process metrics
//
// Everything lives on a registry of its own (never prom-client's global one), so two
// proxies in one process (tests, reloads) never share or collide on a metric.
//
// The hot path: observeAccess runs once per request. prom-client's labelled inc()
// builds a label hash string and a result object per call (~5-10x the cost of the
// rest), so the per-request counters are plain numbers in cells found by two map
// lookups (route, then status), written into prom-client's counters when scraped; the
// histograms are prom-client's own, without labels; the gauges are read at scrape.

import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import type { AccessRecord, FailureRecord } from '../log.js'
import { pendingDials } from '../origin/dial.js'

export interface OriginHealth {
  pool: string
  origin: string
  up: boolean
}

export interface MetricsOptions {
  /** Read at each scrape for highproxy_origin_up. */
  originHealth: () => OriginHealth[]
}

export interface Metrics {
  registry: Registry
  observeAccess: (record: AccessRecord) => void
  observeFailure: (record: FailureRecord) => void
}

/** Seconds: 0.5 ms (loopback) to 30 s (twice the default connect timeout). */
export const CONNECT_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30]
/** Seconds: 1 ms to 100 s (the default response timeout, after which it is a 524). */
export const TTFB_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 100]

/** Failures whose timings describe a dial of their own (nothing was sent yet). */
const DIAL_PHASES = new Set(['dns', 'connect', 'tls'])

/** One label set of a counter, counted here and passed on to prom-client at scrape. */
interface Cell<L extends string> {
  labels: Record<L, string>
  value: number
}

/** Writes the totals counted here into the prom-client counter (at scrape). */
function exportCells<L extends string> (counter: Counter<L>, cells: Array<Cell<L>>): void {
  counter.reset()
  for (const cell of cells) counter.inc(cell.labels, cell.value)
}

export function createMetrics (opts: MetricsOptions): Metrics {
  const registry = new Registry()
  const registers = [registry]

  // Label cells: route → status → cell. Routes come from the config and statuses are
  // three digits, so these stay small.
  const requestCells = new Map<string, Map<number, Cell<'status' | 'route'>>>()
  const requestList: Array<Cell<'status' | 'route'>> = []
  const edgeCells = new Map<number, Cell<'status'>>()
  const edgeList: Array<Cell<'status'>> = []

  void new Counter({
    name: 'highproxy_requests_total',
    help: 'Requests answered, by the status the client got and the route that served them ("" when none matched).',
    labelNames: ['status', 'route'] as const,
    registers,
    collect () { exportCells(this, requestList) }
  })
  void new Counter({
    name: 'highproxy_edge_errors_total',
    help: 'Requests answered by the edge itself rather than the origin, by status.',
    labelNames: ['status'] as const,
    registers,
    collect () { exportCells(this, edgeList) }
  })
  const originFailures = new Counter({
    name: 'highproxy_origin_failures_total',
    help: 'Failed origin attempts (one per attempt), by edge status and the phase the request was in.',
    labelNames: ['status', 'phase'] as const,
    registers
  })
  const connect = new Histogram({
    name: 'highproxy_origin_connect_seconds',
    help: 'TCP connect time of origin connections, successful or not.',
    buckets: CONNECT_BUCKETS,
    registers
  })
  const ttfb = new Histogram({
    name: 'highproxy_origin_ttfb_seconds',
    help: 'Time from request arrival to the origin response headers.',
    buckets: TTFB_BUCKETS,
    registers
  })
  // Registered for their collect(); nothing else refers to them.
  void new Gauge({
    name: 'highproxy_pending_connects',
    help: 'Origin dials in progress (DNS, TCP or TLS not finished yet).',
    registers,
    collect () { this.set(pendingDials()) }
  })
  void new Gauge({
    name: 'highproxy_origin_up',
    help: 'Origin health as the proxy sees it: 1 up, 0 down.',
    labelNames: ['pool', 'origin'] as const,
    registers,
    collect () {
      // Reset first: an origin removed by a reload must not stay in the output forever.
      this.reset()
      for (const h of opts.originHealth()) this.set({ pool: h.pool, origin: h.origin }, h.up ? 1 : 0)
    }
  })
  collectDefaultMetrics({ register: registry, prefix: 'highproxy_' })

  const requestCell = (route: string, status: number): Cell<'status' | 'route'> => {
    let byStatus = requestCells.get(route)
    if (byStatus === undefined) {
      byStatus = new Map()
      requestCells.set(route, byStatus)
    }
    let cell = byStatus.get(status)
    if (cell === undefined) {
      cell = { labels: { status: String(status), route }, value: 0 }
      byStatus.set(status, cell)
      requestList.push(cell)
    }
    return cell
  }

  const edgeCell = (status: number): Cell<'status'> => {
    let cell = edgeCells.get(status)
    if (cell === undefined) {
      cell = { labels: { status: String(status) }, value: 0 }
      edgeCells.set(status, cell)
      edgeList.push(cell)
    }
    return cell
  }

  const observeAccess = (record: AccessRecord): void => {
    requestCell(record.route ?? '', record.status).value++
    if (record.edge_status !== null) edgeCell(record.edge_status).value++
    if (record.connect_ms !== null) connect.observe(record.connect_ms / 1000)
    if (record.ttfb_ms !== null) ttfb.observe(record.ttfb_ms / 1000)
  }

  const observeFailure = (record: FailureRecord): void => {
    originFailures.inc({ status: String(record.edge_status), phase: record.phase })
    // A failure after the connection was made (520, 524) carries the dial timings of a
    // fresh socket, which its access record counts already; injected faults never dialled.
    const ms = record.timings.connect_ms
    if (ms !== null && !record.injected && DIAL_PHASES.has(record.phase)) connect.observe(ms / 1000)
  }

  return { registry, observeAccess, observeFailure }
}
