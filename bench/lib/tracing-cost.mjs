// Tracing's cost read side by side at the same moment (`npm run bench -- --tracing`, table
// 1c): copies of highproxy with tracing on at 1% beside copies with tracing off, then copies
// with every request sampled beside others with tracing off, each group loaded at once,
// each copy at the same fixed rate, round after round; CPU per request of each from /proc,
// and the machine's idle share (the reading is meant below saturation). Why not only the
// saturation rows of table 1b:
// - at saturation a process that costs more per request serves fewer per second, so it
//   batches fewer writes per event-loop turn and costs more per request again: a few
//   percent of tracing read as 40% there;
// - targets loaded one after another meet the machine at different moments, and two
//   processes of one build differ by 5–20% in what the JIT made of them: an identical copy
//   read 1.19× in sequential rounds. Here every process meets the same moment, each
//   configuration is the mean of its copies, and fresh copies are started for each trial
//   (two copies of one build, side by side, still read up to 4% apart);
// - the JIT settles over the first half minute of load (with the exporter on the main
//   thread, as before the export thread, V8 deoptimized 68 times in the first 10 s, once
//   per 10 s after 30 s), so the rounds start after a warm-up of that length.

import { writeFileSync } from 'node:fs'
import path from 'node:path'
import { treeCpuUs } from './cpu.mjs'
import { load, median } from './load.mjs'
import { idleMeter } from './procs.mjs'
import { fixedLoad } from './rate.mjs'
import { otlpSink } from './servers.mjs'

export const TRACING_COST_ROWS = [
  { name: 'tracing off', ratio: null },
  { name: 'tracing 1%', ratio: 0.01, limit: 1.05 },
  { name: 'tracing 100%', ratio: 1, limit: 1.35 }
]

const mean = xs => xs.reduce((a, b) => a + b, 0) / xs.length

/**
 * @param start (name, args) => started highproxy ({ proc, port }), as run.mjs starts it
 * @param params { trials, copies, rate, connections, seconds, rounds, warmupSeconds, dryRun }
 * Each trial starts fresh copies (what the JIT makes of a process differs from one process
 * to the next by more than the few percent measured: one process, or two, is one draw of
 * that), and stops them; the rounds of every trial are pooled. Their OTLP sinks stop with
 * every other process the bench started, at its end.
 */
export async function tracingSideBySide ({ origin, tmp, start, log, params }) {
  // One group per traced configuration, each beside copies of tracing off of its own: all
  // six configurations' copies at once kept the machine 3–11% idle, and near saturation a
  // process's CPU per request moves with its neighbours (1% read 1.10× beside the 100%
  // copies, 1.05× in a group of its own, the same build, the same rate).
  const [off, ...traced] = TRACING_COST_ROWS
  const groups = traced.map(row => [off, row])
  const trials = []
  for (let t = 0; t < params.trials; t++) for (const group of groups) trials.push(await trial(t, group))
  const rows = TRACING_COST_ROWS.map(row => {
    const mine = trials.filter(tr => tr.group.includes(row))
    // Per trial, each round's mean of this configuration's copies, and that over its group's tracing off.
    const own = mine.map(tr => tr.offRounds.map((_, r) => mean(tr.perRow(row.name, r))))
    const ratios = mine.map((tr, t) => own[t].map((v, r) => v / tr.offRounds[r]))
    const rounds = ratios.flat()
    const copies = mine.flatMap(tr => tr.procs.flatMap((p, i) => p.row === row.name ? [median(tr.cpu[i].map((v, r) => v / tr.offRounds[r]))] : []))
    return {
      target: row.name, limit: row.limit ?? null, cpuUs: median(own.flat()), xOff: median(rounds), rounds, copies, perTrial: ratios.map(median),
      // The machine's idle share during its rounds: CPU per request is read below saturation.
      idlePct: median(mine.flatMap(tr => tr.idle))
    }
  })
  return { trials: params.trials, copies: params.copies, rate: params.rate, connections: params.connections, seconds: params.seconds, rounds: params.rounds, warmupSeconds: params.warmupSeconds, origin: origin.kind, rows }

  async function trial (t, group) {
    const procs = []
    const label = group.map(row => row.name).join(' and ')
    // Copy by copy, the group's rows in turn, the order swapped for each copy of each
    // trial: no configuration always starts (and is loaded) first. With one fixed order,
    // two 1% builds swapped places read 1.08× and 1.03×, then 1.08× and 1.07×: whatever a
    // place does must fall on every configuration alike.
    for (let c = 0; c < params.copies; c++) {
      for (const row of (t * params.copies + c) % 2 === 0 ? group : [...group].reverse()) {
        const args = ['--origin', origin.url]
        if (row.ratio !== null) {
          const sink = await otlpSink()
          const file = path.join(tmp, `tracing-cost-${row.ratio}-${t}-${c}.yaml`)
          writeFileSync(file, `tracing:\n  enabled: true\n  endpoint: ${sink.url}\n  sampler: traceidratio\n  sampler_arg: ${row.ratio}\n`)
          args.push('--config', file)
        }
        procs.push({ row: row.name, ...(await start(`highproxy (${row.name}; ${label}, trial ${t + 1}, copy ${c + 1})`, args)) })
      }
    }
    const loadAll = seconds => Promise.all(procs.map(p => fixedLoad({ port: p.port, connections: params.connections, rate: params.rate, seconds })))
    const cpu = procs.map(() => [])
    const idle = []
    /** Each copy's CPU per request in round r, for one configuration. */
    const perRow = (name, r) => procs.flatMap((p, i) => p.row === name ? [cpu[i][r]] : [])
    try {
      if (!params.dryRun) {
        for (const p of procs) await load({ port: p.port, connections: params.connections, seconds: 1 })
        // The rate client reports every answer's time: warm up in 5 s pieces.
        for (let s = 0; s < params.warmupSeconds; s += 5) await loadAll(5)
        for (let r = 0; r < params.rounds; r++) {
          const before = procs.map(p => treeCpuUs(p.proc.pid))
          const idlePct = idleMeter()
          const results = await loadAll(params.seconds)
          idle.push(idlePct())
          procs.forEach((p, i) => cpu[i].push(results[i].requests > 0 ? (treeCpuUs(p.proc.pid) - before[i]) / results[i].requests : NaN))
          log(`  tracing side by side (${label}), trial ${t + 1}/${params.trials}, round ${r + 1}/${params.rounds}: ${group.map(row => `${row.name} ${mean(perRow(row.name, r)).toFixed(1)}`).join(', ')} µs CPU/req, machine ${idle[r].toFixed(0)}% idle`)
        }
      }
    } finally {
      for (const p of procs) await p.proc.stop()
    }
    const offRounds = cpu[0].map((_, r) => mean(perRow(off.name, r)))
    return { group, procs, cpu, idle, perRow, offRounds }
  }
}
