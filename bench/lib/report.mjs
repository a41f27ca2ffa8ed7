// What a run says: the tables (stdout and Markdown share them) and the issue's targets.

const DASH = '—'
const num = (v, digits = 0) => v == null || !Number.isFinite(v) ? DASH : v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })
const ms = v => num(v, 2)
const x = v => v == null || !Number.isFinite(v) ? DASH : `${v.toFixed(2)}×`
const kib = b => b == null ? DASH : `${(b / 1024).toFixed(1)} KiB`
const mib = b => b == null ? DASH : `${(b / 2 ** 20).toFixed(1)} MiB`
const signed = v => v == null || !Number.isFinite(v) ? DASH : `${v >= 0 ? '+' : ''}${v.toFixed(2)}`

export const HEALTHY_HEADER = ['case', 'target', 'req/s', 'p50 ms', 'p99 ms', 'p99 added ms', '× direct', '× highproxy', 'errors']

function tables (results) {
  const out = []
  const h = results.healthy
  if (h !== undefined) {
    out.push({
      title: `1. Healthy path (${h.connections} connections, median of ${h.rounds} interleaved rounds of ${h.seconds} s)`,
      header: HEALTHY_HEADER,
      rows: h.cases.flatMap(c => c.rows.map(r => [c.label, r.target, num(r.rps), ms(r.p50), ms(r.p99),
        r.target === 'direct' ? DASH : signed(r.p99Added), x(r.vsDirect), x(r.vsHighproxy), r.rounds.length ? num(r.problems) : DASH]))
    })
  }
  const w = results.workers
  if (w !== undefined) {
    out.push(w.available
      ? {
          title: '2. Workers (highproxy, small body)',
          header: ['processes', 'req/s', 'p50 ms', 'p99 ms', '× 1 process', 'errors'],
          rows: w.rows.map((r, i) => [r.target, num(r.rps), ms(r.p50), ms(r.p99), i === 0 ? '1.00×' : x(w.ratio), num(r.problems)])
        }
      : { title: '2. Workers', header: ['processes', 'result'], rows: [['highproxy --workers 2 vs 1', w.note]] })
  }
  const s = results.storm
  if (s !== undefined) {
    const c = s.client
    const sv = s.server
    const rows = [
      ['requests to the dead route, sent at once per wave', num(s.concurrency)],
      ['connect timeout', `${s.timeoutMs} ms`],
      ['waves (fresh proxy each) × healthy load per wave', `${s.rounds.length} × ${s.loadSeconds} s`],
      ['requests sent / 522 received', `${num(c?.sent)} / ${num(c?.got522)}`],
      ['522 answered at once (no connect waited for)', num(c?.immediate)],
      ['other answers', c === undefined ? DASH : Object.entries(c.statuses).filter(([k]) => k !== '522').map(([k, v]) => `${v}×${k}`).join(', ') || 'none'],
      ['lost (no answer)', c === undefined ? DASH : `${c.lost}${c.lost ? ` (${Object.entries(c.lostReasons).map(([k, v]) => `${v}× ${k}`).join(', ')})` : ''}`],
      ['early (before the timeout)', num(c?.early)],
      ['answers the storm client could not read', num(c?.badAnswers)],
      ['522 lateness, client view: median / p99 / max ms', c === undefined ? DASH : `${signed(c.latenessMedian)} / ${signed(c.latenessP99)} / ${signed(c.latenessMax)}`],
      ['connect timer lateness, proxy log: median / p99 / max ms', sv === undefined ? DASH : `${signed(sv.connectLateness.median)} / ${signed(sv.connectLateness.p99)} / ${signed(sv.connectLateness.max)}`],
      ['request to failure line, proxy log (total_ms − timeout): median / p99 / max ms', sv === undefined ? DASH : `${signed(sv.totalLateness.median)} / ${signed(sv.totalLateness.p99)} / ${signed(sv.totalLateness.max)}`],
      ['522 failure lines / 522 access lines in the proxy log', sv === undefined ? DASH : `${num(sv.failures522)} / ${num(sv.access522)}`],
      ['healthy route p99 ms: no storm → storm', `${ms(s.healthyP99NoStorm)} → ${ms(s.healthyP99Storm)} (${x(s.healthyP99NoStorm ? s.healthyP99Storm / s.healthyP99NoStorm : null)})`],
      ['healthy route req/s: no storm → storm', `${num(s.healthyRpsNoStorm)} → ${num(s.healthyRpsStorm)}`],
      ['healthy route errors during the storm', num(s.healthyProblemsStorm)],
      ['proxy RSS before → 2,000 pending → max', `${mib(s.rssBefore)} → ${mib(s.rssPending)} → ${mib(s.rssMax)}`],
      ['RSS per pending connect (median; each wave)', `${kib(s.rssPerPending)}${s.rssPerPendingRounds?.length > 1 ? ` (${s.rssPerPendingRounds.map(kib).join(', ')})` : ''}`],
      ['proxy open-file limit', num(s.fdLimit)]
    ]
    out.push({ title: '3. The 522 storm (SYN-dropping origin on /dead, healthy origin on /)', header: ['measure', 'value'], rows })
  }
  const e = results.errors
  if (e !== undefined) {
    out.push({
      title: '4. Error pages: 521 (refused origin), one highproxy process',
      header: ['answered as', 'req/s', 'p50 ms', 'p99 ms', 'body bytes', 'connection header', 'errors'],
      rows: e.rows.map(r => [r.accept, num(r.rps), ms(r.p50), ms(r.p99), num(r.check?.bytes), r.check?.connection ?? 'keep-alive', r.rounds.length ? num(r.problems) : DASH])
    })
  }
  if (results.targets?.length) {
    out.push({
      title: 'Targets',
      header: ['target', 'measured', 'result'],
      rows: results.targets.map(t => [t.target, t.measured, t.result])
    })
  }
  return out
}

function render (table, align) {
  const widths = table.header.map((h, i) => Math.max(h.length, ...table.rows.map(r => String(r[i]).length)))
  const line = cells => `| ${cells.map((c, i) => align ? String(c).padEnd(widths[i]) : String(c)).join(' | ')} |`
  return [line(table.header), `| ${widths.map(w => '-'.repeat(align ? w : 3)).join(' | ')} |`, ...table.rows.map(line)].join('\n')
}

export function printTables (results, stream) {
  const lines = [`\nhighproxy bench (${results.mode}) — ${results.machine.cores} × ${results.machine.cpu}, node ${results.machine.node}\n`]
  for (const t of tables(results)) lines.push(`${t.title}\n\n${render(t, true)}\n`)
  for (const n of results.notes ?? []) lines.push(`note: ${n}`)
  stream.write(lines.join('\n') + '\n')
}

export function markdown (results) {
  const m = results.machine
  const lines = [
    `# highproxy bench, ${results.date} (${results.mode})`,
    '',
    `Machine: ${m.cores} × ${m.cpu}, ${m.memoryGiB} GiB, ${m.kernel}, node ${m.node}${m.commit ? `, commit ${m.commit}` : ''}.`,
    `Versions: ${Object.entries(m.versions).map(([k, v]) => `${k} ${v}`).join(', ')}.`,
    `Run took ${results.seconds.toFixed(0)} s. Load generator: autocannon in the harness process, loopback only; every server in its own process, all on the same ${m.cores} cores.`,
    ''
  ]
  for (const t of tables(results)) lines.push(`## ${t.title}`, '', render(t, false), '')
  if (results.notes?.length) lines.push('## Notes', '', ...results.notes.map(n => `- ${n}`), '')
  lines.push('## How to read this', '',
    '- req/s is the median over interleaved rounds (A B C A B C…); p50/p99 are the medians of each round\'s exact percentiles (every response timed, not autocannon\'s 1 ms histogram).',
    '- "p99 added" is the target\'s p99 minus the direct p99 of the same case; "× direct" and "× highproxy" are req/s ratios.',
    '- The load generator, the origin and the proxy share the machine\'s cores: ratios measured in one run are what compares, not absolute numbers.',
    '- 522 lateness, client view: from writing the request (on a keep-alive connection the proxy had already accepted and served) to the first byte of the 522, minus the connect timeout. Proxy log: the failure line\'s `timings.connect_ms` (when the connect timer fired) and `timings.total_ms` (from the request\'s arrival), minus the timeout. Client minus proxy total = time to render, log and write the answer, and to read the request in.',
    '- Each storm wave runs on a fresh proxy (an origin that timed out may then be marked down and answered at once): 2,000 requests are written at once, the healthy load starts while they pend and lasts past the moment their timers fire. "Answered at once" = a 522 in less than half the timeout: it waited for no connect, and is left out of the lateness figures.',
    '- RSS per pending connect: (proxy VmRSS with 2,000 requests pending − VmRSS before the storm) / 2,000.',
    '')
  return lines.join('\n')
}

const verdict = (ok) => ok === null ? 'not measured' : ok ? 'reached' : 'NOT reached'

export function evaluateTargets (results) {
  const out = []
  const add = (target, measured, ok) => out.push({ target, measured, result: verdict(ok), ok })
  for (const c of results.healthy?.cases ?? []) {
    const hp = c.rows.find(r => r.target === 'highproxy')
    const fhp = c.rows.find(r => r.target === '@fastify/http-proxy')
    const np = c.rows.find(r => r.target === 'http-proxy')
    const r1 = hp && fhp ? hp.rps / fhp.rps : null
    const r2 = hp && np ? hp.rps / np.rps : null
    add(`${c.label}: highproxy ≥ 1.1× @fastify/http-proxy req/s`, x(r1), r1 === null ? null : r1 >= 1.1)
    add(`${c.label}: highproxy ≥ 1.3× http-proxy req/s`, x(r2), r2 === null ? null : r2 >= 1.3)
    add(`${c.label}: highproxy p99 added over direct ≤ 1 ms`, `${signed(hp?.p99Added)} ms`, hp?.p99Added == null ? null : hp.p99Added <= 1)
  }
  const w = results.workers
  if (w !== undefined) add('--workers 2 ≥ 1.6× one process', w.available ? x(w.ratio) : 'not available', w.available ? w.ratio >= 1.6 : null)
  const s = results.storm
  if (s?.client !== undefined) {
    add('522 storm: p99 lateness ≤ +50 ms (client view)', `${signed(s.client.latenessP99)} ms`, s.client.latenessP99 <= 50)
    add('522 storm: none lost', num(s.client.lost), s.client.lost === 0)
    add('522 storm: none early', num(s.client.early), s.client.early === 0)
    const r = s.healthyP99NoStorm ? s.healthyP99Storm / s.healthyP99NoStorm : null
    add('522 storm: healthy p99 ≤ 1.2× no-storm p99', `${x(r)} (${ms(s.healthyP99NoStorm)} → ${ms(s.healthyP99Storm)} ms)`, r === null ? null : r <= 1.2)
    add('522 storm: ≤ 8 KiB RSS per pending connect', kib(s.rssPerPending), s.rssPerPending == null ? null : s.rssPerPending <= 8 * 1024)
  }
  for (const r of results.errors?.rows ?? []) {
    add(`521 as ${r.accept}: ≥ 20k req/s`, num(r.rps), r.rps == null ? null : r.rps >= 20_000)
  }
  return out
}
