// Fault injection: with fault_injection on, `x-highproxy-fault: <status>` makes the edge
// answer as if that fault had happened, without touching the origin; with it off the
// header is ignored (and logged) and the request is proxied as usual.

import http from 'node:http'
import t from 'tap'
import { CATALOG, ORIGIN_FAULT_STATUSES } from '../../src/status/catalog.js'
import type { ErrorBody } from '../../src/page/render.js'
import { closeWithConnections, listenLoopback } from '../../src/lab/loopback.js'
import { accessFor, failureFor, rayOf, startProxy, type Got, type LogLine } from '../helpers.js'
import { getWithin, timed, oneOfTwo, shown, type Timed } from '../timing.js'

const CONNECT_MS = 400
const RESPONSE_MS = 500
const TIMEOUTS = { connect: `${CONNECT_MS}ms`, response: `${RESPONSE_MS}ms` }
const SLACK_MS = 150


/** A real origin that counts what reaches it. */
async function countingOrigin (): Promise<{ url: string, hits: () => number, close: () => Promise<void> }> {
  let hits = 0
  const server = http.createServer((_req, res) => { hits++; res.end('origin ok\n') })
  const close = closeWithConnections(server)
  const port = await listenLoopback(server)
  return { url: `http://127.0.0.1:${port}`, hits: () => hits, close }
}

/** Every injected answer comes within 3 s, the 522 and 524 waits included. */
const DEADLINE_MS = 3000

const ignoredFor = (ray: string) => (l: LogLine): boolean => l.msg === 'fault injection header ignored' && l.ray_id === ray

t.test('fault injection on: every origin fault status on demand, the origin untouched', async t => {
  const origin = await countingOrigin()
  t.teardown(() => origin.close())
  const proxy = await startProxy({
    timeouts: TIMEOUTS,
    fault_injection: true,
    routes: [{ origin: origin.url, connect_timeout: TIMEOUTS.connect, response_timeout: TIMEOUTS.response }]
  })
  t.teardown(() => proxy.close())
  t.same([...ORIGIN_FAULT_STATUSES], [520, 521, 522, 523, 524, 525, 526, 530], 'the statuses on offer')

  for (const status of ORIGIN_FAULT_STATUSES) {
    const entry = CATALOG.get(status)
    if (entry === undefined) throw new Error(`no catalog entry for ${status}`)
    const once = (): Promise<Timed<Got>> =>
      timed(() => getWithin(`${proxy.url}/inj/${status}`, DEADLINE_MS, { 'x-highproxy-fault': String(status), accept: 'application/json' }))
    const res = await once()
    t.equal(res.status, status, `${status}: status`)
    const body = JSON.parse(res.body) as ErrorBody
    t.equal(body.status, status)
    t.equal(body.error_code, status === 530 ? 1016 : status)
    t.equal(body.error_name, entry.name)
    t.equal(body.error_category, entry.category)
    t.equal(res.headers['retry-after'], entry.retryAfter === null ? undefined : String(entry.retryAfter), `${status}: Retry-After`)
    // 522 and 524 take as long as the real thing; the others answer at once.
    const waitMs = status === 522 ? CONNECT_MS : status === 524 ? RESPONSE_MS : 0
    const inTime = (x: Timed<Got>): boolean => x.ms <= waitMs + (waitMs === 0 ? 200 : SLACK_MS) + x.late
    const tries = await oneOfTwo(res, once, inTime)
    t.ok(tries.every(x => x.ms >= waitMs), `${status}: waited ${waitMs} ms: ${shown(tries)}`)
    t.ok(tries.some(inTime), `${status}: and no more than ${waitMs === 0 ? 200 : SLACK_MS} ms longer: ${shown(tries)}`)

    const failure = await proxy.waitForLog(failureFor(rayOf(res)))
    t.equal(failure.edge_status, status)
    t.equal(failure.injected, true, `${status}: the failure line says injected`)
    t.equal(failure.error.code, 'HPX_ERR_INJECTED')
    if (status === 522) t.equal(failure.timings.connect_ms, CONNECT_MS)
    const access = await proxy.waitForLog(accessFor(rayOf(res)))
    t.equal(access.status, status)
    t.equal(access.edge_status, status)
  }
  t.equal(origin.hits(), 0, 'no injected request reached the origin')

  // Browsers get the page, as for a real fault.
  const html = await getWithin(`${proxy.url}/`, DEADLINE_MS, { 'x-highproxy-fault': '521' })
  t.equal(html.status, 521)
  t.match(html.headers['content-type'], /^text\/html/)
  t.match(html.body, `<title>127.0.0.1:${proxy.port} | 521: Web server is down</title>`)
})

t.test('percent=0 never injects, percent=100 always does', async t => {
  const origin = await countingOrigin()
  t.teardown(() => origin.close())
  const proxy = await startProxy({
    timeouts: TIMEOUTS,
    fault_injection: true,
    routes: [{ origin: origin.url, connect_timeout: TIMEOUTS.connect, response_timeout: TIMEOUTS.response }]
  })
  t.teardown(() => proxy.close())

  const rays: string[] = []
  for (let i = 0; i < 20; i++) {
    const res = await timed(() => getWithin(`${proxy.url}/p0`, DEADLINE_MS, { 'x-highproxy-fault': '522;percent=0' }))
    t.equal(res.status, 200)
    t.equal(res.body, 'origin ok\n')
    t.ok(res.ms < CONNECT_MS + res.late, `never waited for an injected 522: ${shown([res])}`)
    rays.push(rayOf(res))
  }
  t.equal(origin.hits(), 20, 'every request reached the origin')
  t.notOk(proxy.logs.some(l => l.msg === 'origin failure'), 'no failure line at all')
  for (const ray of rays) t.equal((await proxy.waitForLog(accessFor(ray))).status, 200)

  for (let i = 0; i < 5; i++) {
    const res = await getWithin(`${proxy.url}/p100`, DEADLINE_MS, { 'x-highproxy-fault': '521; percent=100' })
    t.equal(res.status, 521)
    t.equal((await proxy.waitForLog(failureFor(rayOf(res)))).injected, true)
  }
  t.equal(origin.hits(), 20, 'percent=100 never reached the origin')
})

t.test('a malformed fault header is ignored and logged, even when injection is on', async t => {
  const origin = await countingOrigin()
  t.teardown(() => origin.close())
  const proxy = await startProxy({
    timeouts: TIMEOUTS,
    fault_injection: true,
    routes: [{ origin: origin.url, connect_timeout: TIMEOUTS.connect, response_timeout: TIMEOUTS.response }]
  })
  t.teardown(() => proxy.close())
  for (const value of ['599', 'abc', '522;percent=150', '522;chance=5']) {
    const res = await getWithin(`${proxy.url}/`, DEADLINE_MS, { 'x-highproxy-fault': value })
    t.equal(res.status, 200, `"${value}" is ignored`)
    const line = await proxy.waitForLog(ignoredFor(rayOf(res)))
    t.equal(line.header, value)
    t.equal(line.enabled, true)
  }
  t.equal(origin.hits(), 4)
})

t.test('fault injection off: the header is ignored, logged, and the origin answers', async t => {
  const origin = await countingOrigin()
  t.teardown(() => origin.close())
  const proxy = await startProxy({
    timeouts: TIMEOUTS,
    fault_injection: true,
    routes: [
      // Off for this route only (the per-route override).
      { path: '/no-faults', origin: origin.url, connect_timeout: TIMEOUTS.connect, response_timeout: TIMEOUTS.response, fault_injection: false },
      { path: '/', origin: origin.url, connect_timeout: TIMEOUTS.connect, response_timeout: TIMEOUTS.response }
    ]
  })
  t.teardown(() => proxy.close())
  const off = await startProxy({
    timeouts: TIMEOUTS,
    routes: [{ origin: origin.url, connect_timeout: TIMEOUTS.connect, response_timeout: TIMEOUTS.response }]
  })
  t.teardown(() => off.close())

  for (const [p, path] of [[off, '/x'], [proxy, '/no-faults/x']] as const) {
    const before = origin.hits()
    const res = await timed(() => getWithin(`${p.url}${path}`, DEADLINE_MS, { 'x-highproxy-fault': '522' }))
    t.equal(res.status, 200, `${path}: proxied normally`)
    t.equal(res.body, 'origin ok\n')
    t.ok(res.ms < CONNECT_MS + res.late, `${path}: no injected wait: ${shown([res])}`)
    t.equal(origin.hits(), before + 1, `${path}: the origin answered`)
    const line = await p.waitForLog(ignoredFor(rayOf(res)))
    t.equal(line.enabled, false)
    t.equal(line.header, '522')
    t.notOk(p.logs.some(failureFor(rayOf(res))), 'no failure line')
    t.equal((await p.waitForLog(accessFor(rayOf(res)))).status, 200)
  }
  // Control: the other route of the same proxy does inject.
  const injected = await getWithin(`${proxy.url}/y`, DEADLINE_MS, { 'x-highproxy-fault': '523' })
  t.equal(injected.status, 523)
})
