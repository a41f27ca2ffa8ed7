// GET /origins: each pool's origins as the edge sees them now: condition (up, drowning,
// down, recovering), since when, the evidence, requests in flight and the concurrency
// limit (null while nothing limits it), with what the pending-connect cap and adaptive
// concurrency hold for it (connects waiting for a SYN-ACK, dials waiting behind them,
// requests queued under the limit, requests shed). With --workers each worker keeps its own view;
// the primary merges them: the worst condition any worker sees (with that worker's
// evidence), in-flight and limits summed, and every worker's own row beside.

import type { Condition } from '../origin/conditions.js'
import type { MemberHealth } from '../origin/pool.js'

/** What one process knows of one origin (the worker's answer to the primary). */
export type OriginRow = Pick<MemberHealth, 'pool' | 'origin' | 'condition' | 'since' | 'evidence' | 'inFlight' | 'limit' | 'load'>

export interface OriginView {
  origin: string
  condition: Condition
  /** ISO 8601. */
  since: string
  evidence: string
  in_flight: number
  limit: number | null
  /** Connects that sent a SYN and have no answer yet (null: the cap is off). */
  pending_connects: number | null
  /** Dials waiting at the pending-connect cap. */
  connects_waiting: number | null
  /** Requests queued under the adaptive limit (null: adaptive concurrency off). */
  queued: number | null
  /** Requests shed at the adaptive limit since start. */
  shed: number | null
}

export interface WorkerOriginView extends OriginView { pid: number }

export interface PoolView {
  pool: string
  origins: Array<OriginView & { workers?: WorkerOriginView[] }>
}

const view = (r: OriginRow): OriginView => ({
  origin: r.origin,
  condition: r.condition,
  since: new Date(r.since).toISOString(),
  evidence: r.evidence,
  in_flight: r.inFlight,
  limit: r.limit,
  pending_connects: r.load.connects?.pending ?? null,
  connects_waiting: r.load.connects?.waiting ?? null,
  queued: r.load.adaptive?.queued ?? null,
  shed: r.load.adaptive?.shed ?? null
})

/** The workers' numbers added up; null when no worker has one (the feature is off). */
const sum = (xs: ReadonlyArray<number | null>): number | null => {
  const present = xs.filter((x): x is number => x !== null)
  return present.length === 0 ? null : present.reduce((n, x) => n + x, 0)
}

/** Worst first: what an operator must see when workers disagree. */
const SEVERITY: Record<Condition, number> = { down: 3, drowning: 2, recovering: 1, up: 0 }

/** One process's rows, grouped by pool in configuration order. */
export function originsBody (rows: readonly OriginRow[]): { pools: PoolView[] } {
  const pools = new Map<string, PoolView>()
  for (const r of rows) {
    let p = pools.get(r.pool)
    if (p === undefined) pools.set(r.pool, p = { pool: r.pool, origins: [] })
    p.origins.push(view(r))
  }
  return { pools: [...pools.values()] }
}

/** Every worker's rows merged per pool and origin. */
export function mergedOrigins (answers: ReadonlyArray<{ pid: number, rows: readonly OriginRow[] }>): { pools: PoolView[] } {
  const pools = new Map<string, Map<string, WorkerOriginView[]>>()
  for (const { pid, rows } of answers) {
    for (const r of rows) {
      let origins = pools.get(r.pool)
      if (origins === undefined) pools.set(r.pool, origins = new Map())
      let seen = origins.get(r.origin)
      if (seen === undefined) origins.set(r.origin, seen = [])
      seen.push({ pid, ...view(r) })
    }
  }
  return {
    pools: [...pools].map(([pool, origins]) => ({
      pool,
      origins: [...origins.values()].map(workers => {
        const worst = workers.reduce((a, b) => SEVERITY[b.condition] > SEVERITY[a.condition] ? b : a)
        return {
          origin: worst.origin,
          condition: worst.condition,
          since: worst.since,
          evidence: worst.evidence,
          in_flight: workers.reduce((n, w) => n + w.in_flight, 0),
          limit: sum(workers.map(w => w.limit)),
          pending_connects: sum(workers.map(w => w.pending_connects)),
          connects_waiting: sum(workers.map(w => w.connects_waiting)),
          queued: sum(workers.map(w => w.queued)),
          shed: sum(workers.map(w => w.shed)),
          workers
        }
      })
    }))
  }
}
