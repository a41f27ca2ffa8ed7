#!/usr/bin/env node
// `npm run bench`: highproxy against peer proxies on loopback, and the 522 storm.
//
//   npm run bench                      full run (≤ 5 minutes)
//   npm run bench -- --quick           about a minute
//   npm run bench -- --quick --dry-run start and stop the harness, one request each, no load
//
// Every server runs in its own process; the load generator (autocannon) runs here.
// Results: a table on stdout, bench/results/<date>.json and bench/results/<date>.md.

import { execFileSync, fork } from 'node:child_process'
import { existsSync, mkdirSync, openSync, closeSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync, mkdtempSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { setTimeout as sleep } from 'node:timers/promises'
import { HOST, accountChild, busyCores, freePort, noiseMeter, get, rssBytes, start, startedPids, stopAll, waitHttp } from './lib/procs.mjs'
import { load, median, percentile } from './lib/load.mjs'
import { evaluateTargets, markdown, printTables } from './lib/report.mjs'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const CLI = path.join(ROOT, 'dist', 'cli.js')
const SERVERS = path.join(ROOT, 'bench', 'servers')
const NODE = process.execPath

const USAGE = `Usage: npm run bench -- [options]

  --quick             about a minute (short rounds, one storm round)
  --dry-run           start and stop the harness, one request per server, no load
  --rounds <n>        rounds per comparison (default 3; at least 3 for a median)
  --duration <s>      seconds per healthy-path round (default 5, quick 1.25)
  --connections <n>   connections of the load generator (default 50)
  --only <list>       sections to run: healthy,workers,storm,errors (default all)
  --no-write          do not write bench/results/
  --help              this text
`

const { values: flags } = (() => {
  try {
    return parseArgs({
      options: {
        quick: { type: 'boolean' },
        'dry-run': { type: 'boolean' },
        rounds: { type: 'string' },
        duration: { type: 'string' },
        connections: { type: 'string' },
        only: { type: 'string' },
        'no-write': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' }
      },
      strict: true
    })
  } catch (err) {
    process.stderr.write(`bench: ${err.message.split('\n')[0]}\n\n${USAGE}`)
    process.exit(2)
  }
})()
if (flags.help) { process.stdout.write(USAGE); process.exit(0) }

const quick = flags.quick === true
const dryRun = flags['dry-run'] === true
const positive = (name, value, fallback) => {
  if (value === undefined) return fallback
  const n = Number(value)
  if (!Number.isFinite(n) || n <= 0) { process.stderr.write(`bench: --${name} must be a positive number\n`); process.exit(2) }
  return n
}
const SECTIONS = ['healthy', 'workers', 'storm', 'errors']
const only = flags.only === undefined ? SECTIONS : flags.only.split(',').map(s => s.trim())
for (const s of only) if (!SECTIONS.includes(s)) { process.stderr.write(`bench: unknown section "${s}" (${SECTIONS.join(', ')})\n`); process.exit(2) }

const P = {
  mode: dryRun ? 'dry-run' : quick ? 'quick' : 'full',
  connections: Math.round(positive('connections', flags.connections, 50)),
  rounds: Math.round(positive('rounds', flags.rounds, 3)),
  duration: positive('duration', flags.duration, quick ? 1.25 : 5),
  warmup: quick ? 0.75 : 2,
  stormConcurrency: 2000,
  stormTimeout: '2s',
  stormTimeoutMs: 2000,
  stormRounds: quick ? 1 : 3,
  // The healthy load during a wave starts once all 2,000 are pending and lasts past
  // the moment their connect timers fire.
  stormLoadSeconds: 3,
  errorSeconds: quick ? 1 : 4,
  workersSeconds: quick ? 1.25 : 5
}

const log = msg => process.stderr.write(`bench: ${msg}\n`)

// ---------------------------------------------------------------------------------
// Starting servers

function checkBuild () {
  if (!existsSync(CLI)) {
    log(`${path.relative(ROOT, CLI)} is missing: run \`npm run build\` first`)
    process.exit(2)
  }
  const built = statSync(CLI).mtimeMs
  const newer = []
  const walk = dir => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name)
      if (e.isDirectory()) walk(p)
      else if (p.endsWith('.ts') && statSync(p).mtimeMs > built) newer.push(path.relative(ROOT, p))
    }
  }
  try { walk(path.join(ROOT, 'src')) } catch {}
  if (newer.length > 0) log(`warning: dist/ is older than ${newer.slice(0, 3).join(', ')}${newer.length > 3 ? '…' : ''}: run \`npm run build\` to bench the current source`)
}

async function startOrigin () {
  const port = await freePort()
  const proc = start('origin', NODE, [path.join(SERVERS, 'origin.mjs'), String(port)])
  await waitHttp(proc, port)
  return { proc, port, url: `http://${HOST}:${port}` }
}

/** highproxy as shipped: JSON logs on stdout at the default level (info), stdout to /dev/null. */
let helpText = null
const highproxyHelp = () => {
  if (helpText === null) {
    try { helpText = execFileSync(NODE, [CLI, '--help'], { encoding: 'utf8', timeout: 10_000 }) } catch (err) { helpText = String(err.stdout ?? '') }
  }
  return helpText
}

async function startHighproxy (name, args, { stdout = 'ignore', raiseFdLimit = false, readyPath = '/' } = {}) {
  const port = await freePort()
  // A side listener on a fixed default port would collide between runs: give it a free one.
  const extra = /--admin-port\b/.test(highproxyHelp()) ? ['--admin-port', String(await freePort())] : []
  const proc = start(name, NODE, [CLI, ...args, ...extra, '--port', String(port), '--log-format', 'json'], { stdout, raiseFdLimit })
  await waitHttp(proc, port, readyPath)
  return { proc, port }
}

async function startNodeServer (name, file, upstream) {
  const port = await freePort()
  const proc = start(name, NODE, [path.join(SERVERS, file), String(port), upstream])
  await waitHttp(proc, port)
  return { proc, port }
}

function which (cmd) {
  try { return execFileSync('which', [cmd], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() || null } catch { return null }
}

async function startNginx (bin, upstreamPort, tmp) {
  const port = await freePort()
  const dir = mkdtempSync(path.join(tmp, 'nginx-'))
  const conf = path.join(dir, 'nginx.conf')
  writeFileSync(conf, `worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fcgi; uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
  upstream origin { server ${HOST}:${upstreamPort}; keepalive 128; }
  server {
    listen ${HOST}:${port};
    location / { proxy_pass http://origin; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
`)
  const proc = start('nginx', bin, ['-p', dir, '-c', conf])
  await waitHttp(proc, port)
  return { proc, port }
}

async function startHaproxy (bin, upstreamPort, tmp) {
  const port = await freePort()
  const dir = mkdtempSync(path.join(tmp, 'haproxy-'))
  const conf = path.join(dir, 'haproxy.cfg')
  writeFileSync(conf, `global
  maxconn 20000
  nbthread 1
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  option http-keep-alive
frontend bench
  bind ${HOST}:${port}
  default_backend origin
backend origin
  http-reuse always
  server o ${HOST}:${upstreamPort}
`)
  const proc = start('haproxy', bin, ['-db', '-f', conf])
  await waitHttp(proc, port)
  return { proc, port }
}


// ---------------------------------------------------------------------------------
// 1. Healthy path

const CASES = [
  { key: 'small', label: '200 "ok" (2 B)', path: '/' },
  { key: '64k', label: '200, 64 KiB body', path: '/64k' }
]

async function healthy (results, notes, tmp) {
  const origin = await startOrigin()
  const targets = [{ name: 'direct', port: origin.port, proc: origin.proc }]
  const peers = [
    ['highproxy', () => startHighproxy('highproxy', ['--origin', origin.url])],
    ['@fastify/http-proxy', () => startNodeServer('@fastify/http-proxy', 'fastify-http-proxy.mjs', origin.url)],
    ['http-proxy', () => startNodeServer('http-proxy', 'node-http-proxy.mjs', origin.url)]
  ]
  for (const [name, bin, starter] of [['nginx', which('nginx'), startNginx], ['haproxy', which('haproxy'), startHaproxy]]) {
    if (bin === null) notes.push(`${name}: not installed here (\`which ${name}\` found nothing), skipped.`)
    else peers.push([name, () => starter(bin, origin.port, tmp)])
  }
  const started = await Promise.allSettled(peers.map(([, s]) => s()))
  started.forEach((r, i) => {
    const name = peers[i][0]
    if (r.status === 'fulfilled') targets.push({ name, ...r.value })
    else if (name === 'highproxy') throw r.reason
    else notes.push(`${name}: failed to start, skipped (${String(r.reason?.message ?? r.reason).split('\n')[0]}).`)
  })
  // Every target must answer the same thing before it is measured.
  for (const t of targets) {
    for (const c of CASES) {
      const res = await get(t.port, c.path)
      const expected = c.key === 'small' ? 2 : 65536
      if (res.status !== 200 || res.body.length !== expected) throw new Error(`${t.name} ${c.path}: got ${res.status} with ${res.body.length} bytes`)
    }
    t.pid = t.proc.pid
  }
  log(`healthy path: ${targets.map(t => t.name).join(', ')}`)

  const out = []
  for (const c of CASES) {
    const rows = targets.map(t => ({ target: t.name, rounds: [] }))
    if (!dryRun) {
      for (const t of targets) await load({ port: t.port, path: c.path, connections: P.connections, seconds: P.warmup })
      for (let r = 0; r < P.rounds; r++) {
        for (const [i, t] of targets.entries()) {
          const res = await load({ port: t.port, path: c.path, connections: P.connections, seconds: P.duration })
          rows[i].rounds.push(res)
          log(`  ${c.key} round ${r + 1}/${P.rounds} ${t.name}: ${Math.round(res.rps)} req/s, p99 ${res.p99?.toFixed(2)} ms`)
        }
      }
    }
    out.push({ case: c.key, label: c.label, path: c.path, rows: rows.map(summarize) })
  }
  for (const c of out) {
    const direct = c.rows.find(r => r.target === 'direct')
    const hp = c.rows.find(r => r.target === 'highproxy')
    for (const r of c.rows) {
      r.vsDirect = ratio(r.rps, direct?.rps)
      r.vsHighproxy = ratio(r.rps, hp?.rps)
      r.p99Added = r.p99 === null || direct?.p99 == null ? null : r.p99 - direct.p99
    }
  }
  results.healthy = { connections: P.connections, seconds: P.duration, warmup: P.warmup, rounds: P.rounds, cases: out }
  for (const t of targets) await t.proc.stop()
}

const ratio = (a, b) => (a == null || b == null || b === 0 ? null : a / b)

function summarize ({ target, rounds }) {
  return {
    target,
    rps: median(rounds.map(r => r.rps)),
    p50: median(rounds.map(r => r.p50)),
    p99: median(rounds.map(r => r.p99)),
    problems: rounds.reduce((n, r) => n + r.errors + r.timeouts + r.non2xx, 0),
    requests: rounds.reduce((n, r) => n + r.requests, 0),
    rounds: rounds.map(r => ({ rps: r.rps, p50: r.p50, p99: r.p99, p999: r.p999, requests: r.requests, errors: r.errors, timeouts: r.timeouts, non2xx: r.non2xx, statuses: r.statuses }))
  }
}

// ---------------------------------------------------------------------------------
// 2. Workers

async function workers (results) {
  const help = highproxyHelp()
  if (!/--workers\b/.test(help)) {
    results.workers = { available: false, note: 'not available: `highproxy --help` lists no --workers flag' }
    log('workers: not available (no --workers flag)')
    return
  }
  if (dryRun) {
    // Three more highproxy processes would double the dry run's start-up time: the flag is enough.
    results.workers = { available: true, rows: ['highproxy --workers 1', 'highproxy --workers 2'].map(target => summarize({ target, rounds: [] })), ratio: null }
    log('workers: --workers is available (not started in a dry run)')
    return
  }
  const origin = await startOrigin()
  const one = await startHighproxy('highproxy --workers 1', ['--origin', origin.url, '--workers', '1'])
  const two = await startHighproxy('highproxy --workers 2', ['--origin', origin.url, '--workers', '2'])
  const rows = [{ target: 'highproxy --workers 1', rounds: [] }, { target: 'highproxy --workers 2', rounds: [] }]
  if (!dryRun) {
    for (const t of [one, two]) await load({ port: t.port, connections: P.connections, seconds: P.warmup })
    for (let r = 0; r < P.rounds; r++) {
      for (const [i, t] of [one, two].entries()) {
        const res = await load({ port: t.port, connections: P.connections, seconds: P.workersSeconds })
        rows[i].rounds.push(res)
        log(`  workers round ${r + 1}/${P.rounds} ${rows[i].target}: ${Math.round(res.rps)} req/s`)
      }
    }
  }
  const summary = rows.map(summarize)
  results.workers = { available: true, rows: summary, ratio: ratio(summary[1].rps, summary[0].rps) }
  for (const p of [one, two, origin]) await p.proc.stop()
}

// ---------------------------------------------------------------------------------
// 3. The 522 storm

async function storm (results, tmp) {
  const { synDropOrigin } = await import(pathToFileURL(path.join(ROOT, 'dist', 'lab', 'faults.js')).href)
  const origin = await startOrigin()
  const dead = await synDropOrigin()
  try {
    const config = path.join(tmp, 'storm.yaml')
    writeFileSync(config, [
      'routes:',
      // Also set on the route: when this bench was written, the global `timeouts.connect`
      // alone was not applied to routes (their 15 s default won over it).
      `  - { path: /dead, origin: "${dead.url}", strip_prefix: true, connect_timeout: ${P.stormTimeout} }`,
      `  - { path: /, origin: "${origin.url}" }`,
      'timeouts:',
      `  connect: ${P.stormTimeout}`,
      ''
    ].join('\n'))
    // The proxy's log goes to a file here, to read its own view of each 522 afterwards.
    const logFile = path.join(tmp, 'storm-highproxy.log')
    const out = {
      concurrency: P.stormConcurrency,
      timeoutMs: P.stormTimeoutMs,
      loadSeconds: P.stormLoadSeconds,
      rounds: []
    }
    // One wave per round, each round on a fresh proxy: an origin that timed out may be
    // marked down (answered at once for a while), and a wave must find it untouched.
    const rounds = dryRun ? 1 : P.stormRounds
    for (let r = 0; r < rounds; r++) {
      const fd = openSync(logFile, 'a')
      let hp
      try {
        hp = await startHighproxy('highproxy (storm)', ['--config', config], { stdout: fd, raiseFdLimit: true })
      } finally {
        closeSync(fd)
      }
      try {
        out.fdLimit ??= Number(/^Max open files\s+(\d+)/m.exec(readFileSync(`/proc/${hp.proc.pid}/limits`, 'utf8'))?.[1] ?? NaN)
        const check = await get(hp.port, '/')
        if (check.status !== 200) throw new Error(`storm proxy: healthy route answered ${check.status}`)
        if (r === 0) log(`storm: dead origin ${dead.url}, healthy ${origin.url}, proxy fd limit ${out.fdLimit}`)
        if (dryRun) break
        out.rounds.push(await stormRound(hp, r))
      } finally {
        await hp.proc.stop()
      }
    }
    if (dryRun) { results.storm = out; return }
    out.server = serverView(logFile, P.stormTimeoutMs)
    const all = out.rounds.map(r => r.client)
    const lateness = Float64Array.from(out.rounds.flatMap(r => r.lateness)).sort()
    out.client = {
      sent: sum(all.map(c => c.sent)),
      got522: sum(all.map(c => c.got522)),
      timed: lateness.length,
      immediate: sum(all.map(c => c.immediate)),
      lost: sum(all.map(c => c.lost)),
      early: lateness.filter(v => v < 0).length,
      statuses: mergeCounts(all.map(c => c.statuses)),
      lostReasons: mergeCounts(all.map(c => c.lostReasons)),
      reopened: sum(all.map(c => c.reopened)),
      badAnswers: sum(all.map(c => c.badAnswers)),
      latenessMedian: percentile(lateness, 50),
      latenessP99: percentile(lateness, 99),
      latenessMax: lateness.length ? lateness[lateness.length - 1] : null,
      latenessMin: lateness.length ? lateness[0] : null
    }
    for (const r of out.rounds) delete r.lateness
    out.healthyP99NoStorm = median(out.rounds.map(r => r.base.p99))
    out.healthyP99Storm = median(out.rounds.map(r => r.during.p99))
    out.healthyRpsNoStorm = median(out.rounds.map(r => r.base.rps))
    out.healthyRpsStorm = median(out.rounds.map(r => r.during.rps))
    out.healthyProblemsStorm = sum(out.rounds.map(r => r.during.errors + r.during.timeouts + r.during.non2xx))
    out.rssBefore = median(out.rounds.map(r => r.rssBefore))
    out.rssPending = median(out.rounds.map(r => r.rssPending))
    out.rssMax = Math.max(...out.rounds.map(r => r.rssMax ?? 0))
    out.rssPerPendingRounds = out.rounds.map(r => r.rssPending == null || r.rssBefore == null ? null : (r.rssPending - r.rssBefore) / P.stormConcurrency)
    out.rssPerPending = median(out.rssPerPendingRounds)
    results.storm = out
  } finally {
    await dead.close()
    await origin.proc.stop()
  }
}

/** Healthy load without the storm, then one wave of 2,000 dead-route requests under the same load. */
async function stormRound (hp, r) {
  const pid = hp.proc.pid
  const loadOpts = { port: hp.port, connections: P.connections, seconds: P.stormLoadSeconds }
  await load({ ...loadOpts, seconds: P.warmup })
  const base = await load(loadOpts)
  log(`  storm round ${r + 1}/${P.stormRounds} no storm: ${Math.round(base.rps)} req/s, p99 ${base.p99?.toFixed(2)} ms`)
  await sleep(300)
  const round = { base: pick(base), rssBefore: rssBytes(pid) }
  let rssMax = round.rssBefore
  const sampler = setInterval(() => { const v = rssBytes(pid); if (v !== null && v > rssMax) rssMax = v }, 50)
  const client = fork(path.join(ROOT, 'bench', 'lib', 'storm-client.mjs'), [JSON.stringify({
    port: hp.port, path: '/dead/x', concurrency: P.stormConcurrency, timeoutMs: P.stormTimeoutMs, resend: false
  })], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: [] })
  const clientExit = new Promise(resolve => client.once('exit', resolve))
  client.on('error', err => log(`storm client: ${err.message}`))
  const messages = []
  client.on('message', m => messages.push(m))
  const wait = (type, ms) => new Promise((resolve, reject) => {
    const seen = messages.find(m => m.type === type)
    if (seen) { resolve(seen); return }
    const timer = setTimeout(() => reject(new Error(`storm client: no "${type}" message within ${ms} ms`)), ms)
    const onMsg = m => { if (m.type === type) { clearTimeout(timer); client.off('message', onMsg); resolve(m) } }
    client.on('message', onMsg)
    client.once('exit', code => { clearTimeout(timer); reject(new Error(`storm client exited (${code}) before "${type}"`)) })
  })
  try {
    const pending = await wait('pending', 60_000)
    round.pendingAfterMs = pending.ms
    await sleep(300)
    round.rssPending = rssBytes(pid)
    // The healthy load spans the moment the 2,000 connect timers fire and the 522s go out.
    const during = await load(loadOpts)
    round.during = pick(during)
    // In one-wave mode the client may already have sent its result and left.
    if (client.connected) client.send({ type: 'stop' }, () => {})
    const res = await wait('result', P.stormTimeoutMs + 15_000)
    accountChild(client.pid)
    clearInterval(sampler)
    round.rssMax = rssMax
    // An answer long before the timeout did not wait for a connect (e.g. origin marked down).
    const timed = res.lateness.filter(v => v > -P.stormTimeoutMs / 2)
    round.lateness = timed
    const sorted = Float64Array.from(timed).sort()
    round.client = {
      sent: res.sent,
      answered: res.answered,
      lost: res.lost,
      lostReasons: res.lostReasons,
      statuses: res.statuses,
      reopened: res.reopened,
      warmFailures: res.warmFailures,
      badAnswers: res.badAnswers,
      got522: res.lateness.length,
      immediate: res.lateness.length - timed.length,
      early: timed.filter(v => v < 0).length,
      lateness: { median: percentile(sorted, 50), p99: percentile(sorted, 99), max: sorted.length ? sorted[sorted.length - 1] : null, min: sorted.length ? sorted[0] : null }
    }
    log(`  storm round ${r + 1}/${P.stormRounds} storm: healthy ${Math.round(during.rps)} req/s, p99 ${during.p99?.toFixed(2)} ms; ` +
      `${res.sent} sent, ${res.lateness.length} × 522, lost ${res.lost}, lateness p99 ${round.client.lateness.p99?.toFixed(1)} ms`)
    return round
  } finally {
    clearInterval(sampler)
    if (client.exitCode === null) client.kill('SIGKILL')
    await clientExit
  }
}

const pick = r => ({ rps: r.rps, p50: r.p50, p99: r.p99, p999: r.p999, requests: r.requests, errors: r.errors, timeouts: r.timeouts, non2xx: r.non2xx, statuses: r.statuses })
const sum = xs => xs.reduce((a, b) => a + (b ?? 0), 0)
const mergeCounts = list => list.reduce((acc, o) => { for (const [k, v] of Object.entries(o ?? {})) acc[k] = (acc[k] ?? 0) + v; return acc }, {})

/** The proxy's own record of each 522: when its connect timer fired, and the whole request. */
function serverView (file, timeoutMs) {
  const connect = []
  const total = []
  const levels = {}
  let access522 = 0
  let lines = 0
  let unparsable = 0
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (line === '') continue
    lines++
    let rec
    try { rec = JSON.parse(line) } catch { unparsable++; continue }
    levels[rec.level] = (levels[rec.level] ?? 0) + 1
    if (rec.msg === 'origin failure' && rec.edge_status === 522) {
      if (typeof rec.timings?.connect_ms === 'number') connect.push(rec.timings.connect_ms - timeoutMs)
      if (typeof rec.timings?.total_ms === 'number') total.push(rec.timings.total_ms - timeoutMs)
    }
    if (rec.msg === 'access' && rec.status === 522) access522++
  }
  const stats = xs => {
    const s = Float64Array.from(xs).sort()
    return { count: s.length, median: percentile(s, 50), p99: percentile(s, 99), max: s.length ? s[s.length - 1] : null }
  }
  return { lines, unparsable, levels, failures522: connect.length, access522, connectLateness: stats(connect), totalLateness: stats(total) }
}

// ---------------------------------------------------------------------------------
// 4. Error page cost

async function errorPages (results) {
  const refused = await freePort() // bound, then released: nothing listens there
  const hp = await startHighproxy('highproxy (521)', ['--origin', `http://${HOST}:${refused}`])
  const kinds = [
    { key: 'html', accept: 'text/html', type: /^text\/html/ },
    { key: 'json', accept: 'application/json', type: /^application\/(problem\+)?json/ }
  ]
  for (const k of kinds) {
    const res = await get(hp.port, '/', { accept: k.accept })
    k.check = { status: res.status, contentType: res.headers['content-type'], connection: res.headers.connection ?? null, bytes: res.body.length }
    if (res.status !== 521 || !k.type.test(res.headers['content-type'] ?? '')) throw new Error(`521 ${k.key}: got ${res.status} ${res.headers['content-type']}`)
  }
  const rows = kinds.map(k => ({ target: k.key, rounds: [] }))
  if (!dryRun) {
    for (const k of kinds) await load({ port: hp.port, headers: { accept: k.accept }, connections: P.connections, seconds: P.warmup / 2 })
    for (let r = 0; r < P.rounds; r++) {
      for (const [i, k] of kinds.entries()) {
        const res = await load({ port: hp.port, headers: { accept: k.accept }, connections: P.connections, seconds: P.errorSeconds })
        rows[i].rounds.push(res)
        log(`  521 round ${r + 1}/${P.rounds} ${k.key}: ${Math.round(res.rps)} req/s (${Object.entries(res.statuses).map(([s, n]) => `${n}×${s}`).join(', ')})`)
      }
    }
  }
  results.errors = {
    rows: rows.map((row, i) => {
      const s = summarize(row)
      // Here every answer is a 521 by design: count only what is not one.
      s.problems = row.rounds.reduce((n, r) => n + r.errors + r.timeouts + Object.entries(r.statuses).filter(([code]) => code !== '521').reduce((a, [, v]) => a + v, 0), 0)
      return { ...s, accept: kinds[i].accept, check: kinds[i].check }
    })
  }
  await hp.proc.stop()
}

// ---------------------------------------------------------------------------------

function machine () {
  const cpus = os.cpus()
  let commit = null
  try { commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() } catch {}
  const version = name => { try { return JSON.parse(readFileSync(path.join(ROOT, 'node_modules', name, 'package.json'), 'utf8')).version } catch { return null } }
  return {
    cpu: cpus[0]?.model ?? 'unknown',
    cores: cpus.length,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    commit,
    versions: Object.fromEntries(['fastify', '@fastify/reply-from', 'undici', 'pino', '@fastify/http-proxy', 'http-proxy', 'autocannon'].map(n => [n, version(n)]))
  }
}

function stamp (d) {
  const p = n => String(n).padStart(2, '0')
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}-${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`
}

async function main () {
  checkBuild()
  const startedAt = new Date()
  const t0 = performance.now()
  const results = { date: startedAt.toISOString(), mode: P.mode, params: P, machine: machine() }
  const notes = []
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'highproxy-bench-'))
  log(`${P.mode} run: ${P.connections} connections, ${P.rounds} rounds of ${P.duration} s, on ${results.machine.cores} × ${results.machine.cpu}`)
  if (!dryRun) {
    const busy = await busyCores(1000, results.machine.cores)
    results.machine.busyCoresBefore = busy
    if (busy !== null && busy > 0.2) {
      notes.push(`other processes kept ${busy.toFixed(2)} of ${results.machine.cores} cores busy just before this run: numbers are noisier than on an idle machine.`)
      log(`warning: the machine is not idle (${busy.toFixed(2)} cores busy before the run)`)
    }
  }
  const noise = noiseMeter()
  // A section that fails is reported and the others still run; the exit code says so.
  const failures = []
  const sections = { healthy: () => healthy(results, notes, tmp), workers: () => workers(results), storm: () => storm(results, tmp), errors: () => errorPages(results) }
  const runSection = async name => {
    try {
      await sections[name]()
    } catch (err) {
      failures.push({ section: name, error: String(err.stack ?? err) })
      notes.push(`section "${name}" failed: ${String(err.message ?? err).split('\n').slice(0, 2).join(' ')}`)
      log(`section ${name} failed: ${err.stack ?? err}`)
      if (!dryRun) await stopAll()
    }
  }
  try {
    const chosen = SECTIONS.filter(name => only.includes(name))
    // No load in a dry run: the sections' servers may start side by side.
    if (dryRun) await Promise.all(chosen.map(runSection))
    else for (const name of chosen) await runSection(name)
  } finally {
    await stopAll()
    rmSync(tmp, { recursive: true, force: true })
  }
  const cpu = noise()
  results.machine.othersCoresDuring = cpu.othersCores
  results.machine.benchCoresDuring = cpu.oursCores
  if (!dryRun) {
    log(`CPU during the run: bench ${cpu.oursCores.toFixed(2)} cores, other processes ${cpu.othersCores.toFixed(2)} cores`)
    if (cpu.othersCores > 0.1) notes.push(`other processes used ${cpu.othersCores.toFixed(2)} of ${results.machine.cores} cores on average during this run (the bench itself ${cpu.oursCores.toFixed(2)}): numbers are noisier than on an idle machine.`)
  }
  log(`stopped child processes: ${startedPids.join(' ')}`)
  results.failures = failures
  if (!dryRun) {
    const busy = await busyCores(1000, results.machine.cores)
    results.machine.busyCoresAfter = busy
    if (busy !== null && busy > 0.2) notes.push(`other processes kept ${busy.toFixed(2)} cores busy right after this run.`)
  }
  results.seconds = (performance.now() - t0) / 1000
  results.notes = notes
  results.targets = dryRun ? [] : evaluateTargets(results)
  printTables(results, process.stdout)
  if (failures.length > 0) process.exitCode = 1
  if (!dryRun && flags['no-write'] !== true) {
    const dir = path.join(ROOT, 'bench', 'results')
    mkdirSync(dir, { recursive: true })
    const base = path.join(dir, stamp(startedAt))
    writeFileSync(`${base}.json`, JSON.stringify(results, null, 2) + '\n')
    writeFileSync(`${base}.md`, markdown(results))
    log(`wrote ${path.relative(ROOT, base)}.json and .md`)
  }
  log(`done in ${results.seconds.toFixed(1)} s${failures.length ? `; failed: ${failures.map(f => f.section).join(', ')}` : ''}`)
}

await main()
