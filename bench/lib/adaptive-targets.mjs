// Issue 22's targets for adaptive concurrency, read from the drowning section's rows
// (drowning.mjs): against HAProxy told the origin's capacity (maxconn 1, timeout queue 1s)
// in the same run, goodput ≥ 90% of its, p99 of the 200s ≤ 1.5× its, every shed request
// answered within queue_timeout (1 s) + 100 ms, and no 522 or 524 after the first 3 s.

const ADAPTIVE = 'highproxy (adaptive_concurrency)'

export function adaptiveTargets (drowning, add) {
  if (drowning?.params?.dryRun) return
  const a = drowning?.rows?.find(r => r.name === ADAPTIVE && !r.skipped)
  if (a === undefined) return
  const h = drowning.rows.find(r => /^HAProxy/.test(r.name) && !r.skipped)
  const x = (v, of) => v == null || of == null || of === 0 ? null : v / of
  const g = x(a.goodput, h?.goodput)
  add('drowning, adaptive_concurrency: goodput ≥ 90% of HAProxy (maxconn 1)', h === undefined ? `${a.goodput.toFixed(1)} req/s (no HAProxy row)` : `${(g * 100).toFixed(0)}% (${a.goodput.toFixed(1)} vs ${h.goodput.toFixed(1)} req/s)`, g === null ? null : g >= 0.9)
  const p = x(a.p99, h?.p99)
  add('drowning, adaptive_concurrency: p99 of the 200s ≤ 1.5× HAProxy', h === undefined ? `${a.p99?.toFixed(0)} ms (no HAProxy row)` : `${p === null ? '—' : p.toFixed(2)}× (${a.p99?.toFixed(0)} vs ${h.p99?.toFixed(0)} ms)`, p === null ? null : p <= 1.5)
  add('drowning, adaptive_concurrency: every 503 within queue_timeout + 100 ms', `${a.slow503} later`, a.slow503 === 0)
  add('drowning, adaptive_concurrency: no 522/524 after the first 3 s', `${a.timeoutsAfter3s}`, a.timeoutsAfter3s === 0)
}
