// The operations listener next to a real proxy: a refused origin's ray id, taken from
// the visitor's response header, leads to the failure record; the scrape counts it.

import { Writable } from 'node:stream'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { createMetrics } from '../../src/admin/metrics.js'
import { RayStore } from '../../src/admin/rays.js'
import { startAdmin } from '../../src/admin/server.js'
import { localView } from '../../src/admin/view.js'
import { StaleStore } from '../../src/cache/stale-store.js'
import { resolve, validate } from '../../src/config/load.js'
import { refusedOrigin } from '../../src/lab/faults.js'
import { createLogger, type FailureRecord } from '../../src/log/log.js'
import { buildServer } from '../../src/listen/server.js'
import { get, rayOf, type LogLine } from '../helpers.js'

t.test('admin listener: health, readiness, metrics and ray lookup for a 521', async t => {
  const origin = await refusedOrigin()
  const config = resolve(validate({ origin: origin.url }), false)
  const route = config.edge.routes[0]?.name ?? ''

  const logs: LogLine[] = []
  const sink = new Writable({
    write (chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split('\n')) if (line.trim() !== '') logs.push(JSON.parse(line) as LogLine)
      cb()
    }
  })
  const logger = createLogger('info', 'json', sink)

  const metrics = createMetrics({ originHealth: () => [{ pool: 'default', origin: origin.url, up: false, inFlight: 0 }] })
  const rays = new RayStore(config.admin.rayBuffer)
  const app = await buildServer({
    ...config.edge,
    onAccess: metrics.observeAccess,
    onFailure: (r: FailureRecord) => { rays.add(r); metrics.observeFailure(r) }
  } as never, logger)
  await app.listen({ host: '127.0.0.1', port: 0 })
  const proxyUrl = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
  t.teardown(() => app.close())

  let ready = true
  const admin = await startAdmin({ host: '127.0.0.1', port: 0, view: localView({ registry: metrics.registry, rays, cache: new StaleStore(0, 0), ready: () => ready }), logger })
  t.teardown(() => admin.close())
  t.match(admin.url, /^http:\/\/127\.0\.0\.1:\d+$/, 'loopback, on a port of its own')
  t.not(admin.url, proxyUrl)

  t.equal(config.admin.rayBuffer, 10_000, 'the ring holds 10,000 failure records by default')

  // A visitor hits the refused origin and reports the ray id from the response.
  const res = await get(`${proxyUrl}/checkout?step=2`)
  t.equal(res.status, 521)
  const ray = rayOf(res)
  t.match(ray, /^[0-9a-f]{16}$/)

  await t.test('GET /rays/<ray> returns the failure record', async t => {
    const found = await get(`${admin.url}/rays/${ray}`)
    t.equal(found.status, 200)
    t.match(found.headers['content-type'], /^application\/json/)
    t.equal(found.headers['cache-control'], 'no-store')
    const body = JSON.parse(found.body) as { ray_id: string, attempts: FailureRecord[] }
    t.equal(body.ray_id, ray)
    t.equal(body.attempts.length, 1)
    const attempt = body.attempts[0] as FailureRecord
    t.equal(attempt.ray_id, ray)
    t.equal(attempt.edge_status, 521)
    t.equal(attempt.phase, 'connect')
    t.equal(attempt.attempt, 1)
    t.equal(attempt.error.code, 'HPX_ERR_CONNECT')
    t.equal(attempt.error.cause?.code, 'ECONNREFUSED')
    t.equal(attempt.origin.url, origin.url)
    t.equal(attempt.origin.address, '127.0.0.1')
    t.equal(attempt.origin.port, Number(new URL(origin.url).port))
    t.type(attempt.timings.connect_ms, 'number')
    t.type(attempt.timings.total_ms, 'number')
    t.equal(attempt.timings.ttfb_ms, null)
    // The record served is the one the failure log line carries, field for field.
    const logged = logs.find(l => l.msg === 'origin failure' && l.ray_id === ray)
    t.ok(logged, 'the failure was logged too')
    const { level: _level, time: _time, ...loggedRecord } = logged ?? {}
    t.same(attempt, loggedRecord)
  })

  await t.test('GET /metrics counts the request and the edge error', async t => {
    const scrape = await get(`${admin.url}/metrics`)
    t.equal(scrape.status, 200)
    t.equal(scrape.headers['content-type'], metrics.registry.contentType)
    const lines = scrape.body.split('\n')
    t.ok(lines.includes(`highproxy_requests_total{status="521",route="${route}"} 1`), `requests_total{status="521",route="${route}"} 1`)
    t.ok(lines.includes(`highproxy_edge_errors_total{status="521",route="${route}"} 1`), 'edge_errors_total{status="521"} 1')
    t.ok(lines.some(l => l.startsWith('highproxy_origin_failures_total{status="521",phase="connect",') && l.includes(`origin="${new URL(origin.url).host}"`) && l.endsWith(' 1')),
      'origin_failures_total 1, labelled with the origin\'s host:port')
    t.ok(lines.includes(`highproxy_request_duration_seconds_count{route="${route}",status_class="5xx"} 1`), 'the request is timed')
    t.ok(lines.includes('highproxy_origin_connect_seconds_count 1'), 'the refused connect is timed')
    t.ok(lines.includes('highproxy_pending_connects 0'), 'no dial pending')
    t.ok(lines.includes(`highproxy_origin_up{pool="default",origin="${new URL(origin.url).host}"} 0`), 'origin health')
    t.ok(lines.some(l => l.startsWith('highproxy_process_resident_memory_bytes ')), 'default process metrics')
  })

  await t.test('GET /rays/<cf-ray value>: the header as a visitor copies it finds the same record', async t => {
    const bare = await get(`${admin.url}/rays/${ray}`)
    const copied = await get(`${admin.url}/rays/${ray}-HPX`)
    t.equal(copied.status, 200)
    t.same(JSON.parse(copied.body), JSON.parse(bare.body))
  })

  await t.test('unknown and malformed ray ids', async t => {
    const unknown = await get(`${admin.url}/rays/${ray === 'ffffffffffffffff' ? '0000000000000000' : 'ffffffffffffffff'}`)
    t.equal(unknown.status, 404)
    t.same(JSON.parse(unknown.body), { error: 'unknown ray id' })
    for (const bad of [`${ray}-`, `${ray}-NINECHARS`, `${ray}-HP X`, ray.toUpperCase(), ray.slice(1), `${ray}0`, 'zzzzzzzzzzzzzzzz']) {
      const res = await get(`${admin.url}/rays/${encodeURIComponent(bad)}`)
      t.equal(res.status, 400, `${bad} → 400`)
    }
  })

  await t.test('health and readiness', async t => {
    const health = await get(`${admin.url}/healthz`)
    t.equal(health.status, 200)
    t.same(JSON.parse(health.body), { status: 'ok' })
    const before = await get(`${admin.url}/readyz`)
    t.equal(before.status, 200)
    t.same(JSON.parse(before.body), { status: 'ready' })
    ready = false
    const draining = await get(`${admin.url}/readyz`)
    t.equal(draining.status, 503)
    t.same(JSON.parse(draining.body), { status: 'draining' })
    const stillUp = await get(`${admin.url}/healthz`)
    t.equal(stillUp.status, 200, 'a draining process is still alive')
    ready = true
  })

  await t.test('nothing else is served', async t => {
    for (const [method, path] of [['GET', '/'], ['GET', '/rays'], ['GET', '/metrics/x'], ['POST', '/healthz'], ['DELETE', `/rays/${ray}`], ['GET', '/checkout']]) {
      const res = await get(`${admin.url}${path}`, { method: method as string })
      t.equal(res.status, 404, `${method} ${path} → 404`)
    }
    t.notOk(logs.some(l => l.component === 'admin'), 'the admin listener logs no requests (warn and above only)')
  })
})
