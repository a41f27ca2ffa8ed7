// The in-process load generator: autocannon, with every response's latency kept
// (autocannon's own histogram has 1 ms resolution; added latency is sub-millisecond).
// Used for the fixed-rate rows (`rate`: autocannon's overallRate), the storm's steady
// healthy load, and for throughput when wrk is not installed.

import autocannon from 'autocannon'
import { HOST } from './procs.mjs'

/** Nearest-rank percentile of a sorted Float64Array. */
export function percentile (sorted, p) {
  if (sorted.length === 0) return null
  const rank = Math.ceil((p / 100) * sorted.length)
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]
}

export function median (values) {
  const v = values.filter(x => x !== null && Number.isFinite(x)).sort((a, b) => a - b)
  if (v.length === 0) return null
  const mid = Math.floor(v.length / 2)
  return v.length % 2 === 1 ? v[mid] : (v[mid - 1] + v[mid]) / 2
}

const MIN_ROUNDS_FOR_INTERVAL = 5

/**
 * Σa / Σb over paired rounds ([a, b] each), with a 95% bootstrap interval (from 5 rounds): the rounds
 * resampled with replacement 2,000 times. A fixed seed, so that one set of results always
 * reads the same. Where single rounds scatter widely (a storm's CPU by half either way), the
 * interval says how far the figure can be trusted.
 */
export function ratioOfSums (rounds, resamples = 2000) {
  // A round with a reading missing is no round (as median() drops such values).
  const pairs = rounds.filter(p => Number.isFinite(p[0]) && Number.isFinite(p[1]))
  const sum = (xs, i) => xs.reduce((n, p) => n + p[i], 0)
  const value = pairs.length === 0 ? null : sum(pairs, 0) / sum(pairs, 1)
  // Fewer rounds than this resample into an interval that means nothing.
  if (pairs.length < MIN_ROUNDS_FOR_INTERVAL) return { value, low: null, high: null }
  let seed = 0x9e3779b9
  // mulberry32: a small PRNG; Math.random cannot be seeded.
  const random = () => {
    seed = (seed + 0x6d2b79f5) | 0
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  const ratios = new Float64Array(resamples)
  for (let r = 0; r < resamples; r++) {
    let a = 0
    let b = 0
    for (let i = 0; i < pairs.length; i++) {
      const p = pairs[Math.floor(random() * pairs.length)]
      a += p[0]
      b += p[1]
    }
    ratios[r] = a / b
  }
  ratios.sort()
  return { value, low: percentile(ratios, 2.5), high: percentile(ratios, 97.5) }
}

class Samples {
  constructor () { this.chunks = []; this.current = new Float64Array(65536); this.n = 0; this.total = 0 }
  push (v) {
    if (this.n === this.current.length) { this.chunks.push(this.current); this.current = new Float64Array(65536); this.n = 0 }
    this.current[this.n++] = v
    this.total++
  }
  values () {
    const out = new Float64Array(this.total)
    let off = 0
    for (const c of this.chunks) { out.set(c, off); off += c.length }
    out.set(this.current.subarray(0, this.n), off)
    return out
  }

  sorted () { return this.values().sort() }
}

/** Wall-clock time in ms with sub-ms resolution, comparable between processes. */
export const epochMs = () => performance.timeOrigin + performance.now()

/** Latencies (sorted) of the responses that completed within [from, to] (epoch ms). */
export function within (raw, from, to) {
  const out = []
  for (let i = 0; i < raw.at.length; i++) if (raw.at[i] >= from && raw.at[i] <= to) out.push(raw.ms[i])
  return Float64Array.from(out).sort()
}

/**
 * Load `port` for `seconds` with `connections` keep-alive connections, as fast as they
 * go, or at `rate` requests per second overall.
 * Bounded in time (duration) and in count (maxRequests, then stopped).
 * Resolves { rps, p50, p99, p999, mean, requests, statuses, errors, timeouts, non2xx, seconds },
 * plus raw: { at, ms } (each response's completion time and latency) with keepTimes.
 */
export function load ({ port, path = '/', headers = {}, connections = 50, seconds, rate, keepTimes = false, maxRequests = 250_000 * seconds, timeoutSec = 10 }) {
  return new Promise((resolve, reject) => {
    const samples = new Samples()
    const at = keepTimes ? new Samples() : null
    const inOrder = keepTimes ? new Samples() : null
    const statuses = {}
    let t0 = 0
    let stopped = false
    const instance = autocannon({
      url: `http://${HOST}:${port}${path}`,
      connections,
      pipelining: 1,
      duration: seconds,
      headers,
      timeout: timeoutSec,
      excludeErrorStats: false,
      sampleInt: 100,
      ...(rate === undefined ? {} : { overallRate: rate })
    }, (err, result) => {
      if (err) { reject(err); return }
      const elapsed = (performance.now() - t0) / 1000
      const sorted = samples.sorted()
      let sum = 0
      for (let i = 0; i < sorted.length; i++) sum += sorted[i]
      resolve({
        rps: samples.total / elapsed,
        p50: percentile(sorted, 50),
        p99: percentile(sorted, 99),
        p999: percentile(sorted, 99.9),
        mean: sorted.length === 0 ? null : sum / sorted.length,
        requests: samples.total,
        statuses,
        errors: result.errors,
        timeouts: result.timeouts,
        non2xx: result.non2xx,
        seconds: elapsed,
        ...(keepTimes ? { raw: { at: at.values(), ms: inOrder.values() } } : {})
      })
    })
    t0 = performance.now()
    instance.on('response', (_client, statusCode, _bytes, responseTime) => {
      samples.push(responseTime)
      if (at !== null) { at.push(epochMs()); inOrder.push(responseTime) }
      statuses[statusCode] = (statuses[statusCode] ?? 0) + 1
      if (!stopped && samples.total >= maxRequests) { stopped = true; instance.stop() }
    })
  })
}
