#!/usr/bin/env node
// Where the time goes: one process run with `node --cpu-prof` under the bench's load,
// its .cpuprofile read back and self time added up per function and per package.
//
//   node bench/profile.mjs                    highproxy, healthy path, 2-byte body
//   node bench/profile.mjs --case 64k         highproxy, healthy path, 64 KiB body
//   node bench/profile.mjs --case 521         highproxy, 521 error pages (refused origin), HTML
//   node bench/profile.mjs --case 521-json    the same, as JSON
//   node bench/profile.mjs --case storm       highproxy, one 522 storm: --concurrency requests
//                                             (default 1,000) at once on new connections to a
//                                             SYN-dropping origin, connect timeout 2 s
//   node bench/profile.mjs --case storm-floor the Node storm floor (bench/servers/storm-floor.mjs), the same storm
//   node bench/profile.mjs --case floor       the Node floor (bench/servers/node-floor.mjs), 2-byte body
//   node bench/profile.mjs --case floor-log   the same with its one pino line per request
//   node bench/profile.mjs --case tls-h1      highproxy over TLS, HTTP/1.1 keep-alive (h2load --h1, 50 connections)
//   node bench/profile.mjs --case h2          highproxy over TLS, HTTP/2: 10 connections × 10 streams (h2load)
//   node bench/profile.mjs --case handshake   highproxy over TLS, a new connection (full handshake) per request
//   --seconds <s> (default 10), --top <n> (default 15), --out <dir> (default /tmp),
//   --connections <n> (default 50), --highproxy-args "<args>" (appended to the highproxy start),
//   --origin-server auto|nginx|node (default auto: nginx when installed, as in run.mjs),
//   --interval <µs> (default 1000: the sampling interval; 100 sees a single storm of 1,000 in detail)
//   --storm-phase all|answer (default all: from the storm's first connect; answer: from 3/4 of the timeout on)
//
// The load is the bench's: wrk -t1 when installed, else autocannon in this process. The
// profile stays in <out>/highproxy-prof-<case>-<date>/; the summary is printed and
// written next to it as summary.md and summary.json.

import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { setTimeout as sleep } from 'node:timers/promises'
import { refusedPort } from '../dist/lab/loopback.js'
import { HOST, stopAll } from './lib/procs.mjs'
import { load } from './lib/load.mjs'
import { wrk } from './lib/wrk.mjs'
import { cpuWindow } from './lib/cpu.mjs'
import { runStorm } from './lib/storm.mjs'
import { splitArgs } from './lib/args.mjs'
import { benchCertificate, startHighproxy, startNodeServer, startOrigin, which } from './lib/servers.mjs'
import { TLS_MODES, h2load, h2loadArgs } from './lib/tls.mjs'

const ROOT = fileURLToPath(new URL('..', import.meta.url))

const { values: flags } = parseArgs({
  options: {
    case: { type: 'string', default: 'small' },
    seconds: { type: 'string', default: '10' },
    top: { type: 'string', default: '15' },
    out: { type: 'string', default: os.tmpdir() },
    connections: { type: 'string', default: '50' },
    concurrency: { type: 'string', default: '1000' },
    'highproxy-args': { type: 'string', default: '' },
    'origin-server': { type: 'string', default: 'auto' },
    interval: { type: 'string', default: '1000' },
    'storm-phase': { type: 'string', default: 'all' }
  },
  strict: true
})
const CASES = {
  small: { server: 'highproxy', path: '/', headers: {} },
  '64k': { server: 'highproxy', path: '/64k', headers: {} },
  521: { server: 'highproxy', path: '/', headers: { accept: 'text/html' }, refused: true },
  '521-json': { server: 'highproxy', path: '/', headers: { accept: 'application/json' }, refused: true },
  storm: { server: 'highproxy', storm: true },
  'storm-floor': { server: 'floor', storm: true },
  floor: { server: 'floor', path: '/', headers: {} },
  'floor-log': { server: 'floor', path: '/', headers: {}, log: true },
  'tls-h1': { server: 'highproxy', tls: 'h1' },
  h2: { server: 'highproxy', tls: 'h2' },
  handshake: { server: 'highproxy', tls: 'handshake' }
}
const c = CASES[flags.case]
if (c === undefined) { process.stderr.write(`profile: --case is one of ${Object.keys(CASES).join(', ')}\n`); process.exit(2) }
const seconds = Number(flags.seconds)
const top = Number(flags.top)
const extra = splitArgs(flags['highproxy-args'])
const wrkBin = which('wrk')
const STORM_TIMEOUT_MS = 2000

/** Which package (or part of node) a profiled function belongs to. */
export function categoryOf (frame) {
  const url = frame.url ?? ''
  const name = frame.functionName
  if (url === '') return /^\(.*\)$/.test(name) ? name : '(native)'
  const nm = url.lastIndexOf('node_modules/')
  if (nm !== -1) {
    const parts = url.slice(nm + 'node_modules/'.length).split('/')
    return parts[0].startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]
  }
  if (url.startsWith('node:')) {
    const m = /^node:(?:internal\/)?([^/]+)/.exec(url)
    return `node:${m?.[1] ?? url}`
  }
  if (url.includes('/dist/')) return 'highproxy'
  return url
}

/** Now on the clock of a .cpuprofile's timestamps (CLOCK_MONOTONIC µs, as V8's and uv_hrtime's). */
export const profileClockUs = () => Number(process.hrtime.bigint() / 1000n)

/**
 * Self time per function and per category, from a .cpuprofile. With `window`
 * ({ fromUs, toUs } on profileClockUs), only the samples taken inside it count: the
 * measured load or the storm, not the start-up and warm-up around it.
 */
export function summarize (profile, topN = 15, window = null) {
  const byId = new Map(profile.nodes.map(n => [n.id, n]))
  const self = new Map() // node id → µs
  const { samples, timeDeltas } = profile
  let t = profile.startTime
  for (let i = 0; i < samples.length; i++) {
    t += timeDeltas[i] ?? 0 // timeDeltas[i] is the time before sample i
    if (window !== null && (t < window.fromUs || t > window.toUs)) continue
    // Attribute the next delta to sample i.
    const dt = timeDeltas[i + 1] ?? 0
    self.set(samples[i], (self.get(samples[i]) ?? 0) + dt)
  }
  const parent = new Map()
  for (const n of profile.nodes) for (const child of n.children ?? []) parent.set(child, n.id)
  const whereOf = f => f.url === '' ? '' : `${f.url.replace(/^file:\/\//, '').replace(ROOT, '')}:${f.lineNumber + 1}`
  // A native function (writev, writeLatin1String…) is shown with the JS function that called it.
  const callerOf = id => {
    for (let p = parent.get(id); p !== undefined; p = parent.get(p)) {
      const f = byId.get(p).callFrame
      if (f.url !== '') return f
    }
    return null
  }
  let total = 0
  const fns = new Map()
  const cats = new Map()
  const catsViaCaller = new Map()
  const inclusive = new Map()
  for (const [id, us] of self) {
    const node = byId.get(id)
    const f = node.callFrame
    total += us
    const cat = categoryOf(f)
    const caller = cat === '(native)' ? callerOf(id) : null
    const where = caller === null ? whereOf(f) : `from ${caller.functionName || '(anonymous)'} ${whereOf(caller)}`
    const key = `${f.functionName || '(anonymous)'} ${where}`
    const entry = fns.get(key) ?? { fn: f.functionName || '(anonymous)', where, category: cat, us: 0 }
    entry.us += us
    fns.set(key, entry)
    cats.set(cat, (cats.get(cat) ?? 0) + us)
    const via = caller === null ? cat : categoryOf(caller)
    catsViaCaller.set(via, (catsViaCaller.get(via) ?? 0) + us)
    // Inclusive: every package on the stack gets this sample once.
    const seen = new Set()
    for (let p = id; p !== undefined; p = parent.get(p)) {
      const c = categoryOf(byId.get(p).callFrame)
      if (c === '(root)' || c === '(native)') continue
      seen.add(c)
    }
    for (const c of seen) inclusive.set(c, (inclusive.get(c) ?? 0) + us)
  }
  const idle = [...fns.values()].filter(f => f.fn === '(idle)').reduce((a, f) => a + f.us, 0)
  const busy = total - idle
  const pct = us => (100 * us) / total
  const pctBusy = us => (100 * us) / busy
  return {
    totalMs: total / 1000,
    idlePct: pct(idle),
    functions: [...fns.values()].filter(f => f.fn !== '(idle)').sort((a, b) => b.us - a.us).slice(0, topN)
      .map(f => ({ ...f, ms: f.us / 1000, pct: pct(f.us), pctBusy: pctBusy(f.us) })),
    categories: [...cats.entries()].filter(([k]) => k !== '(idle)').sort((a, b) => b[1] - a[1])
      .map(([category, us]) => ({ category, ms: us / 1000, pct: pct(us), pctBusy: pctBusy(us) })),
    categoriesViaCaller: [...catsViaCaller.entries()].filter(([k]) => k !== '(idle)').sort((a, b) => b[1] - a[1])
      .map(([category, us]) => ({ category, ms: us / 1000, pct: pct(us), pctBusy: pctBusy(us) })),
    inclusive: [...inclusive.entries()].filter(([k]) => k !== '(idle)').sort((a, b) => b[1] - a[1])
      .map(([category, us]) => ({ category, ms: us / 1000, pct: pct(us), pctBusy: pctBusy(us) }))
  }
}

export function summaryMarkdown (s, title) {
  const lines = [`# ${title}`, '',
    `Profiled ${(s.totalMs / 1000).toFixed(1)} s${s.windowSeconds ? ' (the samples of the measured load only, not start-up or warm-up)' : ''}; idle ${s.idlePct.toFixed(1)}%. "% busy" is the share of non-idle time.`, '',
    `## Top ${s.functions.length} functions by self time`, '',
    '| # | function | where | package | self ms | % total | % busy |', '| --- | --- | --- | --- | --- | --- | --- |',
    ...s.functions.map((f, i) => `| ${i + 1} | \`${f.fn}\` | ${f.where || '—'} | ${f.category} | ${f.ms.toFixed(0)} | ${f.pct.toFixed(1)} | ${f.pctBusy.toFixed(1)} |`),
    '', '## Self time by package', '',
    '| package | self ms | % total | % busy |', '| --- | --- | --- | --- |',
    ...s.categories.slice(0, 25).map(c => `| ${c.category} | ${c.ms.toFixed(0)} | ${c.pct.toFixed(1)} | ${c.pctBusy.toFixed(1)} |`),
    '', '## Self time by package, native calls counted to the package that made them', '',
    '| package | self ms | % total | % busy |', '| --- | --- | --- | --- |',
    ...s.categoriesViaCaller.slice(0, 20).map(c => `| ${c.category} | ${c.ms.toFixed(0)} | ${c.pct.toFixed(1)} | ${c.pctBusy.toFixed(1)} |`),
    '', '## Inclusive time: samples with the package anywhere on the stack', '',
    '| package | ms | % total | % busy |', '| --- | --- | --- | --- |',
    ...s.inclusive.slice(0, 20).map(c => `| ${c.category} | ${c.ms.toFixed(0)} | ${c.pct.toFixed(1)} | ${c.pctBusy.toFixed(1)} |`),
    '']
  return lines.join('\n')
}

/** Load on `port` with the bench's generator; resolves { rps, p50, p99, requests }. */
const saturate = opts => wrkBin !== null ? wrk(wrkBin, opts) : load(opts)

/** The profiled process, started under --cpu-prof: highproxy (through its CLI) or the floor. */
async function startProfiled (dir, tmp) {
  const node = ['--cpu-prof', '--cpu-prof-dir', dir, '--cpu-prof-interval', String(Number(flags.interval))]
  if (c.storm) {
    const { synDropOrigin } = await import(pathToFileURL(path.join(ROOT, 'dist', 'lab', 'faults.js')).href)
    const dead = await synDropOrigin()
    const config = path.join(tmp, 'storm.yaml')
    // A route's own single origin is never marked down: every request waits for its connect.
    // Nothing else is routed, so the readiness check gets a 404 at once, not a 522 in 2 s.
    writeFileSync(config, `routes:\n  - { path: /dead, origin: "${dead.url}", strip_prefix: true, connect_timeout: ${STORM_TIMEOUT_MS}ms }\ntimeouts:\n  connect: ${STORM_TIMEOUT_MS}ms\n`)
    const started = c.server === 'floor'
      ? await startNodeServer('storm floor', 'storm-floor.mjs', dead.url, [String(STORM_TIMEOUT_MS)], { node })
      : await startHighproxy('highproxy', ['--config', config], { node, extra, raiseFdLimit: true, readyPath: '/ready' })
    return { ...started, close: () => dead.close() }
  }
  const upstream = c.refused ? { url: `http://${HOST}:${await refusedPort()}` } : await startOrigin(flags['origin-server'], tmp)
  const started = c.server === 'floor'
    ? await startNodeServer('node floor', 'node-floor.mjs', upstream.url, c.log ? ['--log'] : [], { node })
    : await startHighproxy('highproxy', ['--origin', upstream.url], { node, extra, tls: c.tls === undefined ? null : benchCertificate(tmp) })
  return { ...started, origin: upstream.kind ?? 'refused', close: async () => {} }
}

async function main () {
  const stamp = new Date().toISOString().replace(/[:.]/g, '-')
  const dir = path.join(flags.out, `highproxy-prof-${flags.case}-${stamp}`)
  mkdirSync(dir, { recursive: true })
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'highproxy-profile-'))
  let target = null
  try {
    target = await startProfiled(dir, tmp)
    const pid = target.proc.pid
    // The summary counts only the samples of the measured load (or the storm).
    const window = { fromUs: 0, toUs: 0 }
    let measured
    if (c.storm) {
      const concurrency = Number(flags.concurrency)
      // As in run.mjs: measured after a warm-up storm, on code the JIT has seen.
      await runStorm({ port: target.port, path: '/dead/x', concurrency, timeoutMs: STORM_TIMEOUT_MS })
      await sleep(500)
      let cpu
      const r = await runStorm({
        port: target.port,
        path: '/dead/x',
        concurrency,
        timeoutMs: STORM_TIMEOUT_MS,
        // --storm-phase answer: only the samples from 3/4 of the timeout on (every request
        // has arrived and waits), i.e. the failures being answered.
        beforeFire: () => { cpu = cpuWindow([pid]); window.fromUs = profileClockUs() + (flags['storm-phase'] === 'answer' ? STORM_TIMEOUT_MS * 750 : 0) },
        afterLast: () => { window.toUs = profileClockUs(); return cpu()[0] }
      })
      const s = r.summary
      measured = { case: flags.case, concurrency, cpuPerRequestUs: r.after / concurrency, got522: s.got522, lost: s.lost, early: s.early, latenessMedian: s.lateness.median, latenessP99: s.lateness.p99, latenessMax: s.lateness.max }
      process.stderr.write(`profile: storm of ${concurrency}: ${s.got522} × 522, ${s.lost} lost, ${s.early} early, lateness p50 ${s.lateness.median?.toFixed(0)} p99 ${s.lateness.p99?.toFixed(0)} ms, ${measured.cpuPerRequestUs.toFixed(0)} µs CPU/request under --cpu-prof\n`)
    } else if (c.tls !== undefined) {
      const h2loadBin = which('h2load')
      if (h2loadBin === null) throw new Error('the TLS cases need h2load (Debian nghttp2-client)')
      const mode = TLS_MODES.find(m => m.key === c.tls)
      const handshakes = Math.round(500 * seconds)
      await h2load(h2loadBin, h2loadArgs(mode, target.port, mode.key === 'handshake' ? null : 2, 500))
      const cpu = cpuWindow([pid])
      window.fromUs = profileClockUs()
      const res = await h2load(h2loadBin, h2loadArgs(mode, target.port, mode.key === 'handshake' ? null : seconds, handshakes))
      window.toUs = profileClockUs()
      const cpuPerRequestUs = cpu()[0] / res.requests
      measured = { case: flags.case, rps: res.rps, cpuPerRequestUs, seconds, generator: 'h2load', origin: target.origin }
      process.stderr.write(`profile: ${Math.round(res.rps)} req/s, ${cpuPerRequestUs.toFixed(1)} µs CPU/req under --cpu-prof (origin ${target.origin})\n`)
    } else {
      const opts = { port: target.port, path: c.path, headers: c.headers, connections: Number(flags.connections) }
      await saturate({ ...opts, seconds: 2 })
      const cpu = cpuWindow([pid])
      window.fromUs = profileClockUs()
      const res = await saturate({ ...opts, seconds })
      window.toUs = profileClockUs()
      const cpuPerRequestUs = cpu()[0] / res.requests
      measured = { case: flags.case, rps: res.rps, p50: res.p50, p99: res.p99, cpuPerRequestUs, seconds, connections: opts.connections, generator: wrkBin !== null ? 'wrk' : 'autocannon', origin: target.origin }
      process.stderr.write(`profile: ${Math.round(res.rps)} req/s, ${cpuPerRequestUs.toFixed(1)} µs CPU/req, p50 ${res.p50?.toFixed(2)} ms, p99 ${res.p99?.toFixed(2)} ms under --cpu-prof (origin ${target.origin})\n`)
    }
    await sleep(200)
    await target.proc.stop(10_000) // SIGTERM: a clean exit writes the profile
    const file = readdirSync(dir).find(f => f.endsWith('.cpuprofile'))
    if (file === undefined) throw new Error(`no .cpuprofile written in ${dir}`)
    const summary = summarize(JSON.parse(readFileSync(path.join(dir, file), 'utf8')), top, window)
    summary.windowSeconds = (window.toUs - window.fromUs) / 1e6
    summary.window = window
    summary.load = measured
    const what = c.server === 'floor' ? `node floor${c.log ? ' + pino line' : ''}` : 'highproxy'
    const title = c.storm
      ? `${what} CPU profile: one storm of ${measured.concurrency} to a SYN-dropping origin, ${measured.cpuPerRequestUs.toFixed(0)} µs CPU per storm request under --cpu-prof`
      : `${what} CPU profile: ${flags.case}, ${Math.round(measured.rps)} req/s, ${measured.cpuPerRequestUs.toFixed(1)} µs CPU/req under --cpu-prof`
    const md = summaryMarkdown(summary, title)
    writeFileSync(path.join(dir, 'summary.md'), md)
    writeFileSync(path.join(dir, 'summary.json'), JSON.stringify(summary, null, 2))
    process.stdout.write(md + `\nprofile: ${path.join(dir, file)}\n`)
  } finally {
    await stopAll()
    await target?.close()
    rmSync(tmp, { recursive: true, force: true })
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main()
