#!/usr/bin/env node
// Tracing's cost in the proxy itself, this build against another, with nothing else in
// the rounds: highproxy processes of both builds (tracing off, and on at the given
// ratios, each exporting to its own OTLP receiver on loopback), loaded in turn for many
// short rounds (the order rotating), CPU per request of each process from /proc, and the
// ratios paired round by round. Fewer rows than `npm run bench --tracing --baseline`, so
// more rounds in the same time: what it takes to see a few percent on a loaded machine.
//   node bench/trace-proxy-ab.mjs --base <dist/cli.js of another build> [--ratios 0.01,1] [--rounds 15] [--seconds 1]
//     [--rate <req/s>]   a fixed rate below saturation instead of as fast as it goes: at
//                        saturation a little more CPU per request also means fewer requests per
//                        event-loop turn, so less batching of writes, which costs more per request
//                        again; at a fixed rate both builds batch alike and only the work differs
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { stopAll } from './lib/procs.mjs'
import { load, median } from './lib/load.mjs'
import { fixedLoad } from './lib/rate.mjs'
import { cpuWindow } from './lib/cpu.mjs'
import { otlpSink, startHighproxy, startOrigin } from './lib/servers.mjs'

const { values } = parseArgs({
  options: {
    base: { type: 'string' },
    ratios: { type: 'string', default: '0.01,1' },
    rounds: { type: 'string', default: '15' },
    seconds: { type: 'string', default: '1' },
    connections: { type: 'string', default: '50' },
    rate: { type: 'string' }
  }
})
if (values.base === undefined) { process.stderr.write('trace-proxy-ab: --base <dist/cli.js of another build> is required\n'); process.exit(2) }
const BASE = path.resolve(values.base)
const ROUNDS = Number(values.rounds)
const SECONDS = Number(values.seconds)
const CONNECTIONS = Number(values.connections)
const ratios = values.ratios.split(',').map(Number)
const RATE = values.rate === undefined ? null : Number(values.rate)
if (RATE !== null && !(RATE > 0)) throw new Error(`--rate: requests per second, got ${values.rate}`)
const measured = (port) => RATE === null
  ? load({ port, connections: CONNECTIONS, seconds: SECONDS })
  : fixedLoad({ port, connections: CONNECTIONS, rate: RATE, seconds: SECONDS })
const tmp = mkdtempSync(path.join(os.tmpdir(), 'trace-proxy-ab-'))

try {
  const origin = await startOrigin('auto', tmp)
  const targets = []
  for (const [build, cli] of [['this', undefined], ['base', BASE]]) {
    const opts = cli === undefined ? {} : { cli }
    targets.push({ name: `${build} off`, ...(await startHighproxy(`${build} off`, ['--origin', origin.url], opts)) })
    for (const ratio of ratios) {
      const sink = await otlpSink()
      const file = path.join(tmp, `tracing-${build}-${ratio}.yaml`)
      writeFileSync(file, `tracing:\n  enabled: true\n  endpoint: ${sink.url}\n  sampler: traceidratio\n  sampler_arg: ${ratio}\n`)
      targets.push({ name: `${build} ${ratio * 100}%`, ...(await startHighproxy(`${build} ${ratio * 100}%`, ['--origin', origin.url, '--config', file], opts)) })
    }
  }
  // Warm-up: the JIT, the origin connections, the exporters' first connection.
  for (const t of targets) await load({ port: t.port, connections: CONNECTIONS, seconds: 2 })
  const cpu = new Map(targets.map(t => [t.name, []]))
  for (let r = 0; r < ROUNDS; r++) {
    const order = targets.map((_, i) => targets[(i + r) % targets.length])
    for (const t of order) {
      const window = cpuWindow([t.proc.pid])
      const res = await measured(t.port)
      cpu.get(t.name).push(res.requests > 0 ? window()[0] / res.requests : NaN)
    }
    process.stderr.write(`round ${r + 1}/${ROUNDS}: ${targets.map(t => `${t.name} ${cpu.get(t.name)[r].toFixed(1)}`).join(', ')} µs CPU/req\n`)
  }
  const paired = (a, b) => cpu.get(a).map((x, i) => x / cpu.get(b)[i])
  const line = (a, b) => { const p = paired(a, b); return `| ${a} / ${b} | ${median(p).toFixed(2)}× | ${p.map(x => x.toFixed(2)).join(' ')} |` }
  console.log(`CPU µs per request, median of ${ROUNDS} rounds: ${targets.map(t => `${t.name} ${median(cpu.get(t.name)).toFixed(1)}`).join(', ')}`)
  console.log('| pair | median | per round |\n|---|---|---|')
  console.log(line('this off', 'base off'))
  for (const ratio of ratios) {
    const pct = `${ratio * 100}%`
    console.log(line(`this ${pct}`, `base ${pct}`))
    console.log(line(`this ${pct}`, 'this off'))
    console.log(line(`base ${pct}`, 'base off'))
  }
} finally {
  await stopAll()
  rmSync(tmp, { recursive: true, force: true })
}
