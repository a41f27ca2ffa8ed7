// Operating the process: graceful drain, second signal, SIGHUP reload, workers.

import { writeFileSync } from 'node:fs'
import net from 'node:net'
import t from 'tap'
import { healthyOrigin } from '../../src/lab/healthy-origin.js'
import { listening, start } from '../cli-process.js'
import { get } from '../helpers.js'
import { total } from '../prometheus-text.js'

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
  const admin = String((await p.waitFor(l => l.msg === 'highproxy primary started')).admin)
  const first = await p.waitFor(listening)
  await p.waitFor(l => listening(l) && l.pid !== first.pid)
  const workers = p.logs.filter(listening)
  t.equal(new Set(workers.map(w => w.listen)).size, 1, 'one port')
  process.kill(Number(first.pid), 'SIGKILL')
  await p.waitFor(l => l.msg === 'worker died, starting another')
  const meanwhile = await get(`${admin}/readyz`)
  t.equal(meanwhile.status, 503, 'not ready while a worker is missing')
  t.match(JSON.parse(meanwhile.body), { status: 'starting', workers: { expected: 2, listening: 1 } })
  await p.waitFor(l => listening(l) && l.pid !== first.pid && !workers.some(w => w.pid === l.pid))
  t.equal((await get(`${String(first.listen)}/`)).status, 200, 'still serving')
  // The replacement says it listens over IPC just after its log line.
  let ready = await get(`${admin}/readyz`)
  for (let i = 0; ready.status !== 200 && i < 40; i++) {
    await new Promise(resolve => setTimeout(resolve, 50))
    ready = await get(`${admin}/readyz`)
  }
  t.equal(ready.status, 200, 'ready again once the replacement listens')
  t.equal(total((await get(`${admin}/metrics`)).body, 'highproxy_cluster_worker_restarts_total'), 1, 'the restart is counted')
  p.child.kill('SIGTERM')
  t.equal(await p.exited, 0)
})
