// The command line as a user runs it: `node dist/cli.js` in a child process (run
// `npm run build` first; `npm test` does). Exit codes, the one-line errors, and a real
// proxy started from flags and environment variables. All traffic stays on 127.0.0.1.

import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import { Agent, request } from 'undici'
import { SETTINGS } from '../../src/config/load.js'
import { healthyOrigin } from '../../src/lab/healthy-origin.js'
import { synDropOrigin } from '../../src/lab/faults.js'
import { refusedPort } from '../../src/lab/loopback.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const CLI = join(ROOT, 'dist', 'cli.js')
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version

if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first`)

type Env = Record<string, string>
type Line = Record<string, any>

/**
 * The parent's environment without any HIGHPROXY_* variable, plus `env`. tap's
 * NODE_OPTIONS (a process-tracking --import) is left out too: it only slows each start.
 * The admin listener gets a free port (its default, 9090, is one port for every
 * instance: tests running side by side would collide on it).
 */
function childEnv (env: Env): NodeJS.ProcessEnv {
  const clean = Object.fromEntries(Object.entries(process.env)
    .filter(([k]) => !k.startsWith('HIGHPROXY_') && !k.startsWith('_TAPJS_') && k !== 'NODE_OPTIONS'))
  return { ...clean, HIGHPROXY_ADMIN_PORT: '0', ...env }
}

interface Ran { code: number | null, signal: NodeJS.Signals | null, stdout: string, stderr: string }

/** Runs the CLI to its end (killed after `ms`). */
function run (args: string[], env: Env = {}, ms = 30_000): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, env: childEnv(env), stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (c: Buffer) => { stdout += c.toString() })
    child.stderr.on('data', (c: Buffer) => { stderr += c.toString() })
    const timer = setTimeout(() => child.kill('SIGKILL'), ms)
    child.once('error', reject)
    child.once('close', (code, signal) => { clearTimeout(timer); resolve({ code, signal, stdout, stderr }) })
  })
}

const lines = (text: string): string[] => text.split('\n').filter(l => l !== '')

interface Running {
  child: ChildProcess
  /** http://127.0.0.1:<port>, from the "highproxy listening" line. */
  url: string
  logs: Line[]
  stderr: () => string
  waitForLog: (match: (l: Line) => boolean, ms?: number) => Promise<Line>
  /** Sends `signal` and resolves with the exit code. */
  stop: (signal?: NodeJS.Signals) => Promise<number | null>
}

/** Starts the CLI and waits for its "highproxy listening" JSON line on stdout. */
async function start (t: Test, args: string[], env: Env = {}): Promise<Running> {
  const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, env: childEnv(env), stdio: ['ignore', 'pipe', 'pipe'] })
  const logs: Line[] = []
  const waiters = new Set<{ match: (l: Line) => boolean, resolve: (l: Line) => void }>()
  let stderr = ''
  let rest = ''
  child.stderr?.on('data', (c: Buffer) => { stderr += c.toString() })
  child.stdout?.on('data', (c: Buffer) => {
    const parts = (rest + c.toString()).split('\n')
    rest = parts.pop() ?? ''
    for (const text of parts) {
      if (text.trim() === '') continue
      let line: Line
      try { line = JSON.parse(text) as Line } catch { line = { msg: '(not JSON)', text } }
      logs.push(line)
      for (const w of [...waiters]) if (w.match(line)) { waiters.delete(w); w.resolve(line) }
    }
  })
  const exited = new Promise<number | null>(resolve => child.once('exit', code => resolve(code)))
  const waitForLog = (match: (l: Line) => boolean, ms = 10_000): Promise<Line> => {
    const found = logs.find(match)
    if (found !== undefined) return Promise.resolve(found)
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => { waiters.delete(waiter); reject(new Error(`log line not seen in ${ms} ms; stderr: ${stderr}`)) }, ms)
      const waiter = { match, resolve: (l: Line) => { clearTimeout(timer); resolve(l) } }
      waiters.add(waiter)
      void exited.then(code => { if (waiters.delete(waiter)) { clearTimeout(timer); reject(new Error(`exited ${code}; stderr: ${stderr}`)) } })
    })
  }
  const stop = async (signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal)
    return exited
  }
  // Whatever happens in the test, the child goes.
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) { child.kill('SIGKILL'); await exited }
  })
  // Generous: starting takes half a second of CPU, much more on a busy machine.
  const listening = await waitForLog(l => l.msg === 'highproxy listening', 20_000)
  return { child, url: String(listening.listen), logs, stderr: () => stderr, waitForLog, stop }
}

/** Our own pool, so no socket outlives a test. (Not test/helpers.ts: it loads the whole server.) */
const client = new Agent({ keepAliveTimeout: 10, pipelining: 0 })
t.teardown(() => client.close())

interface Got { status: number, headers: Record<string, string>, body: string, ms: number }

/** A GET that gives up after `ms` instead of waiting for a wrong timeout to fire. */
async function get (url: string, headers: Record<string, string> = {}, ms = 10_000): Promise<Got> {
  const begin = performance.now()
  const res = await request(url, { dispatcher: client, headers, signal: AbortSignal.timeout(ms) })
  const body = await res.body.text()
  return { status: res.statusCode, headers: res.headers as Record<string, string>, body, ms: performance.now() - begin }
}

/** A port something already listens on, until teardown. */
async function busyPort (t: Test): Promise<number> {
  const server = net.createServer()
  await new Promise<void>(resolve => server.listen({ host: '127.0.0.1', port: 0 }, () => resolve()))
  t.teardown(() => new Promise<void>(resolve => server.close(() => resolve())))
  return (server.address() as net.AddressInfo).port
}

/** A port free now and outside the ephemeral range: no port-0 listener beside this test can take it. */
const freePort = (): Promise<number> => refusedPort()

/** Runs `jobs` two at a time (each start of the CLI costs half a second of CPU). */
async function twoAtATime<T> (jobs: Array<() => Promise<T>>): Promise<T[]> {
  const results: T[] = []
  for (let i = 0; i < jobs.length; i += 2) results.push(...await Promise.all(jobs.slice(i, i + 2).map(j => j())))
  return results
}

t.test('--help, --version and an unknown flag', async t => {
  const [help, version, bogus] = await twoAtATime([() => run(['--help']), () => run(['--version']), () => run(['--bogus'])]) as [Ran, Ran, Ran]

  t.test('--help prints the usage with every flag and exits 0', async t => {
    t.equal(help.code, 0)
    t.equal(help.stderr, '')
    t.match(help.stdout, /^highproxy \d+\.\d+\.\d+/)
    t.match(help.stdout, /Usage:/)
    for (const s of SETTINGS) {
      t.match(help.stdout, `--${s.flag}`, `--${s.flag}`)
      t.match(help.stdout, s.env, s.env)
    }
    for (const flag of ['--config', '--help', '--version', '--json']) t.match(help.stdout, flag, flag)
    t.match(help.stdout, 'HIGHPROXY_CONFIG')
    t.match(help.stdout, /\blab\b/)
    t.match(help.stdout, /\bprobe\b/)
  })

  t.test('--version prints the package.json version', async t => {
    t.equal(version.code, 0)
    t.equal(version.stdout, `${VERSION}\n`)
    t.equal(version.stderr, '')
  })

  t.test('an unknown flag exits 2 with one line', async t => {
    t.equal(bogus.code, 2)
    t.equal(bogus.stdout, '')
    t.equal(lines(bogus.stderr).length, 1, bogus.stderr)
    t.match(bogus.stderr, /^highproxy: .*--bogus/)
    t.match(bogus.stderr, /--help/)
    t.equal(bogus.stderr.split("'").length % 2, 1, 'quotes balanced')
  })

  t.test('a misspelt flag: one line naming it and the nearest known one', async t => {
    const typo = await run(['--orign', 'http://127.0.0.1:1'])
    t.equal(typo.code, 2)
    t.equal(typo.stderr, 'highproxy: unknown flag --orign; did you mean --origin? (see --help)\n')
  })
})

t.test('bad configuration exits 2 with one stderr line naming the key or file', async t => {
  const dir = t.testdir({
    'unknown-key.yaml': 'listen:\n  port: 0\ncolour: blue\n'
  })
  // Each kind once (every key and problem is covered in test/unit/config.test.ts).
  const cases: Array<{ name: string, args?: string[], env?: Env, names: Array<string | RegExp> }> = [
    { name: '--connect-timeout 15x', args: ['--connect-timeout', '15x'], names: ['timeouts.connect', '--connect-timeout', '"15x"', '500ms, 15s, 2m or 1h'] },
    { name: '--port abc', args: ['--port', 'abc'], names: ['listen.port', '--port', '"abc"'] },
    { name: 'HIGHPROXY_ORIGIN=ftp://x', env: { HIGHPROXY_ORIGIN: 'ftp://x' }, names: [/config origin /, 'HIGHPROXY_ORIGIN', '"ftp://x"'] },
    { name: '--config /nonexistent.yaml', args: ['--config', '/nonexistent.yaml'], names: ['/nonexistent.yaml', 'ENOENT'] },
    { name: 'a file with an unknown key', args: ['--config', join(dir, 'unknown-key.yaml')], names: ['colour', 'unknown key'] }
  ]
  const results = await twoAtATime(cases.map(c => () => run(c.args ?? [], c.env ?? {})))
  cases.forEach((c, i) => {
    const r = results[i] as Ran
    t.test(c.name, async t => {
      t.equal(r.code, 2, 'exit 2')
      t.equal(r.stdout, '', 'nothing on stdout')
      t.equal(lines(r.stderr).length, 1, `one line: ${r.stderr}`)
      t.match(r.stderr, /^highproxy: config /)
      for (const n of c.names) t.match(r.stderr, n)
    })
  })
})

t.test('a port in use exits 1 with one line', async t => {
  const port = await busyPort(t)
  const r = await run(['--origin', 'http://127.0.0.1:9', '--port', String(port)])
  t.equal(r.code, 1, 'exit 1')
  t.equal(lines(r.stderr).length, 1, `one line: ${r.stderr}`)
  t.match(r.stderr, /^highproxy: .*in use/)
  t.match(r.stderr, `127.0.0.1:${port}`)
})

t.test('--origin with --port 0 proxies, and exits 0 on SIGTERM', async t => {
  const origin = await healthyOrigin()
  t.teardown(() => origin.close())
  // HIGHPROXY_PORT names a busy port: --port 0 must win over it.
  const busy = await busyPort(t)
  const proxy = await start(t, ['--origin', origin.url, '--port', '0'], { HIGHPROXY_PORT: String(busy) })
  t.match(proxy.url, /^http:\/\/127\.0\.0\.1:\d+$/)
  t.not(proxy.url, 'http://127.0.0.1:0', 'the port picked is reported')
  t.not(proxy.url, `http://127.0.0.1:${busy}`, '--port over HIGHPROXY_PORT')
  const listening = await proxy.waitForLog(l => l.msg === 'highproxy listening')
  t.match(JSON.stringify(listening.routes), origin.url, 'the one route goes to the origin')
  t.equal(proxy.stderr(), '', 'nothing on stderr: no demo banner with an origin')

  const res = await get(`${proxy.url}/hello?x=1`)
  t.equal(res.status, 200)
  t.match(res.body, /came through the proxy/)
  t.match(res.headers['cf-ray'], /^[0-9a-f]{16}-HPX$/)
  const echo = JSON.parse((await get(`${proxy.url}/echo`)).body)
  t.equal(echo.url, '/echo')
  t.equal(echo.headers.host, new URL(origin.url).host, 'host_header: origin by default')
  const access = await proxy.waitForLog(l => l.msg === 'access' && l.path === '/hello')
  t.equal(access.status, 200)
  t.equal(access.route, 'origin')
  const fault = await get(`${proxy.url}/`, { 'x-highproxy-fault': '521' })
  t.equal(fault.status, 200, 'fault injection is off by default')
  await proxy.waitForLog(l => l.msg === 'fault injection header ignored')

  t.equal(await proxy.stop('SIGTERM'), 0, 'exit 0 on SIGTERM')
  t.ok(proxy.logs.some(l => l.signal === 'SIGTERM'), 'logs the SIGTERM it got')
  t.equal(proxy.stderr(), '')
})

t.test('HIGHPROXY_CONFIG, HIGHPROXY_PORT and HIGHPROXY_HOST are used', async t => {
  const origin = await healthyOrigin()
  t.teardown(() => origin.close())
  const file = join(t.testdir({}), 'c.yaml')
  writeFileSync(file, `listen:\n  port: 1\n  host: 127.0.0.2\nroutes:\n  - origin: ${origin.url}\n    path: /api\n    strip_prefix: true\n`)
  const port = await freePort()
  const proxy = await start(t, [], { HIGHPROXY_CONFIG: file, HIGHPROXY_PORT: String(port), HIGHPROXY_HOST: '127.0.0.1' })
  t.equal(proxy.url, `http://127.0.0.1:${port}`, 'env over file for listen.host and listen.port')
  const echo = await get(`${proxy.url}/api/echo`)
  t.equal(echo.status, 200)
  t.equal(JSON.parse(echo.body).url, '/echo', 'the file\'s route, prefix stripped')
  t.equal((await get(`${proxy.url}/other`)).status, 404, 'no route → 404')
  t.equal(await proxy.stop(), 0)
})

// Precedence end to end, seen through behaviour: an injected 522 waits the route's
// connect timeout, and the failure line records it (timings.connect_ms). Each request
// gives up after 6 s, so a timeout that fails to apply (15s) fails fast.
t.test('connect timeout precedence: file < HIGHPROXY_CONNECT_TIMEOUT', async t => {
  const origin = await healthyOrigin()
  t.teardown(() => origin.close())
  const config = join(t.testdir({ 'config.yaml': 'timeouts:\n  connect: 900ms\n' }), 'config.yaml')
  // Fault injection from the environment in both: it is what makes the 522.
  const on = { HIGHPROXY_FAULT_INJECTION: 'true' }
  const cases: Array<{ name: string, args: string[], env: Env, expect: number }> = [
    { name: 'file', args: ['--config', config], env: on, expect: 900 },
    { name: 'env over file', args: ['--config', config], env: { ...on, HIGHPROXY_CONNECT_TIMEOUT: '600ms' }, expect: 600 }
  ]
  // Flag over env: the next test, on a real dropped SYN.
  const proxies = await Promise.all(cases.map(c => start(t, [...c.args, '--origin', origin.url, '--port', '0'], c.env)))
  const answers = await Promise.all(proxies.map(p =>
    get(`${p.url}/`, { 'x-highproxy-fault': '522', accept: 'application/json' }, 6000).catch((err: Error) => err)))
  for (const [i, c] of cases.entries()) {
    const proxy = proxies[i] as Running
    const res = answers[i]
    t.test(c.name, async t => {
      if (res instanceof Error || res === undefined) { t.fail(`no answer within 6 s: ${res?.message}`); return }
      t.equal(res.status, 522)
      t.ok(res.ms >= c.expect - 5, `answered after ${res.ms.toFixed(0)} ms, expected ${c.expect}`)
      const failure = await proxy.waitForLog(l => l.msg === 'origin failure')
      t.equal(failure.injected, true)
      t.equal(failure.timings.connect_ms, c.expect, 'the connect timeout used')
    })
  }
})

// Through a real dropped SYN: the kernel never answers, and the proxy gives up after
// --connect-timeout, not after HIGHPROXY_CONNECT_TIMEOUT, the file or the 15s default.
t.test('--connect-timeout wins over HIGHPROXY_CONNECT_TIMEOUT and the file, on a real dropped SYN', async t => {
  const origin = await synDropOrigin()
  t.teardown(() => origin.close())
  const config = join(t.testdir({ 'config.yaml': 'timeouts:\n  connect: 30s\n' }), 'config.yaml')
  const proxy = await start(t, ['--config', config, '--origin', origin.url, '--port', '0', '--connect-timeout', '400ms'],
    { HIGHPROXY_CONNECT_TIMEOUT: '20s' })
  let res
  try {
    res = await get(`${proxy.url}/`, { accept: 'application/json' }, 6000)
  } catch (err) {
    t.fail(`no answer within 6 s: ${(err as Error).message}`)
    return
  }
  t.equal(res.status, 522)
  // 400 ms plus scheduling; far below HIGHPROXY_CONNECT_TIMEOUT (20 s) or the default (15 s).
  t.ok(res.ms >= 395 && res.ms < 5000, `answered after ${res.ms.toFixed(0)} ms`)
  const failure = await proxy.waitForLog(l => l.msg === 'origin failure')
  t.equal(failure.error.code, 'HPX_ERR_CONNECT_TIMEOUT')
  t.match(failure.error.message, /within 400 ms/)
  t.equal(await proxy.stop(), 0)
})
