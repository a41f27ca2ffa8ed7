// The bench never runs in `npm test`; this only checks that its harness parses its
// flags, starts every server, sends one request to each and stops them all, and which
// readings its verdicts judge.

import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import t from 'tap'

const ROOT = fileURLToPath(new URL('..', import.meta.url))

interface Run { code: number | null, signal: NodeJS.Signals | null, stdout: string, stderr: string, ms: number }

function runBench (args: string[], timeoutMs: number): Promise<Run> {
  const started = Date.now()
  return new Promise(resolve => {
    // Not tap's process-tracking NODE_OPTIONS: every server the bench starts would load
    // tap's TypeScript loader (seconds per start on a busy machine, past the bench's waits).
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('_TAPJS_') && k !== 'NODE_OPTIONS'))
    const child = spawn(process.execPath, ['bench/run.mjs', ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (c: Buffer) => { stdout += c.toString() })
    child.stderr.on('data', (c: Buffer) => { stderr += c.toString() })
    const timer = setTimeout(() => child.kill('SIGINT'), timeoutMs)
    child.once('close', (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, stdout, stderr, ms: Date.now() - started })
    })
  })
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

t.test('bench --quick --dry-run starts and stops the harness and prints the tables', async t => {
  // A variant row and --highproxy-args, with flags that change nothing, to see both reach highproxy's CLI.
  const run = await runBench(['--quick', '--dry-run', '--highproxy-args', '--response-timeout 100s', '--variant', 'twin=--connect-timeout "15s"'], 40_000)
  if (run.code !== 0) t.comment(run.stderr.slice(-4000))
  t.equal(run.code, 0, 'exits 0')
  t.ok(run.ms < 40_000, `finished in ${run.ms} ms`)
  t.match(run.stdout, /\| case +\| target +\| req\/s +\| CPU µs\/req +\| × floor +\|/, 'healthy-path table header')
  t.match(run.stdout, `highproxy bench (dry-run) — `, 'the header')
  t.match(run.stdout, `Node rows on node ${process.version}`, 'the header names the Node the rows ran on')
  for (const target of ['direct', 'node floor', 'node floor + pino line', 'highproxy', 'highproxy (twin)', '@fastify/http-proxy', 'http-proxy']) {
    t.match(run.stdout, new RegExp(`\\| 200 "ok" \\(2 B\\) +\\| ${target.replace(/[/@()+]/g, '\\$&')} +\\|`), `${target} row`)
  }
  t.match(run.stdout, /Latency at a fixed 2,000 req\/s/, 'fixed-rate table')
  t.match(run.stdout, /\| target +\| req\/s +\| CPU µs\/req +\| p50 ms +\| p99 ms +\| p99\.9 ms +\| p99 added ms +\|/, 'fixed-rate table header')
  t.match(run.stdout, /The 522 storm/)
  t.match(run.stdout, /\| sent \/ 522 received +\| 3 \/ 3 +\|/, 'the dry run\'s storm of 3 got its 522s')
  t.match(run.stdout, /Error pages: 521/)
  t.match(run.stdout, /\| application\/json +\|/, '521 JSON row')
  t.match(run.stdout, /Drowning origin \(lab: service 25 ms, backlog 8/, 'drowning table')
  t.match(run.stdout, /\| highproxy \(defaults\) +\| 3 +\|/, 'the drowning row of the dry run sent its 3 requests')
  t.match(run.stdout, /note: origin: /, 'says which origin was used')
  for (const peer of ['nginx', 'haproxy']) {
    // Optional: either measured or skipped with a note saying why, never silently missing.
    t.match(run.stdout, new RegExp(`(\\| ${peer} +\\|)|(note: ${peer}: )`), `${peer}: a row or a note`)
  }
  t.notMatch(run.stdout, /failed to start/, 'no installed peer failed to start')
  const pids = (/stopped child processes: ([\d ]+)/.exec(run.stderr)?.[1] ?? '').trim().split(/\s+/).filter(Boolean).map(Number)
  t.ok(pids.length >= 8, `started ${pids.length} servers`)
  t.same(pids.filter(alive), [], 'no server left running')
})

t.test('bench refuses an unknown flag', async t => {
  const run = await runBench(['--no-such-flag'], 10_000)
  t.equal(run.code, 2)
  t.match(run.stderr, /Usage: npm run bench/)
})

t.test('bench --node: every Node row on that binary, named in the header; a path that is not node is refused; --tracing adds table 1c', async t => {
  const bad = await runBench(['--node', '/nonexistent/node'], 10_000)
  t.equal(bad.code, 2)
  t.match(bad.stderr, /--node \/nonexistent\/node: not a node binary/)
  const run = await runBench(['--quick', '--dry-run', '--only', 'healthy', '--tracing', '--no-write', '--node', process.execPath, '--compare-node', process.execPath], 60_000)
  if (run.code !== 0) t.comment(run.stderr.slice(-4000))
  t.equal(run.code, 0)
  t.match(run.stderr, `Node rows on node ${process.version} (${process.execPath}); compared with node ${process.version}`)
  t.match(run.stdout, `Node rows on node ${process.version}, compared with node ${process.version}`)
  for (const row of [`node floor @ node ${process.version}`, `highproxy @ node ${process.version}`]) {
    t.match(run.stdout, new RegExp(`\\| 200 "ok" \\(2 B\\) +\\| ${row.replace(/[/@()+.]/g, '\\$&')} +\\|`), `${row} row`)
  }
  // Tracing side by side: its copies were started (and stopped) and its rows are there.
  t.match(run.stdout, '1c. Tracing side by side: 1 trial, each of 2 fresh copies of a tracing configuration beside 2 of tracing off')
  for (const row of ['tracing off', 'tracing 1%', 'tracing 100%']) t.match(run.stdout, new RegExp(`\\| ${row} +\\|`), `${row} row`)
})

t.test('bench refuses a variant without a name', async t => {
  const run = await runBench(['--variant', '--workers 2'], 10_000)
  t.equal(run.code, 2)
  t.match(run.stderr, /--variant wants name="<args>"/)
})

t.test("the verdicts: a traced row is judged on table 1c only, not against the floor or at saturation", async t => {
  type Verdict = { target: string, ok: boolean | null }
  const { evaluateTargets } = await import(new URL('../bench/lib/report.mjs', import.meta.url).href) as { evaluateTargets: (results: unknown) => Verdict[] }
  const healthyRow = (target: string, kind: string, xFloor: number, xHighproxy: number | null = null): unknown =>
    ({ target, kind, rounds: [1], cpuUs: 50 * xFloor, xFloor, xHighproxy })
  const verdicts = evaluateTargets({
    healthy: {
      cases: [{
        case: 'small',
        label: '200 "ok" (2 B)',
        rows: [
          healthyRow('node floor', 'floor', 1),
          healthyRow('highproxy', 'highproxy', 1.3),
          healthyRow('highproxy (tracing 100%)', 'highproxy', 2.9, 2.2),
          healthyRow('highproxy (tracing 1%)', 'highproxy', 1.6, 1.25)
        ]
      }]
    },
    tracingCost: {
      rate: 1000,
      rows: [
        { target: 'tracing off', limit: null, rounds: [1], xOff: 1, cpuUs: 150 },
        { target: 'tracing 1%', limit: 1.05, rounds: [1.07], xOff: 1.07, cpuUs: 160 },
        { target: 'tracing 100%', limit: 1.35, rounds: [1.3], xOff: 1.3, cpuUs: 195 }
      ]
    }
  })
  t.same(verdicts.map(v => [v.target, v.ok]), [
    ['200 "ok" (2 B): highproxy CPU/req ≤ 1.4× bare node floor', true],
    ['2 B, side by side at 1,000 req/s: highproxy (tracing 1%) CPU/req ≤ 1.05× tracing off', false],
    ['2 B, side by side at 1,000 req/s: highproxy (tracing 100%) CPU/req ≤ 1.35× tracing off', true]
  ])
})

t.test('the verdicts: the storm against the floor is the median paired round, shown with all rounds summed and their 95% interval', async t => {
  type Verdict = { target: string, measured: string, ok: boolean | null }
  const { evaluateTargets } = await import(new URL('../bench/lib/report.mjs', import.meta.url).href) as { evaluateTargets: (results: unknown) => Verdict[] }
  const { ratioOfSums } = await import(new URL('../bench/lib/load.mjs', import.meta.url).href) as { ratioOfSums: (pairs: number[][]) => { value: number, low: number | null, high: number | null } }
  const pairs = [[200, 160], [300, 150], [150, 170], [250, 140], [180, 200], [400, 180], [220, 160], [190, 210], [260, 150]]
  const sums = ratioOfSums(pairs)
  t.equal(sums.value, pairs.reduce((n, p) => n + (p[0] as number), 0) / pairs.reduce((n, p) => n + (p[1] as number), 0))
  t.ok(sums.low !== null && sums.high !== null && sums.low < sums.value && sums.value < sums.high, 'the interval holds the figure')
  t.same(ratioOfSums(pairs), sums, 'seeded: the same results read the same')
  t.same(ratioOfSums([[1, 2], [2, 4], [3, 6], [4, 8]]), { value: 0.5, low: null, high: null }, 'no interval from fewer than five rounds')
  t.same(ratioOfSums([...pairs, [Number.NaN, 100], [100, null as unknown as number]]), sums, 'a round with a reading missing is no round')
  const wave = (cpu: number): unknown => ({ cpuPerRequest: cpu, client: { sent: 1000, got522: 1000, early: 0, lost: 0, lateness: { p99: 120 } }, rssPerPending: 4096 })
  const rounds = pairs.map(([a, b]) => ({ a: wave(a as number), b: wave(b as number), value: (a as number) / (b as number) }))
  const verdicts = evaluateTargets({ storm: { clean: wave(220), floor: wave(160), floorRatio: 220 / 160, floorSums: sums, rounds, pendingCap: 64 } })
  const storm = verdicts.find(v => v.target.includes('the Node storm floor'))
  t.equal(storm?.ok, false)
  t.match(storm?.measured, /^1\.38× \(median round: 220\.0 vs 160\.0 µs; paired rounds .*; all rounds summed 1\.41×, 95% interval 1\.\d\d×–1\.\d\d×\)$/)
})
