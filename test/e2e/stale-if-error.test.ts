// Always online with real faults on loopback: pages cached while the origin was healthy
// answer after it starts refusing (521: its port closed) and after it starts dropping
// SYNs (522, at the connect timeout); what must never be answered stale is not; the
// byte bound holds; the admin listener lists and purges; serve_when_down answers at once.

import http, { type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import t from 'tap'
import { Pool } from 'undici'
import { startAdmin } from '../../src/admin/server.js'
import { localView } from '../../src/admin/view.js'
import { createMetrics } from '../../src/admin/metrics.js'
import { RayStore } from '../../src/admin/rays.js'
import { StaleStore } from '../../src/cache/stale-store.js'
import { synDropOrigin } from '../../src/lab/faults.js'
import { writeFileSync } from 'node:fs'
import { startWorkers } from '../cli-process.js'
import { accessFor, failureFor, get, rayOf, startProxy, type Got } from '../helpers.js'
import { listenFixedPort } from '../../src/lab/loopback.js'

// A collection on demand, so that memory is measured without the garbage of the traffic.
setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void
/** Buffers' memory is released after their objects are collected: give it a turn, twice. */
async function collect (): Promise<void> {
  for (let i = 0; i < 2; i++) {
    gc()
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}

const N_BODY = 'x'.repeat(16 * 1024)

type Page = (req: IncomingMessage) => { status?: number, headers: Record<string, string>, body: string | string[] }

const PAGES: Record<string, Page> = {
  '/page': () => ({ headers: { 'cache-control': 'max-age=60', 'x-origin': 'yes', 'content-type': 'text/html' }, body: 'page v1' }),
  '/zero': () => ({ headers: { 'cache-control': 'max-age=0' }, body: 'zero' }),
  '/no-store': () => ({ headers: { 'cache-control': 'no-store' }, body: 'secret' }),
  '/private': () => ({ headers: { 'cache-control': 'private, max-age=60' }, body: 'mine' }),
  '/public': () => ({ headers: { 'cache-control': 'public, max-age=60' }, body: 'for all' }),
  '/lang': req => ({ headers: { 'cache-control': 'max-age=60', vary: 'Accept-Language' }, body: `lang ${String(req.headers['accept-language'])}` }),
  '/must-revalidate': () => ({ headers: { 'cache-control': 'max-age=0, must-revalidate' }, body: 'strict' }),
  '/must-revalidate-sie': () => ({ headers: { 'cache-control': 'max-age=0, must-revalidate, stale-if-error=600' }, body: 'strict but kind' }),
  '/big': () => ({ headers: { 'cache-control': 'max-age=60' }, body: 'b'.repeat(4096) }),
  // No Content-Length: the copy learns it is too large while it streams.
  '/big-chunked': () => ({ headers: { 'cache-control': 'max-age=60' }, body: ['c'.repeat(800), 'c'.repeat(800), 'c'.repeat(800)] }),
  '/cookie': () => ({ headers: { 'cache-control': 'max-age=60', 'set-cookie': 'session=abc' }, body: 'session' }),
  '/n': () => ({ headers: { 'cache-control': 'max-age=600' }, body: N_BODY })
}

interface Origin { url: string, port: number, hits: () => number, close: () => Promise<void> }

/** A plain origin answering PAGES (any path under /n/ is /n); on `port` when given. */
async function origin (port = 0): Promise<Origin> {
  let hits = 0
  const server = http.createServer((req: IncomingMessage, res: ServerResponse) => {
    hits++
    const path = (req.url ?? '/').split('?', 1)[0] as string
    const page = PAGES[path.startsWith('/n/') ? '/n' : path]
    if (page === undefined) { res.writeHead(404).end('none'); return }
    const { status = 200, headers, body } = page(req)
    if (typeof body === 'string') res.writeHead(status, { ...headers, 'content-length': String(Buffer.byteLength(body)) }).end(body)
    else {
      res.writeHead(status, headers)
      for (const part of body) res.write(part)
      res.end()
    }
  })
  // Tests close it to make it refuse: on a port outside the ephemeral range, so that no
  // listener on port 0 beside this test can be given the port once it is closed.
  if (port === 0) await listenFixedPort(server)
  else await new Promise<void>(resolve => server.listen({ host: '127.0.0.1', port }, resolve))
  const bound = (server.address() as AddressInfo).port
  return {
    url: `http://127.0.0.1:${bound}`,
    port: bound,
    hits: () => hits,
    close: () => new Promise(resolve => { server.close(() => resolve()); server.closeAllConnections() })
  }
}

const STALE = /^HPX;hit;ttl=-?\d+;detail=stale-if-error$/

t.test('521: a page cached while healthy answers once the origin refuses', async t => {
  const o = await origin()
  t.teardown(() => o.close())
  const proxy = await startProxy({ cache: { max_entry_bytes: 1024 }, routes: [{ name: 'site', origin: o.url, stale_if_error: { max_age: '1h' } }] })
  t.teardown(() => proxy.close())

  const healthy = await get(`${proxy.url}/page`)
  t.equal(healthy.status, 200)
  t.equal(healthy.headers['cache-status'], undefined, 'a relayed answer says nothing about the store')
  const langs = ['en', 'fr']
  for (const lang of langs) t.equal((await get(`${proxy.url}/lang`, { headers: { 'accept-language': lang } })).body, `lang ${lang}`)
  for (const path of ['/zero', '/no-store', '/private', '/public', '/must-revalidate', '/must-revalidate-sie', '/cookie']) {
    t.equal((await get(`${proxy.url}${path}`)).status, 200, `${path} while healthy`)
  }
  const big = await get(`${proxy.url}/big`)
  t.equal(big.body.length, 4096, 'a response over max_entry_bytes streams through whole')
  const chunked = await get(`${proxy.url}/big-chunked`)
  t.equal(chunked.body.length, 2400, 'so does a chunked one that outgrows it mid-stream')
  const withAuth = await get(`${proxy.url}/page?who=me`, { headers: { authorization: 'Bearer x' } })
  t.equal(withAuth.status, 200)

  await o.close()

  const stale = await get(`${proxy.url}/page`)
  t.equal(stale.status, 200, 'the original status')
  t.equal(stale.body, 'page v1', 'the original body')
  t.equal(stale.headers['x-origin'], 'yes', 'the original headers')
  t.equal(stale.headers['content-type'], 'text/html')
  t.match(stale.headers['cache-status'], STALE, 'Cache-Status says a stale hit')
  t.match(stale.headers.age, /^\d+$/, 'with Age')
  t.match(stale.headers['proxy-status'], /^HPX;error=connection_refused;next-hop="site";details=/, 'Proxy-Status names the real error')
  t.not(rayOf(stale), rayOf(healthy), 'a ray id of its own')
  const failure = await proxy.waitForLog(failureFor(rayOf(stale)))
  t.equal(failure.edge_status, 521)
  t.equal(failure.served, 'stale', 'the failure line is still written, served: stale')
  const access = await proxy.waitForLog(accessFor(rayOf(stale)))
  t.equal(access.status, 200)
  t.equal(access.edge_status, 521, 'the access line: the edge answered for a 521')

  const head = await get(`${proxy.url}/page`, { method: 'HEAD' })
  t.equal(head.status, 200, 'HEAD gets the GET copy')
  t.equal(head.body, '')
  t.equal(head.headers['content-length'], '7')

  t.equal((await get(`${proxy.url}/zero`)).body, 'zero', 'stale at once (max-age=0), within max_age')

  const fr = await get(`${proxy.url}/lang`, { headers: { 'accept-language': 'fr' } })
  const en = await get(`${proxy.url}/lang`, { headers: { 'accept-language': 'en' } })
  t.same([fr.body, en.body], ['lang fr', 'lang en'], 'Vary: Accept-Language keeps the copies apart')
  t.equal((await get(`${proxy.url}/lang`, { headers: { 'accept-language': 'de' } })).status, 521, 'a variant never stored: the 521 page')
  t.equal((await get(`${proxy.url}/lang`)).status, 521, 'nor one without the header')

  const page = async (path: string, headers?: Record<string, string>, method?: string): Promise<Got> => await get(`${proxy.url}${path}`, { headers, method })
  for (const path of ['/no-store', '/private', '/cookie', '/must-revalidate', '/big', '/big-chunked']) {
    const got = await page(path)
    t.equal(got.status, 521, `${path}: never served stale`)
    t.match(got.body, '521')
    const line = await proxy.waitForLog(failureFor(rayOf(got)))
    t.equal(line.served, 'page')
  }
  t.equal((await page('/must-revalidate-sie')).body, 'strict but kind', "must-revalidate, but within the origin's own stale-if-error")

  t.equal((await page('/page', undefined, 'POST')).status, 521, 'POST to a dead origin: the 521 page')
  t.equal((await page('/page', { authorization: 'Bearer x' })).status, 521, 'a request with Authorization: not from a copy that is not public')
  t.equal((await page('/page', { cookie: 'a=b' })).status, 521, 'nor one with a Cookie')
  t.equal((await page('/page?who=me', { authorization: 'Bearer x' })).status, 521, 'an authorized response without public was never stored')
  t.equal((await page('/public', { authorization: 'Bearer x' })).body, 'for all', 'a public copy answers a request with credentials')

  t.equal((await page('/page', { 'cache-control': 'no-cache' })).status, 521, 'client no-cache: no stored copy')
  t.equal((await page('/page', { pragma: 'no-cache' })).status, 521, 'Pragma: no-cache, without Cache-Control, too')
  t.equal((await page('/zero', { 'cache-control': 'max-stale=0' })).status, 521, 'max-stale=0: a stale copy is refused')
  t.equal((await page('/page', { 'cache-control': 'max-stale=0' })).body, 'page v1', 'max-stale=0: a still fresh copy answers')
  t.equal((await page('/zero', { 'cache-control': 'max-stale' })).body, 'zero', 'max-stale without a value: any staleness')
})

t.test('a route without stale_if_error answers the error page, and stores nothing', async t => {
  const o = await origin()
  t.teardown(() => o.close())
  const store = new StaleStore(1 << 20, 1 << 16)
  const proxy = await startProxy({ routes: [{ name: 'plain', origin: o.url }] }, store)
  t.teardown(() => proxy.close())
  t.equal((await get(`${proxy.url}/page`)).status, 200)
  await o.close()
  t.equal((await get(`${proxy.url}/page`)).status, 521)
  t.equal(store.summary().entries, 0)
})

t.test('522: a page cached while healthy answers after the origin drops SYNs, at the connect timeout', async t => {
  const o = await origin()
  t.teardown(() => o.close())
  const proxy = await startProxy({ routes: [{ name: 'site', origin: o.url, connect_timeout: '400ms', stale_if_error: {} }] })
  t.teardown(() => proxy.close())
  t.equal((await get(`${proxy.url}/page`)).status, 200)
  const port = o.port
  await o.close()
  // The same address now drops SYNs: a full accept queue on the origin's own port.
  const dropping = await synDropOrigin('127.0.0.1', port)
  t.teardown(() => dropping.close())
  const start = performance.now()
  const stale = await get(`${proxy.url}/page`, { fresh: true })
  const ms = performance.now() - start
  t.equal(stale.status, 200)
  t.equal(stale.body, 'page v1')
  t.ok(ms >= 400, `not before the connect timeout (${ms.toFixed(0)} ms)`)
  t.match(stale.headers['proxy-status'], /error=connection_timeout/)
  t.match(stale.headers['cache-status'], STALE)
  const failure = await proxy.waitForLog(failureFor(rayOf(stale)))
  t.equal(failure.edge_status, 522)
  t.equal(failure.error.code, 'HPX_ERR_CONNECT_TIMEOUT')
  t.equal(failure.served, 'stale')
})

t.test('serve_when_down: while the pool rests after failures, the copy answers without a dial', async t => {
  const pools = (url: string, serveWhenDown: boolean): Record<string, unknown> => ({
    pools: [{ name: 'web', origins: [url], connect_timeout: '5s', health: { failures: 1, cooldown: '200ms' } }],
    routes: [{ name: 'site', pool: 'web', stale_if_error: { serve_when_down: serveWhenDown } }]
  })
  for (const serveWhenDown of [false, true]) {
    const o = await origin()
    const proxy = await startProxy(pools(o.url, serveWhenDown))
    t.equal((await get(`${proxy.url}/page`)).status, 200)
    await o.close()
    const first = await get(`${proxy.url}/page`)
    t.equal(first.body, 'page v1', 'refused: the copy answers')
    t.equal((await proxy.waitForLog(failureFor(rayOf(first)))).error.code, 'HPX_ERR_CONNECT', 'after a real dial')
    // One failure marks it down; after the cool-down it is half-open: the next request is
    // its trial, unless serve_when_down answers it from the copy.
    await new Promise(resolve => setTimeout(resolve, 300))
    const trial = await get(`${proxy.url}/page`)
    t.equal(trial.body, 'page v1')
    const line = await proxy.waitForLog(failureFor(rayOf(trial)))
    t.equal(line.served, 'stale')
    if (serveWhenDown) {
      t.equal(line.error.code, 'HPX_ERR_POOL_DOWN', 'serve_when_down: answered without trying the half-open origin')
    } else {
      t.equal(line.error.code, 'HPX_ERR_CONNECT', 'without it, the request was the half-open trial')
    }
    await proxy.close()
  }
})

t.test('the byte bound holds under 10,000 distinct URLs', async t => {
  const o = await origin()
  const maxBytes = 4 * 1024 * 1024
  const store = new StaleStore(maxBytes, 1 << 20)
  const proxy = await startProxy({ routes: [{ name: 'site', origin: o.url, stale_if_error: {} }] }, store)
  t.teardown(async () => { await proxy.close(); await o.close() })
  const pool = new Pool(proxy.url, { connections: 16 })
  t.teardown(() => pool.close())
  await collect()
  const before = process.memoryUsage()
  const N = 10_000
  let next = 0
  let ok = 0
  let peak = 0
  const worker = async (): Promise<void> => {
    while (next < N) {
      const i = next++
      const res = await pool.request({ path: `/n/${i}`, method: 'GET' })
      await res.body.dump()
      if (res.statusCode === 200) ok++
      peak = Math.max(peak, store.summary().bytes)
    }
  }
  const start = performance.now()
  await Promise.all(Array.from({ length: 32 }, worker))
  const ms = performance.now() - start
  t.equal(ok, N)
  await collect()
  const after = process.memoryUsage()
  const { entries, bytes } = store.summary()
  const mib = (n: number): string => (n / 2 ** 20).toFixed(1)
  t.comment(`${N} URLs of ${N_BODY.length} B in ${ms.toFixed(0)} ms; store ${entries} copies, ${bytes} B (peak ${peak} B, bound ${maxBytes} B); ` +
    `after GC: RSS ${mib(before.rss)} → ${mib(after.rss)} MiB, buffers ${mib(before.arrayBuffers)} → ${mib(after.arrayBuffers)} MiB`)
  t.ok(peak <= maxBytes, 'the store never went past max_bytes')
  t.ok(entries > 100 && entries < N, `the least recently used went (${entries} of ${N} kept)`)
  // The bodies live in Buffers: what stays of them after a collection is the store's.
  t.ok(after.arrayBuffers - before.arrayBuffers < 2 * maxBytes, `buffers kept: ${mib(after.arrayBuffers - before.arrayBuffers)} MiB, not the ${mib(N * N_BODY.length)} MiB of every body`)
  // What the process still holds after a collection, heap and buffers: every body kept would be
  // 156 MiB. Not RSS: that is the allocator's high-water mark, and Node 24's keeps more of it
  // (152 MiB seen with 5 MiB of buffers kept).
  const held = (after.heapUsed + after.arrayBuffers) - (before.heapUsed + before.arrayBuffers)
  t.ok(held < 64 * 2 ** 20, `heap and buffers held after GC grew by ${mib(held)} MiB (RSS by ${mib(after.rss - before.rss)} MiB)`)
  // The newest are kept: the last URL answers from the copy once the origin is gone.
  await o.close()
  t.equal((await get(`${proxy.url}/n/${N - 1}`)).body, N_BODY)
  t.equal((await get(`${proxy.url}/n/0`)).status, 521, 'the oldest was evicted')
})

t.test('admin: /cache lists copies and bytes, DELETE /cache purges', async t => {
  const o = await origin()
  const store = new StaleStore(1 << 20, 1 << 16)
  const proxy = await startProxy({ routes: [{ name: 'other', path: '/other', strip_prefix: true, origin: o.url, stale_if_error: {} }, { name: 'site', origin: o.url, stale_if_error: {} }] }, store)
  const metrics = createMetrics({ originHealth: () => [] })
  const admin = await startAdmin({ host: '127.0.0.1', port: 0, view: localView({ registry: metrics.registry, rays: new RayStore(10), cache: store, ready: () => true }) })
  t.teardown(async () => { await admin.close(); await proxy.close(); await o.close() })
  for (const path of ['/page', '/page?a=1', '/public', '/other/n/1']) t.equal((await get(`${proxy.url}${path}`)).status, 200)
  const listed = await get(`${admin.url}/cache`)
  t.equal(listed.status, 200)
  const body = JSON.parse(listed.body)
  t.equal(body.entries, 4)
  t.ok(body.bytes > 16 * 1024, `bytes counted (${String(body.bytes)})`)
  t.equal(body.max_bytes, 1 << 20)
  t.equal(body.max_entry_bytes, 1 << 16)
  const purge = async (query: string): Promise<number> => JSON.parse((await get(`${admin.url}/cache${query}`, { method: 'DELETE' })).body).purged
  t.equal(await purge('?route=site&path=/page'), 2, 'a path: every query of it')
  t.equal(await purge('?route=site&path=/page'), 0)
  t.equal(await purge('?route=site&path=/nothing'), 0)
  t.equal(await purge('?route=other'), 1, 'a route: all of it')
  t.equal(JSON.parse((await get(`${admin.url}/cache`)).body).entries, 1)
  t.equal((await get(`${proxy.url}/cache`, { method: 'DELETE' })).body, 'none', 'the edge listener has no /cache: it goes to the origin like any path')
  await o.close()
  t.equal((await get(`${proxy.url}/page`)).status, 521, 'a purged copy answers no more')
  t.equal((await get(`${proxy.url}/public`)).body, 'for all', 'the others still do')
  t.equal(await purge(''), 1, 'no route, no path: everything')
})

t.test('--workers 2: /cache sums every worker\'s store, DELETE purges in each', async t => {
  const o = await origin()
  t.teardown(() => o.close())
  const file = `${t.testdir({})}/config.yaml`
  writeFileSync(file, `routes:\n  - { name: site, origin: "${o.url}", stale_if_error: {} }\n`)
  const p = await startWorkers(['--config', file], 2)
  t.teardown(() => { p.child.kill('SIGKILL') })
  const served = new Set<string>()
  for (let i = 0; i < 20; i++) {
    const got = await get(`${p.listen}/page?i=${i}`, { fresh: true })
    t.equal(got.status, 200)
  }
  const listed = JSON.parse((await get(`${p.admin}/cache`)).body)
  t.equal(listed.entries, 20, 'every copy, whichever worker took it')
  t.equal(listed.workers.length, 2)
  for (const w of listed.workers) served.add(String(w.pid))
  t.same([...served].sort(), p.pids.map(String).sort(), 'each worker by pid')
  t.equal(listed.workers.reduce((n: number, w: { bytes: number }) => n + w.bytes, 0), listed.bytes)
  t.same(listed.unanswered, [])
  const purged = JSON.parse((await get(`${p.admin}/cache?path=/page`, { method: 'DELETE' })).body)
  t.equal(purged.purged, 20)
  t.equal(JSON.parse((await get(`${p.admin}/cache`)).body).entries, 0)
})
