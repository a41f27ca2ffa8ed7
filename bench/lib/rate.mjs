// Fixed-rate load from the harness side: runs lib/rate-client.mjs (its own process) and
// returns what load() returns, so the tables treat both alike.

import { fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { percentile } from './load.mjs'

const CLIENT = fileURLToPath(new URL('./rate-client.mjs', import.meta.url))

/**
 * `rate` requests per second, evenly spaced, over `connections` keep-alive connections,
 * for `seconds`. Resolves { rps, p50, p99, p999, mean, requests, statuses, errors,
 * timeouts, non2xx, queued, seconds }, plus raw: { at, ms } with keepTimes.
 */
export async function fixedLoad ({ port, path = '/', headers = {}, connections = 50, rate, seconds, keepTimes = false }) {
  const child = fork(CLIENT, [JSON.stringify({ port, path, headers, connections, rate, seconds, keepTimes })],
    { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: [] })
  const exited = new Promise(resolve => child.once('exit', resolve))
  try {
    const next = (type, ms) => new Promise((resolve, reject) => {
      const timer = setTimeout(() => { done(); reject(new Error(`rate client: no "${type}" within ${ms} ms`)) }, ms)
      const onMsg = m => { if (m?.type === type) { done(); resolve(m) } }
      const onExit = code => { done(); reject(new Error(`rate client exited (${code}) before "${type}"`)) }
      const done = () => { clearTimeout(timer); child.off('message', onMsg); child.off('exit', onExit) }
      child.on('message', onMsg)
      child.once('exit', onExit)
    })
    await next('ready', 10_000)
    const result = next('result', seconds * 1000 + 10_000)
    child.send({ type: 'go' })
    const r = await result
    const sorted = Float64Array.from(r.ms).sort()
    let sum = 0
    for (const v of sorted) sum += v
    const non2xx = Object.entries(r.statuses).filter(([s]) => s < 200 || s >= 300).reduce((n, [, v]) => n + v, 0)
    return {
      rps: r.requests / r.seconds,
      p50: percentile(sorted, 50),
      p99: percentile(sorted, 99),
      p999: percentile(sorted, 99.9),
      mean: sorted.length ? sum / sorted.length : null,
      requests: r.requests,
      statuses: r.statuses,
      errors: r.errors,
      timeouts: 0,
      non2xx,
      queued: r.queued,
      seconds: r.seconds,
      ...(keepTimes ? { raw: { at: Float64Array.from(r.at), ms: Float64Array.from(r.ms) } } : {})
    }
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL')
    await exited
  }
}
