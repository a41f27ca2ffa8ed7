// Operating the process: graceful drain, second signal, SIGHUP reload, workers.

import { spawn, type ChildProcess } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import net from 'node:net'
import t from 'tap'
import { healthyOrigin } from '../../src/lab/healthy-origin.js'
import { get, type LogLine } from '../helpers.js'

const CLI = new URL('../../dist/cli.js', import.meta.url).pathname

interface Running { child: ChildProcess, logs: LogLine[], waitFor: (m: (l: LogLine) => boolean, ms?: number) => Promise<LogLine>, exited: Promise<number | null> }

function start (args: string[]): Running {
  const child = spawn(process.execPath, [CLI, '--port', '0', '--admin-port', '0', '--log-format', 'json', ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  const logs: LogLine[] = []
  const waiters: Array<[(l: LogLine) => boolean, (l: LogLine) => void]> = []
  let buffer = ''
  child.stdout?.on('data', (d: Buffer) => {
    buffer += d.toString()
    let nl
    while ((nl = buffer.indexOf('\n')) !== -1) {
      const line = buffer.slice(0, nl)
      buffer = buffer.slice(nl + 1)
      if (!line.startsWith('{')) continue
      const parsed = JSON.parse(line) as LogLine
      logs.push(parsed)
      for (const w of [...waiters]) if (w[0](parsed)) { waiters.splice(waiters.indexOf(w), 1); w[1](parsed) }
    }
  })
  const exited = new Promise<number | null>(resolve => child.once('exit', code => resolve(code)))
  const waitFor = (m: (l: LogLine) => boolean, ms = 8000): Promise<LogLine> => {
    const found = logs.find(m)
    if (found !== undefined) return Promise.resolve(found)
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('log line not seen')), ms)
      waiters.push([m, l => { clearTimeout(timer); resolve(l) }])
    })
  }
  return { child, logs, waitFor, exited }
}

const listening = (l: LogLine): boolean => l.msg === 'highproxy listening'

function refused (url: string): Promise<boolean> {
  const { hostname, port } = new URL(url)
  return new Promise(resolve => {
    const s = net.connect({ host: hostname, port: Number(port) })
    s.once('connect', () => { s.destroy(); resolve(false) })
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ECONNREFUSED'))
  })
}

t.test('SIGTERM drains: the in-flight request completes, new connections are refused, exit 0', async t => {
  const origin = await healthyOrigin()
  t.teardown(() => origin.close())
  const p = start(['--origin', origin.url])
  t.teardown(() => { p.child.kill('SIGKILL') })
  const { listen, admin } = await p.waitFor(listening)
  t.equal((await get(`${String(admin)}/readyz`)).status, 200)
  const inflight = get(`${String(listen)}/slow?ms=1500`)
  await new Promise(resolve => setTimeout(resolve, 200))
  const signalled = performance.now()
  p.child.kill('SIGTERM')
  await p.waitFor(l => String(l.msg).startsWith('draining'))
  t.equal((await get(`${String(admin)}/readyz`)).status, 503, '/readyz turns 503 while draining')
  t.ok(await refused(String(listen)), 'new connections are refused')
  const res = await inflight
  t.equal(res.status, 200)
  t.equal(res.body, 'slow but fine\n')
  t.equal(await p.exited, 0)
  const took = performance.now() - signalled
  t.ok(took < 3000, `exited ${took.toFixed(0)} ms after SIGTERM`)
})

t.test('a second signal exits at once', async t => {
  const origin = await healthyOrigin()
  t.teardown(() => origin.close())
  const p = start(['--origin', origin.url])
  t.teardown(() => { p.child.kill('SIGKILL') })
  const { listen } = await p.waitFor(listening)
  const inflight = get(`${String(listen)}/slow?ms=5000`).catch(() => null)
  await new Promise(resolve => setTimeout(resolve, 200))
  const signalled = performance.now()
  p.child.kill('SIGTERM')
  await p.waitFor(l => String(l.msg).startsWith('draining'))
  p.child.kill('SIGTERM')
  const code = await p.exited
  t.not(code, 0)
  t.ok(performance.now() - signalled < 2000, 'did not wait for the 5 s request')
  await inflight
})

t.test('SIGHUP reloads the config file; a bad file is rejected and the old one kept', async t => {
  const a = await healthyOrigin()
  const b = await healthyOrigin()
  t.teardown(async () => { await a.close(); await b.close() })
  const dir = t.testdir({})
  const file = `${dir}/config.yaml`
  writeFileSync(file, `routes:\n  - origin: ${a.url}\n`)
  const p = start(['--config', file])
  t.teardown(() => { p.child.kill('SIGKILL') })
  const { listen } = await p.waitFor(listening)
  const hostOf = async (): Promise<string> => JSON.parse((await get(`${String(listen)}/echo`)).body).headers.host
  t.equal(await hostOf(), new URL(a.url).host)
  writeFileSync(file, `routes:\n  - origin: ${b.url}\n`)
  p.child.kill('SIGHUP')
  await p.waitFor(l => l.msg === 'config reloaded')
  t.equal(await hostOf(), new URL(b.url).host, 'new requests use the new routes')
  writeFileSync(file, 'routes: [ {origin: ftp://nope} ]\n')
  p.child.kill('SIGHUP')
  const rejected = await p.waitFor(l => String(l.msg).includes('reload rejected'))
  t.match(rejected.error, /routes\.0\.origin/)
  t.equal(await hostOf(), new URL(b.url).host, 'the old config is kept')
  p.child.kill('SIGTERM')
  t.equal(await p.exited, 0)
})

t.test('--workers 2: two processes on one port; a crashed worker is replaced', async t => {
  const origin = await healthyOrigin()
  t.teardown(() => origin.close())
  const p = start(['--origin', origin.url, '--workers', '2'])
  t.teardown(() => { p.child.kill('SIGKILL') })
  await p.waitFor(l => l.msg === 'highproxy primary started')
  const first = await p.waitFor(listening)
  await p.waitFor(l => listening(l) && l.pid !== first.pid)
  const workers = p.logs.filter(listening)
  t.equal(new Set(workers.map(w => w.listen)).size, 1, 'one port')
  process.kill(Number(first.pid), 'SIGKILL')
  await p.waitFor(l => l.msg === 'worker died, starting another')
  await p.waitFor(l => listening(l) && l.pid !== first.pid && !workers.some(w => w.pid === l.pid))
  t.equal((await get(`${String(first.listen)}/`)).status, 200, 'still serving')
  p.child.kill('SIGTERM')
  t.equal(await p.exited, 0)
})
