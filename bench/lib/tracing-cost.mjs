// Tracing's cost read side by side at the same moment (`npm run bench -- --tracing`, table
// 1c): copies of highproxy with tracing off, on at 1% and on for every request, all loaded
// at once, each at the same fixed rate, round after round; CPU per request of each from
// /proc. Why not only the saturation rows of table 1b:
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
  const trials = []
  for (let t = 0; t < params.trials; t++) trials.push(await trial(t))
  const rows = TRACING_COST_ROWS.map(row => {
    // Per trial, each round's mean of this configuration's copies, and that over tracing off's.
    const own = trials.map(tr => tr.offRounds.map((_, r) => mean(tr.perRow(row.name, r))))
    const ratios = trials.map((tr, t) => own[t].map((v, r) => v / tr.offRounds[r]))
    const rounds = ratios.flat()
    const copies = trials.flatMap(tr => tr.procs.flatMap((p, i) => p.row === row.name ? [median(tr.cpu[i].map((v, r) => v / tr.offRounds[r]))] : []))
    return { target: row.name, limit: row.limit ?? null, cpuUs: median(own.flat()), xOff: median(rounds), rounds, copies, perTrial: ratios.map(median) }
  })
  return { trials: params.trials, copies: params.copies, rate: params.rate, connections: params.connections, seconds: params.seconds, rounds: params.rounds, warmupSeconds: params.warmupSeconds, origin: origin.kind, rows }

  async function trial (t) {
    const procs = []
    // Copy by copy, the rows in turn, rotated one place for each copy of each trial: over the
    // six copies of three trials every configuration starts (and is loaded) first, second and
    // third twice. With one fixed order, two 1% builds swapped places read 1.08× and 1.03×,
    // then 1.08× and 1.07×: whatever a position does must fall on every configuration alike.
    for (let c = 0; c < params.copies; c++) {
      const k = (t * params.copies + c) % TRACING_COST_ROWS.length
      for (const row of [...TRACING_COST_ROWS.slice(k), ...TRACING_COST_ROWS.slice(0, k)]) {
        const args = ['--origin', origin.url]
        if (row.ratio !== null) {
          const sink = await otlpSink()
          const file = path.join(tmp, `tracing-cost-${row.ratio}-${t}-${c}.yaml`)
          writeFileSync(file, `tracing:\n  enabled: true\n  endpoint: ${sink.url}\n  sampler: traceidratio\n  sampler_arg: ${row.ratio}\n`)
          args.push('--config', file)
        }
        procs.push({ row: row.name, ...(await start(`highproxy (${row.name}, trial ${t + 1}, copy ${c + 1})`, args)) })
      }
    }
    const loadAll = seconds => Promise.all(procs.map(p => fixedLoad({ port: p.port, connections: params.connections, rate: params.rate, seconds })))
    const cpu = procs.map(() => [])
    /** Each copy's CPU per request in round r, for one configuration. */
    const perRow = (name, r) => procs.flatMap((p, i) => p.row === name ? [cpu[i][r]] : [])
    try {
      if (!params.dryRun) {
        for (const p of procs) await load({ port: p.port, connections: params.connections, seconds: 1 })
        // The rate client reports every answer's time: warm up in 5 s pieces.
        for (let s = 0; s < params.warmupSeconds; s += 5) await loadAll(5)
        for (let r = 0; r < params.rounds; r++) {
          const before = procs.map(p => treeCpuUs(p.proc.pid))
          const results = await loadAll(params.seconds)
          procs.forEach((p, i) => cpu[i].push(results[i].requests > 0 ? (treeCpuUs(p.proc.pid) - before[i]) / results[i].requests : NaN))
          log(`  tracing side by side, trial ${t + 1}/${params.trials}, round ${r + 1}/${params.rounds}: ${TRACING_COST_ROWS.map(row => `${row.name} ${mean(perRow(row.name, r)).toFixed(1)}`).join(', ')} µs CPU/req`)
        }
      }
    } finally {
      for (const p of procs) await p.proc.stop()
    }
    const offRounds = cpu[0].map((_, r) => mean(perRow('tracing off', r)))
    return { procs, cpu, perRow, offRounds }
  }
}
