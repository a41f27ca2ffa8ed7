// The `adaptive` section (issue 22): the lab's drowning origin (one request at a time,
// service_ms 25, backlog 8: 40 req/s), offered 80 req/s open-loop (a new request every
// 12.5 ms whatever the answers, each on a new connection), connect timeout 3 s, response
// timeout 5 s, in front of it highproxy with its defaults and highproxy with
// `adaptive_concurrency: true`, one after the other on the same origin. Per row: the 200s
// per second (goodput), p50/p99 of the 200s, each other status with how long it took, the
// 503s answered after queue_timeout + 100 ms, the 522/524 after the first 3 s, and the
// machine's TcpExtListenOverflows delta (SYNs dropped at a full accept queue; machine-wide,
// so other processes' drops count too).

import { execFileSync } from 'node:child_process'
import http from 'node:http'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import { writeFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { percentile } from './load.mjs'

const HOST = '127.0.0.1'

function listenOverflows () {
  try {
    const out = execFileSync('nstat', ['-az', 'TcpExtListenOverflows'], { encoding: 'utf8' })
    const m = /TcpExtListenOverflows\s+(\d+)/.exec(out)
    return m === null ? null : Number(m[1])
  } catch {
    return null
  }
}

/** One GET on a connection of its own; resolves with { status, ms, at } (status 0: no answer). */
function once (port, at, timeoutMs) {
  const t0 = performance.now()
  return new Promise(resolve => {
    const req = http.get({ host: HOST, port, path: '/', agent: false, timeout: timeoutMs }, res => {
      res.resume()
      res.once('end', () => resolve({ status: res.statusCode, ms: performance.now() - t0, at }))
      res.once('error', () => resolve({ status: 0, ms: performance.now() - t0, at }))
    })
    req.once('timeout', () => req.destroy(new Error('client timeout')))
    req.once('error', () => resolve({ status: 0, ms: performance.now() - t0, at }))
  })
}

/** Open loop: one request every 1000 / rate ms for `seconds`, whatever the answers. */
async function openLoop (port, rate, seconds, timeoutMs) {
  const gap = 1000 / rate
  const start = performance.now()
  const all = []
  for (let i = 0; i < rate * seconds; i++) {
    const due = start + i * gap
    const wait = due - performance.now()
    if (wait > 1) await sleep(wait)
    all.push(once(port, (performance.now() - start) / 1000, timeoutMs))
  }
  return Promise.all(all)
}

function summarize (name, answers, seconds, queueTimeoutMs, overflows) {
  const ok = Float64Array.from(answers.filter(a => a.status === 200).map(a => a.ms)).sort()
  const others = {}
  for (const a of answers) {
    if (a.status === 200) continue
    const o = (others[a.status] ??= [])
    o.push(a.ms)
  }
  const other = Object.fromEntries(Object.entries(others).map(([s, xs]) => {
    const sorted = Float64Array.from(xs).sort()
    return [s, { count: xs.length, p50: percentile(sorted, 50), max: sorted[sorted.length - 1] }]
  }))
  // Over the whole time 200s kept coming: a queue that drains after the offered load
  // stopped must not count as goodput within the offered seconds.
  const span = Math.max(seconds, ...answers.filter(a => a.status === 200).map(a => a.at + a.ms / 1000))
  return {
    target: name,
    offered: answers.length,
    goodput: ok.length / span,
    span,
    p50: percentile(ok, 50),
    p99: percentile(ok, 99),
    other,
    shedLate: answers.filter(a => a.status === 503 && a.ms > queueTimeoutMs + 100).length,
    timeoutsAfterSettle: answers.filter(a => (a.status === 522 || a.status === 524) && a.at >= 3).length,
    listenOverflows: overflows
  }
}

export async function adaptiveSection (results, { ctx, hp, log, root, dryRun, quick }) {
  const { drowningOrigin } = await import(pathToFileURL(path.join(root, 'dist', 'lab', 'faults.js')).href)
  const origin = await drowningOrigin({ service_ms: 25, backlog: 8 })
  const rate = 80
  const seconds = dryRun ? 0.5 : quick ? 8 : 20
  const queueTimeoutMs = 1000
  const out = { rate, seconds, serviceMs: 25, backlog: 8, queueTimeoutMs, rows: [] }
  try {
    const rows = [
      ['highproxy (defaults)', ''],
      ['highproxy (adaptive_concurrency)', '    adaptive_concurrency: true\n']
    ]
    for (const [name, extra] of rows) {
      const config = path.join(ctx.tmp, `adaptive-${out.rows.length}.yaml`)
      writeFileSync(config, `pools:\n  - name: drowning\n    origins: ["${origin.url}"]\n    connect_timeout: 3s\n    response_timeout: 5s\n${extra}routes:\n  - pool: drowning\n`)
      const proxy = await hp(name, ['--config', config])
      try {
        // Let the origin drain what the readiness check left, then measure.
        await sleep(300)
        const before = listenOverflows()
        const answers = await openLoop(proxy.port, rate, seconds, 15_000)
        const after = listenOverflows()
        const row = summarize(name, answers, seconds, queueTimeoutMs, before === null || after === null ? null : after - before)
        out.rows.push(row)
        log(`  adaptive: ${name}: ${row.goodput.toFixed(1)} × 200/s, p50 ${row.p50?.toFixed(0)} p99 ${row.p99?.toFixed(0)} ms; ` +
          `others ${JSON.stringify(Object.fromEntries(Object.entries(row.other).map(([s, o]) => [s, o.count])))}; listen overflows ${row.listenOverflows}`)
      } finally {
        await proxy.proc.stop()
      }
      // The origin works through whatever the last row left in its queue before the next one.
      await sleep(dryRun ? 100 : 3000)
    }
  } finally {
    await origin.close()
  }
  results.adaptive = out
}

const num = n => n == null ? '–' : Math.round(n).toLocaleString('en-US')
const ms = n => n == null ? '–' : n.toFixed(0)

export function adaptiveTable (a) {
  return {
    title: `6. A drowning origin (lab: one request at a time, ${a.serviceMs} ms each, backlog ${a.backlog}: ${1000 / a.serviceMs} req/s), offered ${a.rate} req/s open-loop for ${a.seconds} s, each request on a new connection; connect timeout 3 s, response timeout 5 s`,
    header: ['target', 'offered', '200/s (goodput: 200s / s until the last one)', '200 p50 / p99 ms', 'other statuses: count (p50 / max ms)', `503 later than queue_timeout + 100 ms`, '522/524 after 3 s', 'ListenOverflows (machine)'],
    rows: a.rows.map(r => [
      r.target, num(r.offered), r.goodput.toFixed(1), `${ms(r.p50)} / ${ms(r.p99)}`,
      Object.entries(r.other).map(([s, o]) => `${s === '0' ? 'no answer' : s}: ${o.count} (${ms(o.p50)} / ${ms(o.max)})`).join(', ') || '–',
      num(r.shedLate), num(r.timeoutsAfterSettle), num(r.listenOverflows)
    ])
  }
}

export function adaptiveTargets (a, add) {
  const adaptive = a.rows.find(r => /adaptive/.test(r.target))
  if (adaptive === undefined) return
  add('drowning origin, adaptive_concurrency: every shed 503 within queue_timeout + 100 ms', `${num(adaptive.shedLate)} later`, adaptive.shedLate === 0)
  add('drowning origin, adaptive_concurrency: no 522/524 after the first 3 s', `${num(adaptive.timeoutsAfterSettle)}`, adaptive.timeoutsAfterSettle === 0)
  const plain = a.rows.find(r => r !== adaptive)
  if (plain !== undefined) add('drowning origin: goodput with adaptive_concurrency vs defaults (HAProxy oracle: in the drowning section)', `${adaptive.goodput.toFixed(1)} vs ${plain.goodput.toFixed(1)} × 200/s`, null)
}
