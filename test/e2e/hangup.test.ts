// A lost terminal and the signals around it: a hang-up with nothing to reload stops the
// proxy, with a config file it reloads; a dead terminal or pipe never crashes, spins or
// wedges shutdown; a route-less config is never taken on reload; fault signals keep their
// default action (a JavaScript listener on them made a real fault loop for ever).

import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { refusedPort } from '../../src/lab/loopback.js'
import { CLI, listening, start } from '../cli-process.js'

const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))
const hasScript = spawnSync('script', ['--version']).status === 0

const alive = (pid: number): boolean => { try { process.kill(pid, 0); return true } catch { return false } }

/** utime + stime of a process, in clock ticks. */
function cpuTicks (pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return Number(f[11]) + Number(f[12])
}

async function gone (pid: number, withinMs: number): Promise<boolean> {
  for (const until = Date.now() + withinMs; Date.now() < until;) {
    if (!alive(pid)) return true
    await sleep(50)
  }
  return !alive(pid)
}

/** A port free now and outside the ephemeral range: no port-0 listener beside this test can take it. */
const freePort = (): Promise<number> => refusedPort()

/** The CLI at a pseudo-terminal of its own; resolves once it listens on `port`, with its pid. */
async function atTerminal (t: Test, args: string[], port: number): Promise<{ script: ChildProcess, pid: number }> {
  const command = [process.execPath, CLI, ...args].map(a => `'${a}'`).join(' ')
  const script = spawn('script', ['-qfec', command, '/dev/null'], { stdio: ['pipe', 'ignore', 'ignore'], env: { ...process.env, TERM: 'xterm' } })
  t.teardown(() => { if (script.exitCode === null) script.kill('SIGKILL') })
  for (let i = 0; i < 200; i++) {
    const up = await new Promise<boolean>(resolve => { const s = net.connect(port, '127.0.0.1', () => { s.destroy(); resolve(true) }); s.on('error', () => resolve(false)) })
    if (up) break
    await sleep(50)
  }
  const pid = Number(spawnSync('pgrep', ['-f', `^${process.execPath} ${CLI} ${args.join(' ')}`.replace(/[.*+?[\]()]/g, '\\$&')], { encoding: 'utf8' }).stdout.trim().split('\n')[0])
  t.teardown(() => { if (pid > 0 && alive(pid)) process.kill(pid, 'SIGKILL') })
  return { script, pid }
}

const status = (port: number): Promise<number> => new Promise(resolve => {
  const s = net.connect(port, '127.0.0.1', () => s.write('GET / HTTP/1.1\r\nhost: x.test\r\nconnection: close\r\n\r\n'))
  let text = ''
  s.on('data', d => { text += d.toString() })
  s.on('close', () => resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0)))
  s.on('error', () => resolve(0))
})

t.test('the demo at a terminal that goes away: it stops, gracefully', { skip: hasScript ? false : 'util-linux script is missing' }, async t => {
  const port = await freePort()
  const { script, pid } = await atTerminal(t, ['--port', String(port), '--admin-port', '0'], port)
  t.ok(pid > 0 && alive(pid), 'the demo runs')
  t.equal(await status(port), 200)
  // Killing the terminal's owner closes the pty: the kernel hangs up its session.
  script.kill('SIGKILL')
  t.ok(await gone(pid, 5000), 'the hang-up stopped it (it used to keep serving with no terminal)')
  t.equal(await status(port), 0, 'nothing listens any more')
})

t.test('with a config file, a hang-up reloads; then SIGTERM exits at once, however dead the terminal', { skip: hasScript ? false : 'util-linux script is missing' }, async t => {
  const dir = mkdtempSync(join(tmpdir(), 'hp-hangup-'))
  const port = await freePort()
  const file = join(dir, 'config.yaml')
  writeFileSync(file, `origin: http://127.0.0.1:9\nlisten: { port: ${port} }\nadmin: { enabled: false }\n`)
  const { script, pid } = await atTerminal(t, ['--config', file], port)
  t.equal(await status(port), 521)
  script.kill('SIGKILL')
  await sleep(500)
  t.ok(alive(pid), 'a hang-up with a config file is a reload: still running')
  for (let i = 0; i < 5; i++) t.equal(await status(port), 521, 'and still answering, with its terminal gone')
  const before = cpuTicks(pid)
  process.kill(pid, 'SIGTERM')
  t.ok(await gone(pid, 5000), 'SIGTERM stopped it within seconds (it used to wait the whole grace, then spin in a SIGSEGV loop)')
  t.ok(!alive(pid) || cpuTicks(pid) - before < 50, 'and it never spun')
})

t.test('stdout closed under it (EPIPE): requests are served, SIGTERM exits 0', async t => {
  const port = await freePort()
  const child = spawn(process.execPath, [CLI, '--origin', 'http://127.0.0.1:9', '--port', String(port), '--admin-port', '0', '--log-format', 'json'], { stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  await new Promise<void>(resolve => child.stdout?.once('data', () => resolve()))
  child.stdout?.destroy()
  child.stderr?.destroy()
  for (let i = 0; i < 20; i++) t.equal(await status(port), 521)
  const exited = new Promise<number | null>(resolve => child.once('exit', code => resolve(code)))
  child.kill('SIGTERM')
  t.equal(await exited, 0, 'a clean exit, with nowhere to write its last lines')
})

t.test('fault signals keep their default action', async t => {
  const p = start(['--origin', 'http://127.0.0.1:9'])
  await p.waitFor(listening)
  const died = new Promise<NodeJS.Signals | null>(resolve => p.child.once('exit', (_code, signal) => resolve(signal)))
  p.child.kill('SIGSEGV')
  t.equal(await died, 'SIGSEGV', 'a SIGSEGV ends the process as the kernel means it to, not in a JavaScript handler')
})

t.test('reload refuses a config that routes nothing; the old one keeps serving', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'hp-reload-'))
  const file = join(dir, 'config.yaml')
  writeFileSync(file, 'origin: http://127.0.0.1:9\n')
  const p = start(['--config', file])
  t.teardown(() => { if (p.child.exitCode === null) p.child.kill('SIGKILL') })
  const up = await p.waitFor(listening)
  const port = Number(new URL(String(up.listen)).port)
  for (const content of ['', 'routes: []\n', '# caught half-written\n']) {
    writeFileSync(file, content)
    p.child.kill('SIGHUP')
    const line = await p.waitFor(l => l.msg === 'config reload rejected, old config kept' && !p.logs.slice(0, p.logs.indexOf(l)).includes(l), 5000)
    t.match(line, { level: 'error', error: 'it has no routes and no origin' }, `${JSON.stringify(content)}: refused, with one log line`)
    t.equal(await status(port), 521, `${JSON.stringify(content)}: the old config still answers`)
    p.logs.splice(0)
  }
})

t.test('two keys that contradict each other: one line, exit 2, at start', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'hp-rules-'))
  const file = join(dir, 'config.yaml')
  writeFileSync(file, 'origin: http://127.0.0.1:9\ntimeouts: { client_request: 2s }\n')
  const bad = spawnSync(process.execPath, [CLI, '--config', file], { encoding: 'utf8', timeout: 10_000 })
  t.equal(bad.status, 2)
  t.equal(bad.stderr, 'highproxy: config timeouts.client_headers: must be at most timeouts.client_request (2s) (got "10s")\n', 'one line naming the key')
  t.notMatch(bad.stderr, 'RangeError')
})
