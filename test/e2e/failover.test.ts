// Failover the way the edge does it: a failure before any request byte reached the
// origin is retried once on another origin of the pool; anything later never is.

import t from 'tap'
import { refusedOrigin, silentOrigin, synDropOrigin } from '../../src/lab/faults.js'
import { healthyOrigin } from '../../src/lab/healthy-origin.js'
import { get, rayOf, startProxy, type Got, type LogLine, type TestProxy } from '../helpers.js'
import { timed, oneOfTwo, shown, type Timed } from '../timing.js'

/** The failure lines of a request, once its access line (written after them) is out. */
async function failuresOf (proxy: TestProxy, ray: string): Promise<LogLine[]> {
  await proxy.waitForLog(l => l.msg === 'access' && l.ray_id === ray)
  return proxy.logs.filter(l => l.msg === 'origin failure' && l.ray_id === ray)
}

t.test('a refused origin: the request succeeds on the healthy one, one failure line', async t => {
  const dead = await refusedOrigin()
  const good = await healthyOrigin()
  const proxy = await startProxy({ pools: [{ name: 'web', origins: [dead.url, good.url] }], routes: [{ pool: 'web' }] })
  t.teardown(async () => { await proxy.close(); await good.close() })
  const res = await get(`${proxy.url}/echo`, { method: 'POST', body: 'a body survives the retry', headers: { 'content-type': 'text/plain' } })
  t.equal(res.status, 200)
  t.equal(JSON.parse(res.body).bodyBytes, 25, 'the request body reached the second origin whole')
  const failures = await failuresOf(proxy, rayOf(res))
  t.equal(failures.length, 1)
  t.match(failures[0], { edge_status: 521, attempt: 1, origin: { url: dead.url } })
  const access = await proxy.waitForLog(l => l.msg === 'access' && l.ray_id === rayOf(res))
  t.equal(access.status, 200)
})

t.test('a SYN-dropping origin: after the connect timeout, the healthy one answers', async t => {
  const dead = await synDropOrigin()
  const good = await healthyOrigin()
  const proxies: TestProxy[] = []
  t.teardown(async () => { for (const proxy of proxies) await proxy.close(); await good.close(); await dead.close() })
  // A try is a first request on a proxy of its own: on the same one, round robin would
  // start the next request on the healthy origin, and passive health counts the failures.
  const once = async (): Promise<Timed<Got> & { proxy: TestProxy }> => {
    const proxy = await startProxy({
      pools: [{ name: 'web', origins: [dead.url, good.url], connect_timeout: '300ms' }],
      routes: [{ pool: 'web' }]
    })
    proxies.push(proxy)
    return Object.assign(await timed(() => get(`${proxy.url}/`)), { proxy })
  }
  const onTime = (x: Timed<Got>): boolean => x.ms < 600 + x.late
  const tries = await oneOfTwo(await once(), once, onTime)
  t.ok(tries.every(x => x.ms >= 300), `never before the 300 ms connect timeout: ${shown(tries)}`)
  t.ok(tries.some(onTime), `answered within 300 ms after it: ${shown(tries)}`)
  for (const res of tries) {
    t.equal(res.status, 200)
    t.match(await failuresOf(res.proxy, rayOf(res)), [{ edge_status: 522, attempt: 1 }])
  }
})

t.test('both origins refuse: two failure lines, the last status answers', async t => {
  const a = await refusedOrigin()
  const b = await refusedOrigin()
  const proxy = await startProxy({ pools: [{ name: 'web', origins: [a.url, b.url] }], routes: [{ pool: 'web' }] })
  t.teardown(() => proxy.close())
  const res = await get(`${proxy.url}/`, { headers: { accept: 'application/json' } })
  t.equal(res.status, 521)
  const failures = await failuresOf(proxy, rayOf(res))
  t.same(failures.map(f => [f.attempt, f.edge_status]), [[1, 521], [2, 521]])
  t.not(failures[0]?.origin.url, failures[1]?.origin.url, 'the retry went to the other origin')
})

t.test('no retry once the request was sent (524)', async t => {
  const silent = await silentOrigin()
  const good = await healthyOrigin()
  const proxy = await startProxy({
    pools: [{ name: 'web', origins: [silent.url, good.url], response_timeout: '300ms', policy: 'round_robin' }],
    routes: [{ pool: 'web' }]
  })
  t.teardown(async () => { await proxy.close(); await good.close(); await silent.close() })
  const res = await get(`${proxy.url}/`)
  t.equal(res.status, 524, 'the first origin (round robin) was the silent one')
  t.equal((await failuresOf(proxy, rayOf(res))).length, 1)
})

t.test('passive health: marked down, skipped, tried again after the cool-down', async t => {
  const dead = await refusedOrigin()
  const good = await healthyOrigin()
  const proxy = await startProxy({
    pools: [{ name: 'web', origins: [dead.url, good.url], policy: 'round_robin', health: { failures: 2, cooldown: '400ms' } }],
    routes: [{ pool: 'web' }]
  })
  t.teardown(async () => { await proxy.close(); await good.close() })
  for (let i = 0; i < 4; i++) t.equal((await get(`${proxy.url}/`)).status, 200)
  const before = proxy.logs.filter(l => l.msg === 'origin failure').length
  t.equal(before, 2, 'two failures marked it down')
  for (let i = 0; i < 4; i++) t.equal((await get(`${proxy.url}/`)).status, 200)
  t.equal(proxy.logs.filter(l => l.msg === 'origin failure').length, 2, 'a down origin is not dialled')
  await new Promise(resolve => setTimeout(resolve, 450))
  for (let i = 0; i < 2; i++) t.equal((await get(`${proxy.url}/`)).status, 200)
  t.equal(proxy.logs.filter(l => l.msg === 'origin failure').length, 3, 'one half-open trial after the cool-down')
})

t.test('every origin down: answered at once from the last failure, with its status', async t => {
  const dead = await synDropOrigin()
  const proxy = await startProxy({
    pools: [{ name: 'web', origins: [dead.url], connect_timeout: '300ms', health: { failures: 1, cooldown: '10s' } }],
    routes: [{ pool: 'web' }]
  })
  t.teardown(async () => { await proxy.close(); await dead.close() })
  const first = await get(`${proxy.url}/`)
  t.equal(first.status, 522)
  // Any later request finds the pool down (a 10 s cool-down): a retry is one more of them.
  const again = (): Promise<Timed<Got>> => timed(() => get(`${proxy.url}/`, { headers: { accept: 'application/json' } }))
  const atOnce = (x: Timed<Got>): boolean => x.ms < 100 + x.late
  const tries = await oneOfTwo(await again(), again, atOnce)
  t.ok(tries.some(atOnce), `no second wait: ${shown(tries)}`)
  for (const second of tries) {
    t.equal(second.status, 522)
    t.match(await failuresOf(proxy, rayOf(second)), [{ edge_status: 522, error: { code: 'HPX_ERR_POOL_DOWN' } }])
  }
})

t.test('least_in_flight sends to the idle origin', async t => {
  const slow = await healthyOrigin()
  const fast = await healthyOrigin()
  const proxy = await startProxy({ pools: [{ name: 'web', origins: [slow.url, fast.url], policy: 'least_in_flight' }], routes: [{ pool: 'web' }] })
  t.teardown(async () => { await proxy.close(); await slow.close(); await fast.close() })
  // Hold one request open on the first origin (a slow streaming response)...
  const pending = get(`${proxy.url}/stream?chunks=40&size=16`)
  await new Promise(resolve => setTimeout(resolve, 30))
  // ...so the next one goes to the second.
  const res = await get(`${proxy.url}/echo`)
  const origins = proxy.logs.filter(l => l.msg === 'access')
  t.equal(res.status, 200)
  t.equal(JSON.parse(res.body).headers.host, new URL(fast.url).host)
  await pending
  t.ok(origins.length >= 1)
})

t.test('per-route headers, status rewrite, origin 5xx replaced', async t => {
  const good = await healthyOrigin()
  const dead = await refusedOrigin()
  const proxy = await startProxy({
    routes: [
      { path: '/rewrite', origin: dead.url, status_rewrite: { 521: 502 } },
      { path: '/replace', origin: good.url, origin_errors: 'replace', strip_prefix: true },
      { path: '/', origin: good.url, request_headers: { 'X-Edge-Tag': 'blue' }, response_headers: { 'X-Served-By': 'edge-1' } }
    ]
  })
  t.teardown(async () => { await proxy.close(); await good.close() })
  const echoed = await get(`${proxy.url}/echo`)
  t.equal(JSON.parse(echoed.body).headers['x-edge-tag'], 'blue')
  t.equal(echoed.headers['x-served-by'], 'edge-1')
  const rewritten = await get(`${proxy.url}/rewrite`, { headers: { accept: 'application/json' } })
  t.equal(rewritten.status, 502, 'clients that only know standard codes get 502')
  t.equal(JSON.parse(rewritten.body).error_code, 521, 'the body still says 521')
})

t.test('origin 5xx: passed through by default, replaced by the edge page when asked', async t => {
  const http = await import('node:http')
  const failing = http.createServer((_req, res) => res.writeHead(503, { 'retry-after': '7' }).end('origin says no\n'))
  await new Promise<void>(resolve => failing.listen(0, '127.0.0.1', resolve))
  const url = `http://127.0.0.1:${(failing.address() as import('node:net').AddressInfo).port}`
  const proxy = await startProxy({ routes: [{ path: '/replace', origin: url, origin_errors: 'replace' }, { origin: url }] })
  t.teardown(async () => { await proxy.close(); failing.close() })
  const passed = await get(`${proxy.url}/pass`)
  t.equal(passed.status, 503)
  t.equal(passed.body, 'origin says no\n', "the origin's own 5xx passes through untouched")
  const replaced = await get(`${proxy.url}/replace`, { headers: { accept: 'application/json' } })
  t.equal(replaced.status, 502)
  t.equal(JSON.parse(replaced.body).error_name, 'bad_gateway')
  t.match(await failuresOf(proxy, rayOf(replaced)), [{ error: { code: 'HPX_ERR_ORIGIN_5XX' } }])
})

t.test('active health checks mark a failing origin down before any request does', async t => {
  const http = await import('node:http')
  const sick = http.createServer((req, res) => res.writeHead(req.url === '/healthz' ? 500 : 200).end('sick origin\n'))
  await new Promise<void>(resolve => sick.listen(0, '127.0.0.1', resolve))
  const sickUrl = `http://127.0.0.1:${(sick.address() as import('node:net').AddressInfo).port}`
  const good = await healthyOrigin()
  const proxy = await startProxy({
    pools: [{ name: 'web', origins: [sickUrl, good.url], policy: 'round_robin', health: { failures: 1, cooldown: '10s', check: { path: '/healthz', interval: '100ms', timeout: '100ms', expect_status: 200 } } }],
    routes: [{ pool: 'web' }]
  })
  t.teardown(async () => { await proxy.close(); await good.close(); sick.close() })
  await new Promise(resolve => setTimeout(resolve, 300))
  for (let i = 0; i < 4; i++) {
    const res = await get(`${proxy.url}/echo`)
    t.equal(res.status, 200)
    t.equal(JSON.parse(res.body).headers.host, new URL(good.url).host, 'only the healthy origin is used')
  }
})
