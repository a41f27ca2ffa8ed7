// The bench never runs in `npm test`; this only checks that its harness parses its
// flags, starts every server, sends one request to each and stops them all.

import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import t from 'tap'

const ROOT = fileURLToPath(new URL('..', import.meta.url))

interface Run { code: number | null, signal: NodeJS.Signals | null, stdout: string, stderr: string, ms: number }

function runBench (args: string[], timeoutMs: number): Promise<Run> {
  const started = Date.now()
  return new Promise(resolve => {
    const child = spawn(process.execPath, ['bench/run.mjs', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
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

t.test('bench --quick --dry-run starts and stops the harness and prints the table', async t => {
  const run = await runBench(['--quick', '--dry-run'], 18_000)
  if (run.code !== 0) t.comment(run.stderr.slice(-4000))
  t.equal(run.code, 0, 'exits 0')
  t.ok(run.ms < 20_000, `finished in ${run.ms} ms`)
  t.match(run.stdout, /\| case +\| target +\| req\/s +\| p50 ms +\| p99 ms +\|/, 'healthy-path table header')
  for (const target of ['direct', 'highproxy', '@fastify/http-proxy', 'http-proxy']) {
    t.match(run.stdout, new RegExp(`\\| ${target.replace(/[/@]/g, '\\$&')} +\\|`), `${target} row`)
  }
  t.match(run.stdout, /The 522 storm/)
  t.match(run.stdout, /Error pages: 521/)
  const pids = (/stopped child processes: ([\d ]+)/.exec(run.stderr)?.[1] ?? '').trim().split(/\s+/).filter(Boolean).map(Number)
  t.ok(pids.length >= 4, `started ${pids.length} servers`)
  t.same(pids.filter(alive), [], 'no server left running')
})

t.test('bench refuses an unknown flag', async t => {
  const run = await runBench(['--no-such-flag'], 10_000)
  t.equal(run.code, 2)
  t.match(run.stderr, /Usage: npm run bench/)
})
