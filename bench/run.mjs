#!/usr/bin/env node
// `npm run bench`: what highproxy costs on loopback, against the Node floor and peer
// proxies, and what a 522 storm does to it.
//
//   npm run bench                      full run (≤ 5 minutes)
//   npm run bench -- --quick           about a minute
//   npm run bench -- --quick --dry-run start every server, one request each, no load
//
// Every server runs in its own process. Throughput: wrk (-t1) when installed, else
// autocannon in this process. Fixed-rate latency and the storm's healthy load:
// lib/rate-client.mjs (evenly spaced requests, every response timed), and the storm
// client, each in its own process.
// Results: tables on stdout, bench/results/<date>.json and bench/results/<date>.md.

import { execFile, execFileSync } from 'node:child_process'
import { promisify } from 'node:util'
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, rmSync, statSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { setTimeout as sleep } from 'node:timers/promises'
import { HOST, busyCores, get, noiseMeter, rssBytes, startedPids, stopAll } from './lib/procs.mjs'
import { load, median, percentile, ratioOfSums, within } from './lib/load.mjs'
import { wrk } from './lib/wrk.mjs'
import { fixedLoad } from './lib/rate.mjs'
import { TICK_US, cpuWindow, processTree } from './lib/cpu.mjs'
import { runStorm } from './lib/storm.mjs'
import { parseVariant, splitArgs } from './lib/args.mjs'
import { CLI, highproxyHelp, nodeBin, otlpSink, startHaproxy, startHighproxy, startNginxProxy, startNginxStorm, startNodeServer, startOrigin, useNode, which } from './lib/servers.mjs'
import { evaluateTargets, markdown, printTables } from './lib/report.mjs'
import { tlsSection } from './lib/tls.mjs'
import { drowningSection } from './lib/drowning.mjs'
import { tracingSideBySide } from './lib/tracing-cost.mjs'
import { toxiproxySection } from './lib/toxiproxy.mjs'

const ROOT = fileURLToPath(new URL('..', import.meta.url))

const USAGE = `Usage: npm run bench -- [options]

  --quick                  about a minute (short rounds, 3 of them)
  --dry-run                start every server, one request each (a 3-request storm), no load
  --only <list>            sections: healthy,latency,workers,storm,errors,tls,drowning,toxiproxy (default all)
  --rounds <n>             interleaved rounds per comparison (default 5, quick 3)
  --duration <s>           seconds per throughput round (default 1.5, quick 0.5)
  --connections <n>        connections of the load generator (default 50)
  --rate <n>               req/s of the fixed-rate latency rows (default 2000)
  --generator <g>          throughput generator: auto (wrk if installed), wrk, autocannon
  --origin-server <o>      auto (nginx if installed), nginx, node
  --storm-concurrency <n>  requests per 522 storm, each on a new connection (default 1000)
  --storm-pending-cap <n>  connections.max_pending_connects of the storm's highproxy (default: its
                           own default, 64; 0: no cap, the behaviour before issue 22)
  --highproxy-args "<a>"   extra arguments appended to every highproxy start
  --variant name="<a>"     one more highproxy row with these extra arguments (repeatable)
  --node <path>            run every Node row (highproxy, the Node floor, the Node peers) on this
                           node binary instead of the one running the bench
  --compare-node <path>    healthy section: also a highproxy row and a Node floor row on this other
                           node binary, measured in the same interleaved rounds (paired ratios)
  --tracing                healthy section: rows with OpenTelemetry tracing on, every request
                           and 1% sampled, exported to a local OTLP receiver (docs/tracing.md);
                           then each side by side with tracing off at the same moment, two
                           copies each at a fixed 1,000 req/s, three trials (about 9 minutes more)
  --baseline <cli.js>      healthy section: one more row, another build of highproxy (e.g. the
                           main branch's dist/cli.js), to pair this build's CPU/req against
  --no-write               do not write bench/results/
  --help                   this text
`

// The values of these two are argument lists that start with "--", which parseArgs
// would take for a flag of its own: glue each to its option (`--opt=value`) first.
const ARG_LISTS = new Set(['--highproxy-args', '--variant'])
const argv = process.argv.slice(2).flatMap((a, i, all) => ARG_LISTS.has(all[i - 1]) && !ARG_LISTS.has(a) ? [] : ARG_LISTS.has(a) && i + 1 < all.length ? [`${a}=${all[i + 1]}`] : [a])

const { values: flags } = (() => {
  try {
    return parseArgs({
      args: argv,
      options: {
        quick: { type: 'boolean' },
        'dry-run': { type: 'boolean' },
        rounds: { type: 'string' },
        duration: { type: 'string' },
        connections: { type: 'string' },
        rate: { type: 'string' },
        generator: { type: 'string' },
        'origin-server': { type: 'string' },
        'storm-concurrency': { type: 'string' },
        'storm-pending-cap': { type: 'string' },
        'highproxy-args': { type: 'string' },
        variant: { type: 'string', multiple: true },
        tracing: { type: 'boolean' },
        baseline: { type: 'string' },
        only: { type: 'string' },
        node: { type: 'string' },
        'compare-node': { type: 'string' },
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

const fail = msg => { process.stderr.write(`bench: ${msg}\n`); process.exit(2) }
const quick = flags.quick === true
const dryRun = flags['dry-run'] === true
const positive = (name, value, fallback) => {
  if (value === undefined) return fallback
  const n = Number(value)
  if (!Number.isFinite(n) || n <= 0) fail(`--${name} must be a positive number`)
  return n
}
const oneOf = (name, value, choices) => {
  if (value === undefined) return choices[0]
  if (!choices.includes(value)) fail(`--${name} is one of ${choices.join(', ')}`)
  return value
}
const SECTIONS = ['healthy', 'latency', 'workers', 'storm', 'errors', 'tls', 'drowning', 'toxiproxy']
const only = flags.only === undefined ? SECTIONS : flags.only.split(',').map(s => s.trim())
for (const s of only) if (!SECTIONS.includes(s)) fail(`unknown section "${s}" (${SECTIONS.join(', ')})`)

let highproxyArgs, variants
try {
  highproxyArgs = splitArgs(flags['highproxy-args'] ?? '')
  variants = (flags.variant ?? []).map(parseVariant)
} catch (err) { fail(err.message) }
if (new Set(variants.map(v => v.name)).size !== variants.length) fail('two --variant rows have the same name')

/** `<bin> --version`, or exit 2 naming the flag. */
const nodeVersion = (flag, bin) => {
  try {
    const v = execFileSync(bin, ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 10_000 }).trim()
    if (/^v\d+\./.test(v)) return v
  } catch {}
  return fail(`--${flag} ${bin}: not a node binary (\`${bin} --version\` failed)`)
}
if (flags.node !== undefined) useNode(path.resolve(flags.node))
const NODE_VERSION = flags.node === undefined ? process.version : nodeVersion('node', nodeBin())
const COMPARE = flags['compare-node'] === undefined ? null : { bin: path.resolve(flags['compare-node']), version: nodeVersion('compare-node', path.resolve(flags['compare-node'])) }

const wrkBin = which('wrk')
const generator = oneOf('generator', flags.generator, ['auto', 'wrk', 'autocannon'])
if (generator === 'wrk' && wrkBin === null) fail('--generator wrk: wrk is not installed')

const P = {
  mode: dryRun ? 'dry-run' : quick ? 'quick' : 'full',
  connections: Math.round(positive('connections', flags.connections, 50)),
  rounds: Math.round(positive('rounds', flags.rounds, quick ? 3 : 5)),
  duration: positive('duration', flags.duration, quick ? 0.3 : 1),
  // Load per target before its first measured round: until its CPU per request settles,
  // at least this many requests, at most this many seconds (see warmUp). Later cases run
  // on processes the first one warmed: a share of it for their own path.
  warmupRequests: quick ? 5000 : 15000,
  // Warm-up storms before the measured ones, until their CPU per request settles.
  stormWarmups: quick ? 2 : 4,
  // Measured storms, each paired with one of the Node storm floor (and, under the healthy
  // load, with one of nginx's). The floor's CPU per storm request alone swings from 110 to
  // 340 µs between storms (the kernel's work on its 1,000 SYN-SENT sockets lands on whichever
  // process runs): with 5 rounds the median ratio read 1.73× and 1.00× in two runs an hour
  // apart; 9 rounds hold it closer, for 40 s more.
  stormRounds: quick ? 1 : 9,
  warmup: quick ? 1.5 : 4,
  laterWarmup: quick ? 0.25 : 0.5,
  generator: generator === 'autocannon' || wrkBin === null ? 'autocannon' : 'wrk',
  originServer: oneOf('origin-server', flags['origin-server'], ['auto', 'nginx', 'node']),
  // Fixed-rate latency: well under every target's saturation, where p99 is not queueing.
  rate: Math.round(positive('rate', flags.rate, 2000)),
  rateSeconds: quick ? 1 : 2,
  rateRounds: quick ? 1 : 2,
  stormConcurrency: Math.round(positive('storm-concurrency', flags['storm-concurrency'], 1000)),
  stormTimeout: '2s',
  stormTimeoutMs: 2000,
  // A request with no answer by the timeout plus this is lost.
  stormGraceMs: 5000,
  // The healthy route's steady load around a storm (the issue's 400 req/s).
  stormLoadRate: 400,
  stormLoadConnections: 20,
  stormQuietSeconds: quick ? 1.5 : 3,
  highproxyArgs,
  variants,
  tracing: flags.tracing === true,
  baseline: flags.baseline === undefined ? null : path.resolve(flags.baseline)
}
if (P.baseline !== null && !existsSync(P.baseline)) fail(`--baseline ${P.baseline}: no such file`)

const T0 = performance.now()
const log = msg => process.stderr.write(`bench: ${((performance.now() - T0) / 1000).toFixed(1).padStart(5)} s  ${msg}\n`)

// ---------------------------------------------------------------------------------
// Shared pieces

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

const hp = (name, args, opts = {}) => startHighproxy(name, args, { ...opts, extra: [...P.highproxyArgs, ...(opts.extra ?? [])] })

/** Saturation load with the chosen generator: same result shape either way. */
const saturate = opts => P.generator === 'wrk' ? wrk(wrkBin, opts) : load(opts)

/**
 * Saturation load on `target` in short runs until `share` of the warm-up's requests are
 * done and its CPU per request has settled (two runs in a row within 10%; on a noisy
 * machine that may not happen, so twice the requests are enough too). Past `share` of the
 * time cap the requests alone are enough; past 3× the cap it stops anyway (and says so).
 * highproxy's CPU per request kept falling for thousands of requests after the Node
 * floor's had settled, and on a contended host a time-only warm-up gave it 1,000.
 */
async function warmUp (target, opts, share = 1) {
  const t0 = performance.now()
  const soft = t0 + P.warmup * share * 1000
  const hard = t0 + 3 * P.warmup * share * 1000
  const want = P.warmupRequests * share
  let done = 0
  let last = null
  for (;;) {
    const window = cpuWindow([target.proc.pid])
    const res = await saturate({ ...opts, port: target.port, seconds: 0.4 })
    const cpu = res.requests > 0 ? window()[0] / res.requests : null
    done += res.requests
    const settled = last !== null && cpu !== null && Math.abs(cpu - last) <= 0.1 * last
    last = cpu
    const now = performance.now()
    const enough = done >= want && (settled || done >= 2 * want || now >= soft)
    if (enough || now >= hard) {
      if (done < want) warmupShort.push(`${target.name ?? target.proc.name} ${done}`)
      return { requests: done, cpuUs: cpu }
    }
  }
}

/** Targets whose warm-up hit the hard cap before its requests, for the notes. */
const warmupShort = []

const pick = r => ({ rps: r.rps, p50: r.p50, p99: r.p99, p999: r.p999, requests: r.requests, errors: r.errors, timeouts: r.timeouts, non2xx: r.non2xx, statuses: r.statuses, ...(r.queued === undefined ? {} : { queued: r.queued }) })
const sum = xs => xs.reduce((a, b) => a + (b ?? 0), 0)
const ratio = (a, b) => (a == null || b == null || b === 0 ? null : a / b)
/** Median over rounds of a per-round ratio a[r] / b[r]: the two were measured side by side. */
const pairedRatio = (a, b) => median(a.map((r, i) => ratio(r, b[i])))
const fdCount = pid => { try { return readdirSync(`/proc/${pid}/fd`).length } catch { return null } }

/**
 * One measured round: CPU of the target's process tree (and of the origin's) around the
 * load, divided by the requests it completed.
 */
async function measured (target, origin, run) {
  const window = cpuWindow([target.proc.pid, origin.proc.pid])
  const res = await run()
  const [cpu, originCpu] = window()
  const per = us => res.requests > 0 ? us / res.requests : null
  return { ...pick(res), cpuUs: per(cpu), originCpuUs: target.proc.pid === origin.proc.pid ? null : per(originCpu) }
}

/** Median figures of a row's rounds, and its CPU paired round by round with `yardsticks`. */
function summarize (name, rounds, yardsticks = {}) {
  const col = k => rounds.map(r => r[k])
  const out = {
    target: name,
    rps: median(col('rps')),
    p50: median(col('p50')),
    p99: median(col('p99')),
    p999: median(col('p999')),
    cpuUs: median(col('cpuUs')),
    originCpuUs: median(col('originCpuUs')),
    requests: sum(col('requests')),
    problems: rounds.reduce((n, r) => n + r.errors + r.timeouts + r.non2xx, 0),
    rounds
  }
  for (const [key, ys] of Object.entries(yardsticks)) out[key] = ys === undefined ? null : pairedRatio(col('cpuUs'), ys.map(r => r.cpuUs))
  return out
}

// ---------------------------------------------------------------------------------
// 1 + 2. Healthy path (saturation) and fixed-rate latency, on one set of targets

const CASES = [
  { key: 'small', label: '200 "ok" (2 B)', path: '/', bytes: 2 },
  { key: '64k', label: '200, 64 KiB body', path: '/64k', bytes: 65536 }
]
const FLOOR = 'node floor'
const FLOOR_LOG = 'node floor + pino line'

const REUSE_ALWAYS = 'highproxy (reuse: always)'

const TRACING_ALL = 'highproxy (tracing 100%)'
const TRACING_1 = 'highproxy (tracing 1%)'
const BASELINE = 'highproxy (baseline)'
// --tracing with --baseline: the baseline build traced the same way, so that the two
// builds' tracing is paired round by round (what tracing changes in one build against the
// other, which a loaded machine's swings between rounds hide in the × highproxy ratios).
const BASELINE_TRACING = { [TRACING_ALL]: 'highproxy (baseline, tracing 100%)', [TRACING_1]: 'highproxy (baseline, tracing 1%)' }

/** A config that turns tracing on at `ratio`, exporting to the local sink. */
function tracingConfig (tmp, sink, ratio) {
  const file = path.join(tmp, `tracing-${ratio}.yaml`)
  writeFileSync(file, `tracing:\n  enabled: true\n  endpoint: ${sink}\n  sampler: traceidratio\n  sampler_arg: ${ratio}\n`)
  return file
}

function reuseAlwaysConfig (tmp) {
  const file = path.join(tmp, 'reuse-always.yaml')
  writeFileSync(file, 'connections:\n  reuse: always\n')
  return file
}

async function startTargets (origin, notes, tmp) {
  const targets = [{ name: 'direct', kind: 'direct', port: origin.port, proc: origin.proc }]
  const starters = [
    [FLOOR, 'floor', () => startNodeServer(FLOOR, 'node-floor.mjs', origin.url)],
    [FLOOR_LOG, 'floor', () => startNodeServer(FLOOR_LOG, 'node-floor.mjs', origin.url, ['--log'])],
    ['highproxy', 'highproxy', () => hp('highproxy', ['--origin', origin.url])],
    // What the default reuse policy (never: origin connections are not shared across
    // client connections) costs against nginx's and Envoy's behaviour.
    [REUSE_ALWAYS, 'highproxy', () => hp(REUSE_ALWAYS, ['--origin', origin.url, '--config', reuseAlwaysConfig(tmp)])],
    ...P.variants.map(v => [`highproxy (${v.name})`, 'highproxy', () => hp(`highproxy (${v.name})`, ['--origin', origin.url], { extra: v.args })]),
    // --compare-node: the same two rows on another node binary, in the same rounds.
    ...(COMPARE === null ? [] : [
      [`${FLOOR} @ node ${COMPARE.version}`, 'floor', () => startNodeServer(`${FLOOR} @ node ${COMPARE.version}`, 'node-floor.mjs', origin.url, [], { bin: COMPARE.bin })],
      [`highproxy @ node ${COMPARE.version}`, 'highproxy', () => hp(`highproxy @ node ${COMPARE.version}`, ['--origin', origin.url], { bin: COMPARE.bin })]
    ]),
    // Tracing's cost (issue 25): on for every request, and for 1%, each exporting to an
    // OTLP receiver on loopback (its own process: its CPU is not highproxy's).
    ...(P.tracing
      ? [TRACING_ALL, TRACING_1].map((name, i) => [name, 'highproxy', async () => {
          // The sink is stopped with every other process the bench started, at its end.
          const sink = await otlpSink()
          return hp(name, ['--origin', origin.url, '--config', tracingConfig(tmp, sink.url, i === 0 ? 1 : 0.01)])
        }])
      : []),
    ...(P.baseline === null ? [] : [[BASELINE, 'highproxy', () => hp(BASELINE, ['--origin', origin.url], { cli: P.baseline })]]),
    ...(P.baseline === null || !P.tracing
      ? []
      : [TRACING_ALL, TRACING_1].map((own, i) => [BASELINE_TRACING[own], 'highproxy', async () => {
          const sink = await otlpSink()
          return hp(BASELINE_TRACING[own], ['--origin', origin.url, '--config', tracingConfig(tmp, sink.url, i === 0 ? 1 : 0.01)], { cli: P.baseline })
        }])),
    ['@fastify/http-proxy', 'peer', () => startNodeServer('@fastify/http-proxy', 'fastify-http-proxy.mjs', origin.url)],
    ['http-proxy', 'peer', () => startNodeServer('http-proxy', 'node-http-proxy.mjs', origin.url)]
  ]
  for (const [name, bin, starter] of [['nginx', which('nginx'), startNginxProxy], ['haproxy', which('haproxy'), startHaproxy]]) {
    if (bin === null) notes.push(`${name}: not installed here (\`which ${name}\` found nothing), skipped.`)
    else starters.push([name, 'peer', () => starter(bin, origin.port, tmp)])
  }
  const started = await Promise.allSettled(starters.map(([, , s]) => s()))
  started.forEach((r, i) => {
    const [name, kind] = starters[i]
    if (r.status === 'fulfilled') targets.push({ name, kind, ...r.value })
    else if (kind !== 'peer') throw r.reason // highproxy and the floor are what the bench is for
    else notes.push(`${name}: failed to start, skipped (${String(r.reason?.message ?? r.reason).split('\n')[0]}).`)
  })
  // Every target must answer the same thing before it is measured.
  for (const t of targets) {
    for (const c of CASES) {
      const res = await get(t.port, c.path)
      if (res.status !== 200 || res.body.length !== c.bytes) throw new Error(`${t.name} ${c.path}: got ${res.status} with ${res.body.length} bytes`)
    }
    t.processes = processTree(t.proc.pid).length
  }
  log(`targets (origin ${origin.kind}): ${targets.map(t => `${t.name}${t.processes > 1 ? ` [${t.processes} processes]` : ''}`).join(', ')}`)
  return targets
}

async function paths (results, notes, ctx, { throughput, latency }) {
  const origin = await ctx.origin()
  const targets = await startTargets(origin, notes, ctx.tmp)
  try {
    if (throughput) results.healthy = await saturation(targets, origin)
    if (latency) results.latency = await fixedRate(targets, origin, { warm: throughput })
  } finally {
    for (const t of targets) if (t.kind !== 'direct') await t.proc.stop()
  }
  // Tracing's cost once more, its configurations side by side at the same moment (table 1c).
  if (throughput && P.tracing) {
    results.tracingCost = await tracingSideBySide({
      origin, tmp: ctx.tmp, log, start: hp,
      params: { trials: quick ? 1 : 3, copies: 2, rate: 1000, connections: 20, seconds: quick ? 2 : 5, rounds: quick ? 3 : 9, warmupSeconds: quick ? 5 : 30, dryRun }
    })
  }
}

async function saturation (targets, origin) {
  const cases = []
  for (const [ci, c] of CASES.entries()) {
    const rounds = targets.map(() => [])
    const opts = { path: c.path, connections: P.connections }
    if (!dryRun) {
      // Later cases run on processes the first one warmed: a shorter warm-up for their own path.
      for (const t of targets) {
        const w = await warmUp(t, opts, ci === 0 ? 1 : P.laterWarmup)
        log(`  ${c.key} warm-up ${t.name}: ${w.requests} requests, last ${w.cpuUs?.toFixed(1)} µs CPU/req`)
      }
      for (let r = 0; r < P.rounds; r++) {
        for (const [i, t] of targets.entries()) {
          const m = await measured(t, origin, () => saturate({ ...opts, port: t.port, seconds: P.duration }))
          rounds[i].push(m)
          log(`  ${c.key} round ${r + 1}/${P.rounds} ${t.name}: ${Math.round(m.rps)} req/s, ${m.cpuUs?.toFixed(1)} µs CPU/req, p99 ${m.p99?.toFixed(2)} ms`)
        }
      }
    }
    const floor = rounds[targets.findIndex(t => t.name === FLOOR)]
    const floorLog = rounds[targets.findIndex(t => t.name === FLOOR_LOG)]
    // Highproxy's other rows (tracing, a baseline build) read against the default row as well.
    const own = rounds[targets.findIndex(t => t.name === 'highproxy')]
    const rows = targets.map((t, i) => ({ ...summarize(t.name, rounds[i], { xFloor: floor, xFloorLog: floorLog, xHighproxy: own }), kind: t.kind, processes: t.processes }))
    const direct = rows.find(r => r.target === 'direct')
    for (const r of rows) r.vsDirect = ratio(r.rps, direct?.rps)
    // This build's tracing over the baseline build's, the same sampling, round by round.
    for (const [own, theirs] of Object.entries(BASELINE_TRACING)) {
      const [a, b] = [own, theirs].map(name => targets.findIndex(t => t.name === name))
      if (a >= 0 && b >= 0) rows[a].xBaselineTraced = pairedRatio(rounds[a].map(m => m.cpuUs), rounds[b].map(m => m.cpuUs))
    }
    cases.push({ case: c.key, label: c.label, path: c.path, rows })
  }
  return { generator: P.generator, origin: origin.kind, connections: P.connections, seconds: P.duration, warmup: { requests: P.warmupRequests, maxSeconds: P.warmup }, rounds: P.rounds, cases }
}

async function fixedRate (targets, origin, { warm }) {
  const rounds = targets.map(() => [])
  const opts = { path: '/', connections: P.connections, rate: P.rate }
  if (!dryRun) {
    // Targets not yet warmed by the saturation rounds get the same warm-up first.
    if (!warm) for (const t of targets) await warmUp(t, { path: '/', connections: P.connections })
    else if (!quick) for (const t of targets) await fixedLoad({ ...opts, port: t.port, seconds: 0.3 }) // back from 64 KiB to the small path
    for (let r = 0; r < P.rateRounds; r++) {
      for (const [i, t] of targets.entries()) {
        const m = await measured(t, origin, () => fixedLoad({ ...opts, port: t.port, seconds: P.rateSeconds }))
        rounds[i].push(m)
        log(`  ${P.rate} req/s round ${r + 1}/${P.rateRounds} ${t.name}: p50 ${m.p50?.toFixed(2)} p99 ${m.p99?.toFixed(2)} p99.9 ${m.p999?.toFixed(2)} ms, ${m.cpuUs?.toFixed(1)} µs CPU/req`)
      }
    }
  }
  const direct = rounds[0]
  const rows = targets.map((t, i) => {
    const row = { ...summarize(t.name, rounds[i]), kind: t.kind }
    // Added latency paired round by round, like the CPU ratios.
    row.p99Added = t.kind === 'direct' ? null : median(rounds[i].map((m, r) => m.p99 == null || direct[r]?.p99 == null ? null : m.p99 - direct[r].p99))
    row.p999Added = t.kind === 'direct' ? null : median(rounds[i].map((m, r) => m.p999 == null || direct[r]?.p999 == null ? null : m.p999 - direct[r].p999))
    return row
  })
  return { rate: P.rate, connections: P.connections, seconds: P.rateSeconds, rounds: P.rateRounds, origin: origin.kind, generator: 'bench/lib/rate-client.mjs', rows }
}

// ---------------------------------------------------------------------------------
// 3. Workers

async function workers (results, ctx) {
  if (!/--workers\b/.test(await highproxyHelp())) {
    results.workers = { available: false, note: 'not available: `highproxy --help` lists no --workers flag' }
    log('workers: not available (no --workers flag)')
    return
  }
  if (dryRun) {
    // Three more processes would slow the dry run down: the flag is enough.
    results.workers = { available: true, rows: ['highproxy --workers 1', 'highproxy --workers 2'].map(name => summarize(name, [])), ratio: null }
    log('workers: --workers is available (not started in a dry run)')
    return
  }
  const origin = await ctx.origin()
  const procs = [
    { name: 'highproxy --workers 1', ...await hp('highproxy --workers 1', ['--origin', origin.url, '--workers', '1']) },
    { name: 'highproxy --workers 2', ...await hp('highproxy --workers 2', ['--origin', origin.url, '--workers', '2']) }
  ]
  try {
    for (const t of procs) t.processes = processTree(t.proc.pid).length
    const rounds = procs.map(() => [])
    const opts = { path: '/', connections: P.connections }
    // Each worker needs its own warm-up: --workers 2 gets twice the cap (full mode).
    for (const [i, t] of procs.entries()) await warmUp(t, opts, quick ? 1 : i + 1)
    for (let r = 0; r < P.rounds; r++) {
      for (const [i, t] of procs.entries()) {
        const m = await measured(t, origin, () => saturate({ ...opts, port: t.port, seconds: P.duration }))
        rounds[i].push(m)
        log(`  workers round ${r + 1}/${P.rounds} ${t.name}: ${Math.round(m.rps)} req/s, ${m.cpuUs?.toFixed(1)} µs CPU/req`)
      }
    }
    const rows = procs.map((t, i) => ({ ...summarize(t.name, rounds[i], { xOne: rounds[0] }), processes: t.processes }))
    results.workers = { available: true, generator: P.generator, rows, ratio: pairedRatio(rounds[1].map(r => r.rps), rounds[0].map(r => r.rps)) }
  } finally {
    for (const t of procs) await t.proc.stop()
  }
}

// ---------------------------------------------------------------------------------
// 4. The 522 storm

/** The proxy's own record of each 522 (its log from `offset` on): when its connect timer fired, and the whole request. */
function serverView (file, offset, timeoutMs) {
  const connect = []
  const total = []
  let access522 = 0
  let lines = 0
  let text = ''
  try {
    const fd = openSync(file, 'r')
    const size = statSync(file).size
    const buf = Buffer.alloc(Math.max(0, size - offset))
    readSync(fd, buf, 0, buf.length, offset)
    closeSync(fd)
    text = buf.toString('utf8')
  } catch {}
  for (const line of text.split('\n')) {
    if (line === '') continue
    lines++
    let rec
    try { rec = JSON.parse(line) } catch { continue }
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
  return { lines, failures522: connect.length, access522, connectLateness: stats(connect), totalLateness: stats(total) }
}

const logSize = file => { try { return statSync(file).size } catch { return 0 } }

/** The healthy route's steady load (the issue's 400 req/s), every response timed. */
const steady = (port, seconds) => fixedLoad({ port, path: '/', connections: P.stormLoadConnections, rate: P.stormLoadRate, seconds, keepTimes: true })

/**
 * One storm on a running proxy. Readings: the proxy's CPU from just before the storm is
 * fired to the moment its last answer is in, VmRSS and open fds before and at 3/4 of
 * the timeout (all pending), all of the whole process tree (so --workers counts); with
 * `withLoad` the healthy route's latency for the responses that completed inside that
 * window.
 */
/**
 * The most sockets of this machine in SYN-SENT toward `port` at once, sampled every 100 ms
 * until stopped: the connects nobody answered, i.e. the SYNs sent into the dead origin's
 * full accept queue (issue 22: ≤ connections.max_pending_connects).
 */
const ssRun = promisify(execFile)

function synSentWatch (port) {
  let max = 0
  let on = true
  const loop = (async () => {
    while (on) {
      try {
        const out = await ssRun('ss', ['-Htn', 'state', 'syn-sent', 'dst', `${HOST}:${port}`], { encoding: 'utf8', maxBuffer: 16 << 20 }).then(r => r.stdout)
        const n = out.split('\n').filter(l => l.trim() !== '').length
        if (n > max) max = n
      } catch { return }
      await sleep(100)
    }
  })()
  return async () => { on = false; await loop; return max }
}

async function stormWave (target, { concurrency = P.stormConcurrency, withLoad = false, logFile = null, synPort = null } = {}) {
  const pid = target.proc.pid
  const syns = synPort === null ? null : synSentWatch(synPort)
  const offset = logFile === null ? 0 : logSize(logFile)
  const lead = 300
  const loading = withLoad ? steady(target.port, (lead + P.stormTimeoutMs + 1500) / 1000) : null
  if (withLoad) await sleep(lead)
  let cpu
  // Summed over the tree: with --workers the pending requests are in the workers.
  const reading = () => {
    const tree = processTree(pid)
    return { rss: sum(tree.map(p => rssBytes(p.pid))), fds: sum(tree.map(p => fdCount(p.pid))) }
  }
  const r = await runStorm({
    port: target.port,
    path: '/dead/x',
    concurrency,
    timeoutMs: P.stormTimeoutMs,
    graceMs: P.stormGraceMs,
    beforeFire: () => { cpu = cpuWindow([pid]); return reading() },
    pending: [{ afterMs: P.stormTimeoutMs * 0.75, fn: reading }],
    afterLast: () => cpu()[0]
  })
  const synSentMax = syns === null ? null : await syns()
  const pending = r.readings[0] ?? {}
  const out = {
    client: r.summary,
    cpuUs: r.after,
    cpuPerRequest: r.after / concurrency,
    rssBefore: r.before.rss,
    rssPending: pending.rss ?? null,
    rssPerPending: r.before.rss == null || pending.rss == null ? null : (pending.rss - r.before.rss) / concurrency,
    // Each pending request holds its client socket and its dial: 2 fds.
    pendingSeen: r.before.fds == null || pending.fds == null ? null : (pending.fds - r.before.fds) / 2,
    synSentMax
  }
  if (loading !== null) {
    const res = await loading
    const during = within(res.raw, r.firedAt, r.lastAnswerAt ?? r.firedAt)
    out.healthyDuring = { count: during.length, p50: percentile(during, 50), p99: percentile(during, 99), max: during.length ? during[during.length - 1] : null, errors: res.errors + res.timeouts + res.non2xx }
  }
  if (logFile !== null) {
    await sleep(200) // the proxy gathers log writes for up to 50 ms
    out.server = serverView(logFile, offset, P.stormTimeoutMs)
  }
  const c = out.client
  log(`  storm: ${c.sent} sent, ${c.got522} × 522, ${c.early} early, ${c.lost} lost; lateness p50 ${c.lateness.median?.toFixed(0)} p99 ${c.lateness.p99?.toFixed(0)} max ${c.lateness.max?.toFixed(0)} ms; ` +
    `${out.cpuPerRequest.toFixed(0)} µs CPU/request${out.healthyDuring ? `; healthy p99 ${out.healthyDuring.p99?.toFixed(2)} ms` : ''}` +
    `${synSentMax === null ? '' : `; at most ${synSentMax} SYN-SENT toward the origin`}`)
  return out
}

async function storm (results, ctx) {
  const { synDropOrigin } = await import(pathToFileURL(path.join(ROOT, 'dist', 'lab', 'faults.js')).href)
  const origin = await ctx.origin()
  const dead = await synDropOrigin()
  const out = {
    concurrency: P.stormConcurrency,
    timeoutMs: P.stormTimeoutMs,
    loadRate: P.stormLoadRate,
    loadConnections: P.stormLoadConnections,
    origin: origin.kind,
    // connections.max_pending_connects (issue 22): the SYNs highproxy may have out; 64 by default.
    pendingCap: flags['storm-pending-cap'] === undefined ? 64 : Number(flags['storm-pending-cap'])
  }
  if (!(Number.isInteger(out.pendingCap) && out.pendingCap >= 0)) throw new Error(`--storm-pending-cap: a whole number, got ${flags['storm-pending-cap']}`)
  const synPort = Number(new URL(dead.url).port)
  try {
    const config = path.join(ctx.tmp, 'storm.yaml')
    // /dead is a route with its own single origin: passive health is off for those, so
    // the warm-up storm cannot get it marked down (a down origin is answered at once,
    // and the measured storm would wait for nothing). "answered at once" checks it.
    writeFileSync(config, [
      'routes:',
      `  - { path: /dead, origin: "${dead.url}", strip_prefix: true, connect_timeout: ${P.stormTimeout} }`,
      `  - { path: /, origin: "${origin.url}" }`,
      'timeouts:',
      `  connect: ${P.stormTimeout}`,
      'connections:',
      `  max_pending_connects: ${out.pendingCap}`,
      ''
    ].join('\n'))
    // The proxy's log goes to a file here, to read its own view of each 522 afterwards.
    const logFile = path.join(ctx.tmp, 'storm-highproxy.log')
    const startStormProxy = async (name, args) => {
      const fd = openSync(logFile, 'a')
      try { return await hp(name, ['--config', config, ...args], { stdout: fd, raiseFdLimit: true }) } finally { closeSync(fd) }
    }
    const one = await startStormProxy('highproxy (storm)', [])
    // The yardsticks: the least Node does for such a request (bench/servers/storm-floor.mjs),
    // stormed the same way, so "CPU per storm request" reads against what Node itself costs;
    // and nginx with the same two routes, for the storm's lateness and the healthy route.
    const floor = await startNodeServer('storm floor', 'storm-floor.mjs', dead.url, [String(P.stormTimeoutMs)])
    const nginxBin = which('nginx')
    const nginx = nginxBin === null ? null : await startNginxStorm(nginxBin, dead.url, Number(new URL(origin.url).port), P.stormTimeoutMs, ctx.tmp)
    try {
      out.fdLimit = Number(/^Max open files\s+(\d+)/m.exec(readFileSync(`/proc/${one.proc.pid}/limits`, 'utf8'))?.[1] ?? NaN)
      const check = await get(one.port, '/')
      if (check.status !== 200) throw new Error(`storm proxy: healthy route answered ${check.status}`)
      log(`storm: dead origin ${dead.url}, healthy ${origin.url} (${origin.kind}), ${P.stormConcurrency} per storm, proxy fd limit ${out.fdLimit}`)
      if (dryRun) {
        // A storm of three: the client, the route and the timings work, in about 2 s.
        out.dry = (await stormWave(one, { concurrency: 3 })).client
        results.storm = out
        return
      }
      out.warmup = await warmUpStorms(one)
      out.floorWarmup = await warmUpStorms(floor)
      // The issue's measure: a storm after warm-up storms, against the floor's, paired round
      // by round (the order alternating), as every CPU figure of the bench. One storm's CPU
      // swings by half between storms on this machine, the floor's as much; the median of
      // the paired ratios is the figure, and the round at the median is the one shown.
      out.rounds = await pairedStorms(one, floor, { logFile }, {}, p => p.a.cpuPerRequest / p.b.cpuPerRequest)
      const mid = atMedian(out.rounds)
      out.clean = mid.a
      out.floor = mid.b
      out.floorRatio = mid.value
      // All rounds' CPU summed, with how far it can be trusted: one storm's CPU swings by half.
      out.floorSums = ratioOfSums(out.rounds.map(p => [p.a.cpuPerRequest, p.b.cpuPerRequest]))
      log(`  storm CPU × the floor, round by round: ${out.rounds.map(p => p.value.toFixed(2)).join(' ')}; median ${mid.value.toFixed(2)}`)
      // The SYNs toward the origin are counted in a storm of their own: `ss` run every 100 ms
      // is a process started ten times a second on a 2-core machine, which moved the CPU,
      // the lateness and the healthy route's p99 of the storm it watched.
      out.clean.synSentMax = (await stormWave(one, { synPort })).synSentMax
      out.floor.synSentMax = (await stormWave(floor, { synPort })).synSentMax
      // Then a healthy route beside it: its latency quiet, then during storms. The first storm
      // that meets healthy traffic costs twice the next ones and has twice their lateness (the
      // JIT redoes what it made for the storm alone, as the two paths' objects meet in the
      // same Node code): warm-up storms under the load first.
      out.quiet = quietLoad(await steady(one.port, P.stormQuietSeconds))
      log(`  healthy route, no storm: p99 ${out.quiet.p99?.toFixed(2)} ms at ${P.stormLoadRate} req/s`)
      out.loadedWarmup = await warmUpStorms(one, { withLoad: true })
      if (nginx === null) {
        out.loaded = await stormWave(one, { withLoad: true, logFile })
      } else {
        const n = { warmup: await warmUpStorms(nginx), quiet: quietLoad(await steady(nginx.port, P.stormQuietSeconds)) }
        log(`  nginx: healthy route, no storm: p99 ${n.quiet.p99?.toFixed(2)} ms at ${P.stormLoadRate} req/s`)
        n.clean = await stormWave(nginx)
        n.clean.synSentMax = (await stormWave(nginx, { synPort })).synSentMax
        await warmUpStorms(nginx, { withLoad: true })
        // Lateness and the healthy route's p99 swing as much between storms as CPU does: the
        // storm under load, against nginx's, paired round by round; the median of each.
        const loaded = await pairedStorms(one, nginx, { withLoad: true, logFile }, { withLoad: true }, p => p.a.client.lateness.p99)
        const byHealthy = loaded.map(p => ({ ...p, value: p.a.healthyDuring.p99 }))
        out.loaded = atMedian(loaded).a
        n.loaded = atMedian(loaded.map(p => ({ ...p, value: p.b.client.lateness.p99 }))).b
        out.loadedRounds = loaded.map(p => ({ lateness: p.a.client.lateness.p99, nginxLateness: p.b.client.lateness.p99, healthy: p.a.healthyDuring.p99, nginxHealthy: p.b.healthyDuring.p99 }))
        out.loadedHealthyP99 = atMedian(byHealthy).value
        n.loadedHealthyP99 = atMedian(loaded.map(p => ({ ...p, value: p.b.healthyDuring.p99 }))).value
        out.nginx = n
        log(`  under load, p99 lateness highproxy / nginx by round: ${out.loadedRounds.map(r => `${r.lateness?.toFixed(0)}/${r.nginxLateness?.toFixed(0)}`).join(' ')}; healthy p99 ${out.loadedRounds.map(r => `${r.healthy?.toFixed(1)}/${r.nginxHealthy?.toFixed(1)}`).join(' ')}`)
      }
    } finally {
      await one.proc.stop()
      await floor.proc.stop()
      await nginx?.proc.stop()
    }
    if (/--workers\b/.test(await highproxyHelp())) {
      const two = await startStormProxy('highproxy --workers 2 (storm)', ['--workers', '2'])
      try {
        out.workers2Processes = processTree(two.proc.pid).length
        out.workers2Warmup = await warmUpStorms(two)
        out.workers2 = await stormWave(two)
        out.workers2.synSentMax = (await stormWave(two, { synPort })).synSentMax
      } finally {
        await two.proc.stop()
      }
    }
    results.storm = out
  } finally {
    await dead.close()
  }
}

/**
 * Warm-up storms until the CPU per storm request settles (within 15% of the one before),
 * at most P.stormWarmups of them: a process that has served one storm still runs much of
 * its failure path unoptimized (the second storm cost up to 2× the fourth).
 */
async function warmUpStorms (target, wave = {}) {
  let last = await stormWave(target, wave)
  for (let i = 1; i < P.stormWarmups; i++) {
    const next = await stormWave(target, wave)
    const settled = Math.abs(next.cpuPerRequest - last.cpuPerRequest) <= 0.15 * last.cpuPerRequest
    last = { ...next, warmups: i + 1 }
    if (settled) break
  }
  return last
}

/** The healthy load's figures without its per-request times. */
const quietLoad = q => ({ p50: q.p50, p99: q.p99, count: q.requests, errors: q.errors + q.timeouts + q.non2xx })

/**
 * P.stormRounds rounds of one storm on `a` and one on `b`, the order alternating; `value`
 * reads each round's pair ({ a, b }) into the figure whose median counts.
 */
async function pairedStorms (a, b, waveA, waveB, value) {
  const rounds = []
  for (let r = 0; r < P.stormRounds; r++) {
    const pair = {}
    if (r % 2 === 0) { pair.a = await stormWave(a, waveA); pair.b = await stormWave(b, waveB) } else { pair.b = await stormWave(b, waveB); pair.a = await stormWave(a, waveA) }
    pair.value = value(pair)
    rounds.push(pair)
  }
  return rounds
}

/** The round whose value is the median (the lower one of an even count). */
const atMedian = rounds => [...rounds].sort((x, y) => x.value - y.value)[Math.floor((rounds.length - 1) / 2)]

// ---------------------------------------------------------------------------------
// 5. Error pages

async function errorPages (results, ctx) {
  const origin = await ctx.origin()
  // Outside the ephemeral range: a port picked free there (bound, then released) was taken
  // by a server another section started at the same time, and "521" got its 200.
  const { refusedPort } = await import(pathToFileURL(path.join(ROOT, 'dist', 'lab', 'loopback.js')).href)
  const refused = await refusedPort()
  const bad = await hp('highproxy (521)', ['--origin', `http://${HOST}:${refused}`])
  const good = await hp('highproxy (200)', ['--origin', origin.url])
  try {
    const kinds = [
      { key: 'html', target: bad, accept: 'text/html', type: /^text\/html/ },
      { key: 'json', target: bad, accept: 'application/json', type: /^application\/(problem\+)?json/ },
      // The same build answering the healthy origin: the yardstick, paired round by round.
      { key: 'healthy 200', target: good, accept: '*/*', type: /^text\/plain/ }
    ]
    for (const k of kinds) {
      const res = await get(k.target.port, '/', { accept: k.accept })
      k.check = { status: res.status, contentType: res.headers['content-type'], connection: res.headers.connection ?? null, bytes: res.body.length }
      const want = k.key === 'healthy 200' ? 200 : 521
      if (res.status !== want || !k.type.test(res.headers['content-type'] ?? '')) throw new Error(`${k.key}: got ${res.status} ${res.headers['content-type']}`)
    }
    const rounds = kinds.map(() => [])
    const opts = k => ({ port: k.target.port, path: '/', headers: { accept: k.accept }, connections: P.connections })
    if (!dryRun) {
      for (const k of kinds) await warmUp(k.target, opts(k))
      for (let r = 0; r < P.rounds; r++) {
        for (const [i, k] of kinds.entries()) {
          const m = await measured(k.target, origin, () => saturate({ ...opts(k), seconds: P.duration }))
          rounds[i].push(m)
          log(`  errors round ${r + 1}/${P.rounds} ${k.key}: ${Math.round(m.rps)} req/s, ${m.cpuUs?.toFixed(1)} µs CPU/answer`)
        }
      }
    }
    const healthyRounds = rounds[2]
    results.errors = {
      generator: P.generator,
      rows: kinds.map((k, i) => {
        const s = summarize(k.key, rounds[i], { xHealthy: healthyRounds })
        // Here a 521 is the expected answer: count what is not one (wrk tells only < 400 from ≥ 400).
        if (k.key !== 'healthy 200') s.problems = rounds[i].reduce((n, r) => n + r.errors + r.timeouts + (r.requests - r.non2xx), 0)
        return { ...s, accept: k.accept, check: k.check }
      })
    }
  } finally {
    await bad.proc.stop()
    await good.proc.stop()
  }
}

// ---------------------------------------------------------------------------------

function machine () {
  const cpus = os.cpus()
  let commit = null
  try { commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() } catch {}
  const version = name => { try { return JSON.parse(readFileSync(path.join(ROOT, 'node_modules', name, 'package.json'), 'utf8')).version } catch { return null } }
  const tool = (bin, args, re) => { try { return re.exec(execFileSync(bin, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }))?.[1] ?? null } catch (err) { return re.exec(String(err.stderr ?? ''))?.[1] ?? null } }
  const nginx = which('nginx')
  const haproxy = which('haproxy')
  return {
    cpu: cpus[0]?.model ?? 'unknown',
    cores: cpus.length,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    kernel: `${os.type()} ${os.release()}`,
    // The Node rows' node (--node), and the bench's own when it differs.
    node: NODE_VERSION,
    nodeBinary: nodeBin(),
    ...(NODE_VERSION === process.version ? {} : { harnessNode: process.version }),
    ...(COMPARE === null ? {} : { compareNode: COMPARE.version, compareNodeBinary: COMPARE.bin }),
    commit,
    versions: {
      ...Object.fromEntries(['fastify', 'undici', 'pino', '@fastify/http-proxy', 'http-proxy', 'autocannon'].map(n => [n, version(n)])),
      nginx: nginx && tool(nginx, ['-v'], /nginx\/(\S+)/),
      haproxy: haproxy && tool(haproxy, ['-v'], /version (\S+)/),
      wrk: wrkBin && tool(wrkBin, ['-v'], /wrk (\S+)/)
    }
  }
}

function stamp (d) {
  const p = n => String(n).padStart(2, '0')
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}-${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`
}

// ---------------------------------------------------------------------------------
// 6. TLS and HTTP/2

async function tlsPaths (results, ctx) {
  const origin = await ctx.origin()
  results.tls = await tlsSection({
    origin, tmp: ctx.tmp, rounds: P.rounds, seconds: P.duration * 2, handshakes: quick ? 500 : 1000, log, dryRun, extra: P.highproxyArgs
  })
  results.tls.rounds = P.rounds
  if (!results.tls.available) log(`tls: ${results.tls.note}`)
}

async function main () {
  checkBuild()
  const startedAt = new Date()
  const t0 = performance.now()
  const results = { date: startedAt.toISOString(), mode: P.mode, params: P, machine: machine() }
  const notes = []
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'highproxy-bench-'))
  // One origin for the whole run (every section's healthy traffic goes to it), started on first use.
  let originP = null
  const ctx = { tmp, origin: () => (originP ??= startOrigin(P.originServer, tmp)) }
  log(`${P.mode} run: ${P.connections} connections, ${P.rounds} rounds of ${P.duration} s, throughput by ${P.generator}, on ${results.machine.cores} × ${results.machine.cpu}`)
  log(`Node rows on node ${NODE_VERSION} (${nodeBin()})${COMPARE === null ? '' : `; compared with node ${COMPARE.version} (${COMPARE.bin})`}`)
  if (P.highproxyArgs.length) log(`every highproxy start gets: ${P.highproxyArgs.join(' ')}`)
  if (!dryRun) {
    const busy = await busyCores(1000, results.machine.cores)
    results.machine.busyCoresBefore = busy?.busy ?? null
    results.machine.stealCoresBefore = busy?.steal ?? null
    if (busy !== null && busy.busy + busy.steal > 0.2) {
      notes.push(`just before this run other processes kept ${busy.busy.toFixed(2)} of ${results.machine.cores} cores busy and the hypervisor stole ${busy.steal.toFixed(2)}: numbers are noisier than on an idle machine.`)
      log(`warning: the machine is not idle (${busy.busy.toFixed(2)} cores busy, ${busy.steal.toFixed(2)} stolen, before the run)`)
    }
  }
  if (P.mode === 'full' && P.rounds < 5) notes.push(`only ${P.rounds} rounds: the issue asks for the paired median of at least 5.`)
  const noise = noiseMeter()
  // A section that fails is reported and the others still run; the exit code says so.
  const failures = []
  const chosen = SECTIONS.filter(name => only.includes(name))
  // healthy and latency share one set of started targets.
  const tasks = []
  if (chosen.includes('healthy') || chosen.includes('latency')) {
    tasks.push([chosen.filter(s => s === 'healthy' || s === 'latency').join('+'), () => paths(results, notes, ctx, { throughput: chosen.includes('healthy'), latency: chosen.includes('latency') })])
  }
  if (chosen.includes('workers')) tasks.push(['workers', () => workers(results, ctx)])
  if (chosen.includes('storm')) tasks.push(['storm', () => storm(results, ctx)])
  if (chosen.includes('errors')) tasks.push(['errors', () => errorPages(results, ctx)])
  if (chosen.includes('tls')) tasks.push(['tls', () => tlsPaths(results, ctx)])
  if (chosen.includes('drowning')) tasks.push(['drowning', () => drowningSection({ results, notes, tmp, extra: P.highproxyArgs, log, dryRun, quick })])
  // 7. The Toxiproxy-compatible API's proxies with no toxic, against a bare net + pipe (issue 27).
  if (chosen.includes('toxiproxy')) tasks.push(['toxiproxy', async () => { results.toxiproxy = await toxiproxySection({ rounds: P.rounds, seconds: P.duration * 2, log, dryRun }) }])
  results.sectionSeconds = {}
  const runTask = async ([name, fn]) => {
    const started = performance.now()
    try {
      await fn()
    } catch (err) {
      failures.push({ section: name, error: String(err.stack ?? err) })
      notes.push(`section "${name}" failed: ${String(err.message ?? err).split('\n').slice(0, 2).join(' ')}`)
      log(`section ${name} failed: ${err.stack ?? err}`)
    } finally {
      results.sectionSeconds[name] = (performance.now() - started) / 1000
    }
  }
  try {
    // No load in a dry run: the sections' servers may start side by side.
    if (dryRun) await Promise.all(tasks.map(runTask))
    else for (const task of tasks) await runTask(task)
    if (originP !== null) results.origin = (await originP.catch(() => null))?.kind ?? null
  } finally {
    await stopAll()
    rmSync(tmp, { recursive: true, force: true })
  }
  if (warmupShort.length) notes.push(`warm-up stopped at 3× its time cap before ${P.warmupRequests} requests (the machine was slow): ${warmupShort.join(', ')} requests; their first rounds may still be warming up.`)
  if (results.origin) notes.push(`origin: ${results.origin === 'nginx' ? 'nginx (`return 200 "ok"`, a 64 KiB static file), the same for every target' : 'the node origin (bench/servers/origin.mjs): nginx is not installed'}.`)
  if (results.healthy || results.workers?.rows?.[0]?.rounds?.length || results.errors) {
    notes.push(`throughput generator: ${P.generator === 'wrk' ? `wrk -t1 -c${P.connections} (its own process)` : `autocannon, ${P.connections} connections, in the harness process`}; fixed-rate rows and the storm's healthy load: bench/lib/rate-client.mjs (evenly spaced requests, own process). CPU is read in clock ticks of ${TICK_US / 1000} ms.`)
  }
  const cpu = noise()
  results.machine.othersCoresDuring = cpu.othersCores
  results.machine.benchCoresDuring = cpu.oursCores
  results.machine.stealCoresDuring = cpu.stealCores
  if (!dryRun) {
    log(`CPU during the run: bench ${cpu.oursCores.toFixed(2)} cores, other processes ${cpu.othersCores.toFixed(2)}, stolen by the hypervisor ${cpu.stealCores.toFixed(2)}`)
    if (cpu.othersCores > 0.1) notes.push(`other processes used ${cpu.othersCores.toFixed(2)} of ${results.machine.cores} cores on average during this run (the bench itself ${cpu.oursCores.toFixed(2)}): numbers are noisier than on an idle machine.`)
    if (cpu.stealCores > 0.05) notes.push(`the hypervisor stole ${cpu.stealCores.toFixed(2)} of ${results.machine.cores} cores on average during this run (steal time in /proc/stat): the host is shared, so CPU per request moves from round to round; the paired ratios are what compares.`)
  }
  log(`stopped child processes: ${startedPids.join(' ')}`)
  results.failures = failures
  if (!dryRun) {
    const busy = await busyCores(1000, results.machine.cores)
    results.machine.busyCoresAfter = busy?.busy ?? null
    if (busy !== null && busy.busy > 0.2) notes.push(`other processes kept ${busy.busy.toFixed(2)} cores busy right after this run.`)
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
  log(`done in ${results.seconds.toFixed(1)} s (${Object.entries(results.sectionSeconds).map(([k, v]) => `${k} ${v.toFixed(0)} s`).join(', ')})${failures.length ? `; failed: ${failures.map(f => f.section).join(', ')}` : ''}`)
}

await main()
