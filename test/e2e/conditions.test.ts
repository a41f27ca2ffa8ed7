// Origin conditions (up, drowning, down, recovering), from real faults on loopback: what
// each attempt measured names the condition in the failure line, Proxy-Status, the page
// and one log line per change; slow start ramps a recovering origin's share.

import { execFile } from 'node:child_process'
import http from 'node:http'
import net from 'node:net'
import { writeFileSync } from 'node:fs'
import { Writable } from 'node:stream'
import { promisify } from 'node:util'
import t from 'tap'
import { Client } from 'undici'
import { drowningOrigin, refusedOrigin, synDropOrigin } from '../../src/lab/faults.js'
import { healthyOrigin } from '../../src/lab/healthy-origin.js'
import { createLogger } from '../../src/log/log.js'
import { CLI, startWorkers } from '../cli-process.js'
import { failureFor, get, rayOf, startProxy, type LogLine } from '../helpers.js'
import { total } from '../prometheus-text.js'

const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))
const conditionLines = (logs: LogLine[]): LogLine[] => logs.filter(l => l.msg === 'origin condition')
const json = { accept: 'application/json' }

t.test('refused → down: the failure line, Proxy-Status, the page, one transition line', async t => {
  const origin = await refusedOrigin()
  const proxy = await startProxy({ routes: [{ origin: origin.url }] })
  t.teardown(() => proxy.close())
  const first = await get(`${proxy.url}/`, { headers: json })
  t.equal(first.status, 521)
  const failure = await proxy.waitForLog(failureFor(rayOf(first)))
  t.equal(failure.origin_condition, 'down')
  t.match(first.headers['proxy-status'], /details="[^"]*; origin down: its last connect was refused \(RST\): nothing listens there"/)
  t.match(JSON.parse(first.body).owner_action, /The origin appears to be down: its last connect was refused/)
  const second = await get(`${proxy.url}/`, { headers: json })
  t.equal(second.status, 521)
  t.match(second.headers['proxy-status'], /its last 2 connects were refused/)
  const lines = conditionLines(proxy.logs)
  t.equal(lines.length, 1, 'the change is logged once, not per request')
  t.match(lines[0], { level: 'warn', pool: String(proxy.config.edge.routes[0]?.pool.name), origin: origin.url, from: 'up', condition: 'down' })
})

t.test('SYN drops → drowning, named on the 522 page and in Proxy-Status', async t => {
  const origin = await synDropOrigin()
  t.teardown(() => origin.close())
  const proxy = await startProxy({ routes: [{ origin: origin.url, connect_timeout: '300ms' }] })
  t.teardown(() => proxy.close())
  const res = await get(`${proxy.url}/`, { headers: json })
  t.equal(res.status, 522)
  const failure = await proxy.waitForLog(failureFor(rayOf(res)))
  t.equal(failure.origin_condition, 'drowning')
  t.match(res.headers['proxy-status'], /error=connection_timeout;.*details="[^"]*; origin drowning: 1 of its last 1 connect timed out"/)
  t.match(JSON.parse(res.body).owner_action, /The origin appears to be drowning: 1 of its last 1 connect timed out\.$/)
  // The HTML page says it in the owner's part.
  const page = await get(`${proxy.url}/`)
  t.match(page.body, /<p>[^<]*The origin appears to be drowning: 2 of its last 2 connects timed out\.<\/p>/)
  t.match(conditionLines(proxy.logs), [{ from: 'up', condition: 'drowning', evidence: '1 of its last 1 connect timed out' }])
  // The pretty format says it on the failure's line.
  let pretty = ''
  const { msg: _msg, level: _level, time: _time, ...record } = failure
  createLogger('info', 'pretty', new Writable({ write (c: Buffer, _e, cb) { pretty += c.toString(); cb() } })).warn(record, 'origin failure')
  t.match(pretty, /✗ 522 connect .*\(origin drowning\)/)
  t.equal(conditionLines(proxy.logs).length, 1)
})

/** Connects until one no longer completes within 300 ms: the origin's accept queue is full and it accepts nothing. */
async function fillQueue (url: string, sockets: net.Socket[]): Promise<void> {
  const { hostname, port } = new URL(url)
  for (let i = 0; i < 100; i++) {
    const socket = net.connect({ host: hostname, port: Number(port) })
    socket.on('error', () => {})
    sockets.push(socket)
    const connected = await new Promise<boolean>(resolve => {
      const timer = setTimeout(() => resolve(false), 300)
      socket.once('connect', () => { clearTimeout(timer); resolve(true) })
    })
    if (!connected) return
    await sleep(20)
  }
  throw new Error('the accept queue never filled')
}

t.test('connects that needed a SYN retransmit (whole seconds) → drowning, though every request is answered', async t => {
  // The drowning origin is held by one request for 3 s; its accept queue (backlog 1) is
  // filled, so the proxy's SYNs are dropped and only a retransmit gets through.
  const origin = await drowningOrigin({ service_ms: 3000, backlog: 1 })
  const sockets: net.Socket[] = []
  t.teardown(async () => { for (const s of sockets) s.destroy(); await origin.close() })
  const proxy = await startProxy({ routes: [{ origin: origin.url, connect_timeout: '10s', response_timeout: '20s' }] })
  t.teardown(() => proxy.close())
  const busy = new Client(origin.url)
  t.teardown(() => busy.destroy())
  busy.request({ method: 'GET', path: '/' }).then(r => r.body.dump(), () => {})
  await fillQueue(origin.url, sockets)
  const answers = await Promise.all([get(`${proxy.url}/a`, { fresh: true }), get(`${proxy.url}/b`, { fresh: true })])
  t.same(answers.map(a => a.status), [200, 200], 'both answered, late')
  const line = await proxy.waitForLog(l => l.msg === 'origin condition')
  t.match(line, { from: 'up', condition: 'drowning' })
  t.match(line.evidence, /^2 of 2 connects took \d+(–\d+)? s, which is the kernel retrying dropped SYNs$/)
  const connects = proxy.logs.filter(l => l.msg === 'access').map(l => Number(l.connect_ms))
  t.ok(connects.every(ms => ms >= 950), `the proxy's connects took ${connects.join(', ')} ms`)
})

/** An origin on a port that can be closed (refused) and opened again; its answers name it. */
async function switchable (name: string): Promise<{ url: string, open: () => Promise<void>, close: () => Promise<void> }> {
  let server: http.Server | null = null
  let port = 0
  const open = async (): Promise<void> => {
    server = http.createServer((_req, res) => res.end(name))
    server.keepAliveTimeout = 1
    await new Promise<void>(resolve => server?.listen({ host: '127.0.0.1', port }, () => resolve()))
    port = (server.address() as net.AddressInfo).port
  }
  const close = async (): Promise<void> => {
    const s = server
    server = null
    if (s !== null) await new Promise<void>(resolve => { s.close(() => resolve()); s.closeAllConnections() })
  }
  await open()
  return { url: `http://127.0.0.1:${port}`, open, close }
}

t.test('down → recovering → up: slow start ramps the origin back in, then the condition ends', async t => {
  const steady = await switchable('steady')
  const back = await switchable('back')
  t.teardown(async () => { await steady.close(); await back.close() })
  const SLOW_START_MS = 4000
  const proxy = await startProxy({
    pools: [{ name: 'web', origins: [steady.url, back.url], slow_start: `${SLOW_START_MS}ms`, health: { failures: 1, cooldown: '200ms' } }],
    routes: [{ pool: 'web' }]
  })
  t.teardown(() => proxy.close())
  await back.close()
  // Failover keeps every answer a 200 while `back` refuses.
  for (let i = 0; i < 4; i++) t.equal((await get(`${proxy.url}/`, { fresh: true })).body, 'steady')
  t.match(conditionLines(proxy.logs), [{ origin: back.url, condition: 'down' }])
  await back.open()

  // Two clients, each about 40 requests a second, each request noting who answered and when.
  const seen: Array<{ at: number, who: string }> = []
  const recovering = proxy.waitForLog(l => l.msg === 'origin condition' && l.condition === 'recovering', 10_000)
  const upAgain = proxy.waitForLog(l => l.msg === 'origin condition' && l.condition === 'up', 20_000)
  let stop = false
  void upAgain.then(() => sleep(1500)).then(() => { stop = true }, () => { stop = true })
  await Promise.all([0, 1].map(async () => {
    while (!stop) {
      const res = await get(`${proxy.url}/`, { fresh: true })
      seen.push({ at: Date.now(), who: res.body })
      await sleep(20)
    }
  }))
  const start = Date.parse((await recovering).time)
  const end = Date.parse((await upAgain).time)
  t.ok(end - start >= SLOW_START_MS - 50, `recovering lasted ${end - start} ms (slow start ${SLOW_START_MS} ms)`)
  const share = (from: number, to: number): { share: number, n: number } => {
    const part = seen.filter(s => s.at >= from && s.at < to)
    return { share: part.filter(s => s.who === 'back').length / Math.max(1, part.length), n: part.length }
  }
  // Its weight: 5–25% in the first quarter (about half that of the answers, with round
  // robin), 75–100% in the last.
  const quarter = SLOW_START_MS / 4
  const first = share(start, start + quarter)
  const last = share(end - quarter, end)
  const after = share(end, end + 1500)
  t.comment(`share of the recovering origin: first quarter ${first.share.toFixed(2)} (n=${first.n}), last quarter ${last.share.toFixed(2)} (n=${last.n}), after ${after.share.toFixed(2)} (n=${after.n})`)
  t.ok(first.n >= 15 && last.n >= 15, 'enough requests in each quarter to tell')
  t.ok(first.share < 0.25, 'its share starts low')
  t.ok(last.share > first.share + 0.1, 'and grows')
  t.ok(after.share > 0.4, 'once up, an even share again (round robin)')
  const changes = conditionLines(proxy.logs).filter(l => l.origin === back.url).map(l => l.condition)
  t.same(changes, ['down', 'recovering', 'up'], 'each change logged once')
})

t.test('GET /origins and highproxy_origin_condition with --workers 2', async t => {
  const healthy = await healthyOrigin()
  const refused = await refusedOrigin()
  t.teardown(() => healthy.close())
  const file = `${t.testdir({})}/config.yaml`
  writeFileSync(file, `pools:\n  - { name: web, origins: ["${healthy.url}", "${refused.url}"], health: { failures: 100 } }\nroutes:\n  - { pool: web }\n`)
  const p = await startWorkers(['--config', file], 2)
  t.teardown(() => { p.child.kill('SIGKILL') })
  // New connections: the primary hands them to the workers in turn.
  for (let i = 0; i < 12; i++) t.equal((await get(`${p.listen}/`, { fresh: true })).status, 200)
  const res = await get(`${p.admin}/origins`)
  t.equal(res.status, 200)
  const body = JSON.parse(res.body)
  t.same(body.unanswered, [])
  t.equal(body.pools.length, 1)
  const [up, down] = body.pools[0].origins
  t.match(up, { origin: healthy.url, condition: 'up', evidence: '', in_flight: 0, limit: null })
  t.match(down, { origin: refused.url, condition: 'down', evidence: /refused/, in_flight: 0, limit: null })
  t.equal(down.workers.length, 2, 'each worker has its row')
  t.same(down.workers.map((w: { pid: number }) => w.pid).sort(), [...p.pids].sort())
  const downWorkers = down.workers.filter((w: { condition: string }) => w.condition === 'down').length
  t.ok(downWorkers >= 1)
  t.ok(!Number.isNaN(Date.parse(down.since)), 'since is a time')

  const text = (await get(`${p.admin}/metrics`)).body
  const origin = new URL(refused.url).host
  t.equal(total(text, 'highproxy_origin_condition', { pool: 'web', origin, condition: 'down' }), downWorkers, 'the workers that see it down')
  t.equal(total(text, 'highproxy_origin_condition', { pool: 'web', origin }), 2, 'one condition per worker')
  t.equal(total(text, 'highproxy_origin_condition', { pool: 'web', origin: new URL(healthy.url).host, condition: 'up' }), 2)
})

const run = promisify(execFile)

t.test('bad slow_start: one line naming the key, exit 2', async t => {
  for (const [value, problem] of [['25h', /longer than a day/], ['-5s', /0s: off/], ['soon', /a duration like 30s/]] as const) {
    const file = `${t.testdir({})}/config.yaml`
    writeFileSync(file, `pools:\n  - { name: web, origins: ["http://127.0.0.1:9"], slow_start: "${value}" }\nroutes:\n  - { pool: web }\n`)
    const err = await run(process.execPath, [CLI, '--config', file, '--port', '0']).then(() => null, (e: { code: number, stderr: string, stdout: string }) => e)
    t.equal(err?.code, 2, `${value}: exit 2`)
    t.equal(err?.stderr.trim().split('\n').length, 1, `one line: ${err?.stderr ?? ''}`)
    t.match(err?.stderr, /pools\.0\.slow_start/)
    t.match(err?.stderr, problem)
  }
})
