#!/usr/bin/env node
// Paired A/B of the 522 storm's CPU: two highproxy builds and the Node storm floor, each
// stormed in turn, round by round, so that every round's ratios were taken under the same
// load of a shared machine. The median of each ratio over the rounds is the figure, and the
// rounds summed with their 95% bootstrap interval says how far it can be trusted.
//
//   node bench/storm-ab.mjs --base <dir of another checkout, built> [--rounds 7] [--concurrency 1000]
//                           [--base-args="<highproxy args>"] [--this-args="<highproxy args>"]
//                           [--this-yaml "<lines added to this one's config>"] [--this-node="<node flags>"]
//                           [--side-by-side]
//
// --base . with --this-args, --this-yaml or --this-node compares one build against itself with a setting
// changed (e.g. --this-yaml "log: { level: error }": what the log lines cost in a storm).
//
// --side-by-side fires the three storms of a round at the same moment instead of one after
// another, so that no storm meets a quieter machine than the others; each also meets the
// others' bursts, which costs the heavier processes more. It reads highproxy higher against
// the floor than sequential rounds do (the same day: 1.43× and 1.53× for one highproxy (a
// scratch run of this shape), 1.43× and 1.63× for this script's two, where sequential rounds read
// 1.25×), and three storms of 1,000 at once are no steadier: two identical builds read
// 0.64–1.42× of each other round by round. Lateness is the sequential rounds' to read:
// side by side, each storm's answers wait behind the others'.
//
// <dir>/dist/cli.js is started as "base", this checkout's dist/cli.js as "this". Both get
// the storm section's config (a /dead route to a SYN-dropping origin, connect timeout 2 s,
// max_pending_connects 64) and log JSON to a file, as in `npm run bench -- --only storm`.

import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { freePort, start, stopAll } from './lib/procs.mjs'
import { cpuWindow } from './lib/cpu.mjs'
import { runStorm } from './lib/storm.mjs'
import { ratioOfSums } from './lib/load.mjs'
import { highproxyNodeFlags, startNodeServer } from './lib/servers.mjs'
import { splitArgs } from './lib/args.mjs'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const { values: flags } = parseArgs({
  options: {
    base: { type: 'string' },
    rounds: { type: 'string', default: '7' },
    concurrency: { type: 'string', default: '1000' },
    cap: { type: 'string', default: '64' },
    'base-args': { type: 'string', default: '' },
    'this-args': { type: 'string', default: '' },
    'this-yaml': { type: 'string', default: '' },
    'this-node': { type: 'string', default: '' },
    'side-by-side': { type: 'boolean', default: false }
  },
  strict: true
})
if (flags.base === undefined) { process.stderr.write('storm-ab: --base <dir> is required\n'); process.exit(2) }
const rounds = Number(flags.rounds)
const concurrency = Number(flags.concurrency)
const TIMEOUT_MS = 2000

const { synDropOrigin } = await import(pathToFileURL(path.join(ROOT, 'dist', 'lab', 'faults.js')).href)
const dead = await synDropOrigin()
const tmp = mkdtempSync(path.join(os.tmpdir(), 'highproxy-storm-ab-'))
const config = path.join(tmp, 'storm.yaml')
writeFileSync(config, [
  'routes:',
  `  - { path: /dead, origin: "${dead.url}", strip_prefix: true, connect_timeout: 2s }`,
  'timeouts:',
  '  connect: 2s',
  'connections:',
  `  max_pending_connects: ${flags.cap}`,
  ''
].join('\n'))
const thisConfig = path.join(tmp, 'storm-this.yaml')
writeFileSync(thisConfig, readFileSync(config, 'utf8') + flags['this-yaml'] + '\n')

async function waitUp (port) {
  for (let i = 0; i < 300; i++) {
    try { await fetch(`http://127.0.0.1:${port}/healthz-none`); return } catch { await new Promise(resolve => setTimeout(resolve, 100)) }
  }
  throw new Error(`nothing answered on ${port}`)
}

async function proxy (name, root, extra, file = config, node = []) {
  const port = await freePort()
  const fd = openSync(path.join(tmp, `${name}.log`), 'a')
  try {
    const proc = start(name, process.execPath, [...await highproxyNodeFlags(node), path.join(root, 'dist', 'cli.js'), '--config', file, '--port', String(port),
      '--admin-port', String(await freePort()), '--log-format', 'json', ...extra], { stdout: fd, raiseFdLimit: true })
    await waitUp(port)
    return { name, proc, port }
  } finally { closeSync(fd) }
}

async function storm (target) {
  let cpu
  const r = await runStorm({
    port: target.port, path: '/dead/x', concurrency, timeoutMs: TIMEOUT_MS,
    beforeFire: () => { cpu = cpuWindow([target.proc.pid]) },
    afterLast: () => cpu()[0]
  })
  const s = r.summary
  return { cpu: r.after / concurrency, got522: s.got522, early: s.early, lost: s.lost, p99: s.lateness.p99 }
}

const median = xs => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)] }
try {
  const targets = [await proxy('base', path.resolve(flags.base), splitArgs(flags['base-args'])), await proxy('this', ROOT, splitArgs(flags['this-args']), thisConfig, splitArgs(flags['this-node']))]
  const floor = await startNodeServer('floor', 'storm-floor.mjs', dead.url, [String(TIMEOUT_MS)])
  targets.push({ name: 'floor', ...floor })
  for (const t of targets) for (let i = 0; i < 3; i++) await storm(t) // warm-up
  const rows = []
  for (let r = 0; r < rounds; r++) {
    const row = {}
    if (flags['side-by-side']) {
      const results = await Promise.all(targets.map(storm))
      targets.forEach((t, i) => { row[t.name] = results[i] })
    } else {
      // Rotate who goes first, so none always meets the machine right after the same neighbour.
      for (let i = 0; i < targets.length; i++) {
        const t = targets[(i + r) % targets.length]
        row[t.name] = await storm(t)
      }
    }
    rows.push(row)
    const f = row.floor.cpu
    process.stdout.write(`round ${r + 1}: µs/req base ${row.base.cpu.toFixed(0)} this ${row.this.cpu.toFixed(0)} floor ${f.toFixed(0)}; ` +
      `base/floor ${(row.base.cpu / f).toFixed(2)} this/floor ${(row.this.cpu / f).toFixed(2)} this/base ${(row.this.cpu / row.base.cpu).toFixed(2)}; ` +
      `p99 late base ${row.base.p99?.toFixed(0)} this ${row.this.p99?.toFixed(0)} floor ${row.floor.p99?.toFixed(0)} ms; ` +
      `early/lost ${['base', 'this', 'floor'].map(n => `${row[n].early}/${row[n].lost}`).join(' ')}\n`)
  }
  process.stdout.write(`median over ${rounds} rounds: base/floor ${median(rows.map(r => r.base.cpu / r.floor.cpu)).toFixed(2)}, ` +
    `this/floor ${median(rows.map(r => r.this.cpu / r.floor.cpu)).toFixed(2)}, this/base ${median(rows.map(r => r.this.cpu / r.base.cpu)).toFixed(2)}\n`)
  // One storm's CPU scatters by half either way: the rounds summed, with their 95% interval.
  const summed = (a, b) => {
    const s = ratioOfSums(rows.map(r => [r[a].cpu, r[b].cpu]))
    return `${a}/${b} ${s.value?.toFixed(2)}${s.low === null ? '' : ` (${s.low.toFixed(2)}–${s.high.toFixed(2)})`}`
  }
  process.stdout.write(`all rounds summed: ${summed('base', 'floor')}, ${summed('this', 'floor')}, ${summed('this', 'base')}\n`)
} finally {
  await stopAll()
  await dead.close()
  rmSync(tmp, { recursive: true, force: true })
}
