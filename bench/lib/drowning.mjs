// The "drowning" section: the lab's drowning origin (one request at a time, service_ms
// each, a small listen backlog) offered twice what it can serve, open-loop: new requests
// at a fixed rate, each on a new connection, whatever the answers. Each row puts one
// proxy in front of a fresh origin and reports what the visitors got: the 200s per second
// (goodput), how long the 200s took, every other status with its timing, and the SYNs the
// origin's kernel dropped (ListenOverflows).
//
// Rows are a table (DROWNING_ROWS): a name, the binary it needs (a row whose binary is
// missing is skipped with a note), and how to start it in front of an origin URL. A
// highproxy row is a pool config (highproxyRow), so a row for a new pool option is one
// line.

import http from 'node:http'
import { readFileSync, writeFileSync, mkdtempSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import { HOST, freePort, get, start, waitHttp } from './procs.mjs'
import { percentile } from './load.mjs'
import { startHighproxy, which } from './servers.mjs'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))

/** The issue's setting: 40 req/s of capacity, offered 80, connect timeout 3 s, response timeout 5 s. */
export const DROWNING = { serviceMs: 25, backlog: 8, rate: 80, seconds: 20, connectTimeoutS: 3, responseTimeoutS: 5 }

/** A client gives up on an answer after this long (no proxy row should take longer). */
const CLIENT_TIMEOUT_MS = 15_000

/**
 * A highproxy row: one pool in front of the origin with the section's timeouts, plus
 * `pool` (its keys as in the config file, e.g. { slow_start: '0s' }).
 */
export function highproxyRow (name, pool = {}) {
  return {
    name,
    kind: 'highproxy',
    bin: null,
    start: async ({ originUrl, tmp, extra }) => {
      const file = path.join(mkdtempSync(path.join(tmp, 'drowning-hp-')), 'config.json')
      // JSON is YAML: the config file takes it as it is.
      writeFileSync(file, JSON.stringify({
        pools: [{ name: 'drowning', origins: [originUrl], connect_timeout: `${DROWNING.connectTimeoutS}s`, response_timeout: `${DROWNING.responseTimeoutS}s`, ...pool }],
        routes: [{ pool: 'drowning' }]
      }))
      // Its own admin port (the last --admin-port wins), to ask it what it sees.
      const admin = await freePort()
      const started = await startHighproxy(name, ['--config', file], { extra: [...extra, '--admin-port', String(admin)] })
      return {
        ...started,
        /** The origin's condition as this highproxy sees it now (GET /origins). */
        observe: async () => {
          const res = await get(admin, '/origins')
          const o = JSON.parse(res.body).pools?.[0]?.origins?.[0]
          return o === undefined ? null : { condition: o.condition, evidence: o.evidence }
        }
      }
    }
  }
}

/** nginx in front of the origin, one worker, the section's timeouts (502/504 where highproxy says 522/524). */
function nginxRow () {
  return {
    name: 'nginx',
    kind: 'peer',
    bin: 'nginx',
    start: async ({ originUrl, tmp, bin }) => {
      const port = await freePort()
      const dir = mkdtempSync(path.join(tmp, 'drowning-nginx-'))
      const conf = path.join(dir, 'nginx.conf')
      writeFileSync(conf, `worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log crit;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fcgi; uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
  upstream origin { server ${new URL(originUrl).host}; keepalive 32; }
  server {
    listen ${HOST}:${port} backlog=4096;
    location / {
      proxy_pass http://origin; proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_connect_timeout ${DROWNING.connectTimeoutS}s; proxy_read_timeout ${DROWNING.responseTimeoutS}s;
      proxy_next_upstream off;
    }
  }
}
`)
      const proc = start('nginx (drowning)', bin, ['-p', dir, '-c', conf])
      await waitHttp(proc, port)
      return { proc, port }
    }
  }
}

/** HAProxy told the origin's capacity: one request at a time to it, others queue at most 1 s (then 503). */
function haproxyRow () {
  return {
    name: 'HAProxy (maxconn 1, timeout queue 1s)',
    kind: 'peer',
    bin: 'haproxy',
    start: async ({ originUrl, tmp, bin }) => {
      const port = await freePort()
      const dir = mkdtempSync(path.join(tmp, 'drowning-haproxy-'))
      const conf = path.join(dir, 'haproxy.cfg')
      writeFileSync(conf, `global
  maxconn 4096
  nbthread 1
defaults
  mode http
  timeout connect ${DROWNING.connectTimeoutS}s
  timeout client 30s
  timeout server ${DROWNING.responseTimeoutS}s
  timeout queue 1s
  option http-keep-alive
frontend drowning
  bind ${HOST}:${port}
  default_backend origin
backend origin
  http-reuse always
  server o ${new URL(originUrl).host} maxconn 1
`)
      const proc = start('haproxy (drowning)', bin, ['-db', '-f', conf])
      await waitHttp(proc, port)
      return { proc, port }
    }
  }
}

/** The rows, in the order they run. Add a row here (a highproxy pool option: highproxyRow). */
export const DROWNING_ROWS = [
  highproxyRow('highproxy (defaults)'),
  // Issue 22: learn the origin's limit, queue up to 1 s, shed the rest with 503.
  highproxyRow('highproxy (adaptive_concurrency)', { adaptive_concurrency: true }),
  nginxRow(),
  haproxyRow()
]

/** The kernel's count of SYNs dropped at a full accept queue (what `nstat TcpExtListenOverflows` reads), machine-wide. */
export function listenOverflows () {
  try {
    const lines = readFileSync('/proc/net/netstat', 'utf8').split('\n').filter(l => l.startsWith('TcpExt:'))
    const names = lines[0].split(/\s+/)
    const values = lines[1].split(/\s+/)
    const i = names.indexOf('ListenOverflows')
    return i < 0 ? null : Number(values[i])
  } catch {
    return null
  }
}

/** One request on a new connection: its status (0: no answer in time, or the connection failed) and time. */
function once (port) {
  return new Promise(resolve => {
    const startAt = performance.now()
    const done = (status, error = null) => resolve({ at: startAt, status, ms: performance.now() - startAt, error })
    const req = http.request({ host: HOST, port, path: '/', agent: false, headers: { connection: 'close' } }, res => {
      res.resume()
      res.once('end', () => done(res.statusCode))
      res.once('error', () => done(0, 'body'))
    })
    req.setTimeout(CLIENT_TIMEOUT_MS, () => req.destroy(new Error('client timeout')))
    req.once('error', err => done(0, err.message === 'client timeout' ? 'no answer' : err.code ?? 'error'))
    req.end()
  })
}

/**
 * Open-loop load: `rate` new requests a second for `seconds`, on schedule whatever the
 * answers; resolves when every one has ended. `last` runs once the last one is sent.
 */
async function openLoop (port, rate, seconds, last = async () => null) {
  const total = Math.max(1, Math.round(rate * seconds))
  const t0 = performance.now()
  const pending = []
  for (let i = 0; i < total; i++) {
    const due = t0 + (i * 1000) / rate
    const wait = due - performance.now()
    if (wait > 1) await sleep(wait)
    pending.push(once(port))
  }
  const seen = await last().catch(() => null)
  return { results: await Promise.all(pending), t0, seen }
}

const ms = v => v === null ? '—' : v < 10 ? v.toFixed(1) : v.toFixed(0)

/**
 * What the visitors got, as one row. Goodput is the 200s over the time they took to come:
 * the offered window, or longer when the last 200s came after it.
 */
function summarizeRow (row, results, t0, seconds, overflows) {
  const byStatus = new Map()
  for (const r of results) {
    const key = r.status === 0 ? `no answer (${r.error})` : String(r.status)
    if (!byStatus.has(key)) byStatus.set(key, [])
    byStatus.get(key).push(r.ms)
  }
  const ok = (byStatus.get('200') ?? []).sort((a, b) => a - b)
  const others = [...byStatus.entries()].filter(([k]) => k !== '200').map(([status, times]) => {
    times.sort((a, b) => a - b)
    return { status, count: times.length, p50: percentile(times, 50), max: times[times.length - 1] }
  })
  const lastOk = results.reduce((last, r) => r.status === 200 ? Math.max(last, r.at + r.ms) : last, t0)
  return {
    name: row.name,
    kind: row.kind,
    sent: results.length,
    goodput: ok.length / Math.max(seconds, (lastOk - t0) / 1000),
    ok: ok.length,
    p50: ok.length ? percentile(ok, 50) : null,
    p99: ok.length ? percentile(ok, 99) : null,
    others,
    synsDropped: overflows,
    // For adaptive concurrency's targets (adaptive-targets.mjs): 503s slower than
    // queue_timeout (1 s) + 100 ms, and 522/524 once the limit has settled (after 3 s).
    slow503: results.filter(r => r.status === 503 && r.ms > 1100).length,
    timeoutsAfter3s: results.filter(r => (r.status === 522 || r.status === 524) && r.at - t0 >= 3000).length
  }
}

export function drowningTable (drowning) {
  return {
    title: `Drowning origin (lab: service ${drowning.params.serviceMs} ms, backlog ${drowning.params.backlog}, so ${1000 / drowning.params.serviceMs} req/s), offered ${drowning.params.rate} req/s open-loop ` +
      `${drowning.params.dryRun ? '(dry run: 3 requests)' : `for ${drowning.params.seconds} s`}, new connection each`,
    header: ['target', 'sent', 'goodput req/s', '200 p50 ms', '200 p99 ms', 'other answers (count: p50 / max ms)', 'SYNs dropped', 'origin condition seen'],
    rows: drowning.rows.map(r => r.skipped
      ? [r.name, '—', '—', '—', '—', `skipped: ${r.skipped}`, '—', '—']
      : [r.name, r.sent, r.goodput.toFixed(1), ms(r.p50), ms(r.p99),
          r.others.length === 0 ? 'none' : r.others.map(o => `${o.status} ×${o.count}: ${ms(o.p50)} / ${ms(o.max)}`).join('; '),
          r.synsDropped === null ? 'n/a' : r.backgroundPerSecond ? `${r.synsDropped} (others ${r.backgroundPerSecond}/s before)` : String(r.synsDropped),
          r.condition ? r.condition.condition : '—'])
  }
}

/**
 * Runs every row against a fresh drowning origin of its own (the last row's queue must
 * not drown the next). `dryRun`: three requests per row. Fills results.drowning.
 */
export async function drowningSection ({ results, notes, tmp, extra, log, dryRun, quick }) {
  const { drowningOrigin } = await import(pathToFileURL(path.join(ROOT, 'dist', 'lab', 'faults.js')).href)
  const params = { ...DROWNING, seconds: dryRun ? 3 / DROWNING.rate : quick ? 5 : DROWNING.seconds, dryRun }
  const rows = []
  for (const row of DROWNING_ROWS) {
    const bin = row.bin === null ? null : which(row.bin)
    if (row.bin !== null && bin === null) {
      rows.push({ name: row.name, kind: row.kind, skipped: `${row.bin} is not installed` })
      notes.push(`drowning: ${row.name} skipped, ${row.bin} is not installed (Debian package \`${row.bin}\`).`)
      continue
    }
    const origin = await drowningOrigin({ service_ms: params.serviceMs, backlog: params.backlog })
    let target = null
    try {
      target = await row.start({ originUrl: origin.url, tmp, extra, bin })
      // The counter is machine-wide: what other listeners overflow in the second before is
      // shown beside it, so a busy machine's share can be told apart.
      const quiet = listenOverflows()
      if (!dryRun) await sleep(1000)
      const before = listenOverflows()
      const { results: answers, t0, seen } = await openLoop(target.port, params.rate, params.seconds, target.observe)
      const after = listenOverflows()
      const summary = summarizeRow(row, answers, t0, params.seconds, before === null || after === null ? null : after - before)
      summary.backgroundPerSecond = dryRun || quiet === null || before === null ? null : before - quiet
      summary.condition = seen ?? null
      rows.push(summary)
      log(`  drowning ${row.name}: ${summary.goodput.toFixed(1)} req/s of 200s, p99 ${ms(summary.p99)} ms; ${summary.others.map(o => `${o.status} ×${o.count}`).join(', ') || 'nothing else'}; SYNs dropped ${summary.synsDropped ?? 'n/a'}` +
        (seen ? `; it saw the origin ${seen.condition}${seen.evidence ? ` (${seen.evidence})` : ''}` : ''))
    } finally {
      await target?.proc.stop()
      await origin.close()
    }
    // Let the kernel finish with the last row's sockets before the next origin starts.
    if (!dryRun) await sleep(500)
  }
  results.drowning = { params, rows }
  if (!dryRun) notes.push('drowning: SYNs dropped is the machine-wide TcpExtListenOverflows (nstat) over the row; other listeners that overflow at the same time add to it ("others n/s before": their rate in the second before the row).')
}
