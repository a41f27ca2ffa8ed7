#!/usr/bin/env node
// Where highproxy's time goes under load: one highproxy process run with
// `node --cpu-prof` behind the bench's load generator, its .cpuprofile read back and
// self time added up per function and per package.
//
//   node bench/profile.mjs                    healthy path, 2-byte body
//   node bench/profile.mjs --case 64k         healthy path, 64 KiB body
//   node bench/profile.mjs --case 521         521 error pages (refused origin), HTML
//   node bench/profile.mjs --case 521-json    the same, as JSON
//   --seconds <s> (default 10), --top <n> (default 15), --out <dir> (default /tmp)
//
// The profile stays in <out>/highproxy-prof-<date>/; the summary is printed and written
// next to it as summary.md and summary.json.

import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { setTimeout as sleep } from 'node:timers/promises'
import { HOST, freePort, start, stopAll, waitHttp } from './lib/procs.mjs'
import { load } from './lib/load.mjs'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const CLI = path.join(ROOT, 'dist', 'cli.js')

const { values: flags } = parseArgs({
  options: {
    case: { type: 'string', default: 'small' },
    seconds: { type: 'string', default: '10' },
    top: { type: 'string', default: '15' },
    out: { type: 'string', default: os.tmpdir() },
    connections: { type: 'string', default: '50' }
  },
  strict: true
})
const CASES = {
  small: { path: '/', headers: {} },
  '64k': { path: '/64k', headers: {} },
  521: { path: '/', headers: { accept: 'text/html' }, refused: true },
  '521-json': { path: '/', headers: { accept: 'application/json' }, refused: true }
}
const c = CASES[flags.case]
if (c === undefined) { process.stderr.write(`profile: --case is one of ${Object.keys(CASES).join(', ')}\n`); process.exit(2) }
const seconds = Number(flags.seconds)
const top = Number(flags.top)

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

/** Self time per function and per category, from a .cpuprofile. */
export function summarize (profile, topN = 15) {
  const byId = new Map(profile.nodes.map(n => [n.id, n]))
  const self = new Map() // node id → µs
  const { samples, timeDeltas } = profile
  for (let i = 0; i < samples.length; i++) {
    // timeDeltas[i] is the time before sample i; attribute the next delta to sample i.
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
    `Profiled ${(s.totalMs / 1000).toFixed(1)} s; idle ${s.idlePct.toFixed(1)}%. "% busy" is the share of non-idle time.`, '',
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

async function main () {
  const stamp = new Date().toISOString().replace(/[:.]/g, '-')
  const dir = path.join(flags.out, `highproxy-prof-${flags.case}-${stamp}`)
  mkdirSync(dir, { recursive: true })
  try {
    let upstream
    if (c.refused) {
      upstream = `http://${HOST}:${await freePort()}`
    } else {
      const originPort = await freePort()
      const origin = start('origin', process.execPath, [path.join(ROOT, 'bench', 'servers', 'origin.mjs'), String(originPort)])
      await waitHttp(origin, originPort)
      upstream = `http://${HOST}:${originPort}`
    }
    const port = await freePort()
    const hp = start('highproxy', process.execPath,
      ['--cpu-prof', '--cpu-prof-dir', dir, CLI, '--origin', upstream, '--port', String(port), '--log-format', 'json'])
    await waitHttp(hp, port)
    await load({ port, path: c.path, headers: c.headers, connections: Number(flags.connections), seconds: 2 })
    const res = await load({ port, path: c.path, headers: c.headers, connections: Number(flags.connections), seconds })
    process.stderr.write(`profile: ${Math.round(res.rps)} req/s, p50 ${res.p50?.toFixed(2)} ms, p99 ${res.p99?.toFixed(2)} ms under --cpu-prof\n`)
    await sleep(200)
    await hp.stop(10_000) // SIGTERM: a clean exit writes the profile
    const file = readdirSync(dir).find(f => f.endsWith('.cpuprofile'))
    if (file === undefined) throw new Error(`no .cpuprofile written in ${dir}`)
    const summary = summarize(JSON.parse(readFileSync(path.join(dir, file), 'utf8')), top)
    summary.load = { case: flags.case, rps: res.rps, p50: res.p50, p99: res.p99, seconds, connections: Number(flags.connections) }
    const md = summaryMarkdown(summary, `highproxy CPU profile: ${flags.case}, ${Math.round(res.rps)} req/s under --cpu-prof`)
    writeFileSync(path.join(dir, 'summary.md'), md)
    writeFileSync(path.join(dir, 'summary.json'), JSON.stringify(summary, null, 2))
    process.stdout.write(md + `\nprofile: ${path.join(dir, file)}\n`)
  } finally {
    await stopAll()
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main()
