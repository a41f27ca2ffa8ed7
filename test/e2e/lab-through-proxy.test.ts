// The lab's new faults behind a real proxy (test/helpers.ts startProxy): what an edge in
// front of them answers, and that failover, streaming and certificate checks hold.

import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { raw } from '../raw-client.js'
import { request } from 'undici'
import { startLab } from '../../src/lab/index.js'
import { client, failureFor, get, rayOf, startProxy } from '../helpers.js'

const TIMEOUTS = { connect: '400ms', response: '600ms' }

t.test('521-after behind a two-origin pool: once it stops listening, requests fail over', async t => {
  const lab = await startLab({ faults: { '521-after': { requests: 2 } } })
  t.teardown(() => lab.close())
  const proxy = await startProxy({
    timeouts: TIMEOUTS,
    pools: [{ name: 'web', origins: [lab.urls['521-after'], lab.urls.healthy] }],
    routes: [{ pool: 'web' }]
  })
  t.teardown(() => proxy.close())

  const answers = []
  for (let i = 0; i < 6; i++) answers.push(await get(`${proxy.url}/`))
  t.same(answers.map(a => a.status), [200, 200, 200, 200, 200, 200], 'every request answered 200')
  t.equal(answers.filter(a => a.body.startsWith('answer ')).length, 2, 'the dying origin answered twice')
  const failures = proxy.logs.filter(l => l.msg === 'origin failure')
  t.ok(failures.length >= 1, `${failures.length} failed attempt(s), then the healthy origin`)
  for (const f of failures) t.match(f, { edge_status: 521, attempt: 1, origin: { url: lab.urls['521-after'] } })
})

t.test('slow: under the response timeout a late 200, over it a 524', async t => {
  const lab = await startLab({ faults: { slow: { delayMs: 150 } } })
  t.teardown(() => lab.close())
  const late = await startLab({ faults: { slow: { delayMs: 5000 } } })
  t.teardown(() => late.close())
  const proxy = await startProxy({
    timeouts: TIMEOUTS,
    routes: [{ path: '/late', origin: late.urls.slow }, { path: '/', origin: lab.urls.slow }]
  })
  t.teardown(() => proxy.close())

  const ok = await get(`${proxy.url}/`)
  t.equal(ok.status, 200)
  t.equal(ok.body, 'answered after 150 ms\n')
  t.ok(ok.ms >= 149, `after ${ok.ms.toFixed(0)} ms`)
  const timedOut = await get(`${proxy.url}/late`, { headers: { accept: 'application/json' } })
  t.equal(timedOut.status, 524)
  t.equal((await proxy.waitForLog(failureFor(rayOf(timedOut)))).phase, 'response')
})

t.test('trickle: the proxy streams the body as it comes, it does not wait for the end', async t => {
  const lab = await startLab({ faults: { trickle: { bytes: 10, everyMs: 100, chunks: 5 } } })
  t.teardown(() => lab.close())
  const proxy = await startProxy({ timeouts: TIMEOUTS, origin: lab.urls.trickle })
  t.teardown(() => proxy.close())

  const res = await request(`${proxy.url}/`, { dispatcher: client, signal: AbortSignal.timeout(5000) })
  t.equal(res.statusCode, 200)
  const pieces: number[] = []
  for await (const chunk of res.body) pieces.push((chunk as Buffer).length)
  t.equal(pieces.reduce((a, b) => a + b, 0), 50)
  t.ok(pieces.length >= 2, `relayed in ${pieces.length} pieces (${pieces.join(', ')} bytes)`)
})

t.test('526-expired and 526-name: 526 even with the lab CA trusted, each with its own cause', async t => {
  const lab = await startLab({ faults: ['526-expired', '526-name'] })
  t.teardown(() => lab.close())
  const dir = await mkdtemp(join(tmpdir(), 'highproxy-lab-ca-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const caFile = join(dir, 'lab-ca.pem')
  await writeFile(caFile, lab.origins['526-expired'].ca ?? '')
  const tls = { ca_file: caFile }
  const proxy = await startProxy({
    timeouts: TIMEOUTS,
    routes: [{ path: '/expired', origin: lab.urls['526-expired'], tls }, { path: '/name', origin: lab.urls['526-name'], tls }]
  })
  t.teardown(() => proxy.close())

  for (const [path, code] of [['/expired', 'CERT_HAS_EXPIRED'], ['/name', 'ERR_TLS_CERT_ALTNAME_INVALID']] as const) {
    const res = await get(`${proxy.url}${path}`, { headers: { accept: 'application/json' } })
    t.equal(res.status, 526, path)
    const failure = await proxy.waitForLog(failureFor(rayOf(res)))
    t.match(failure, { phase: 'tls', error: { code: 'HPX_ERR_TLS_CERT', cause: { code } } }, `${path}: ${code}`)
  }
})

// The origin closes a reused keep-alive connection under the request, before any byte of
// an answer: RFC 9112 §9.3.1 lets a client retry an idempotent request on a new
// connection then, as nginx (proxy_next_upstream error) and Go's transport do.
t.test('keepalive-cut: a GET that finds its reused origin connection closed is retried on a new one', async t => {
  const lab = await startLab({ faults: { 'keepalive-cut': { requests: 1 } } })
  t.teardown(() => lab.close())
  const proxy = await startProxy({ timeouts: TIMEOUTS, origin: lab.urls['keepalive-cut'] })
  t.teardown(() => proxy.close())

  const statuses = []
  for (let i = 0; i < 3; i++) statuses.push((await get(`${proxy.url}/`)).status)
  t.same(statuses, [200, 200, 200])
  // A POST is never sent twice: two on one client connection, the second on the reused
  // origin connection, which the origin drops under it — the honest 520.
  const post = 'POST / HTTP/1.1\r\nhost: cut.test\r\ncontent-length: 4\r\n\r\nonce'
  const answer = await raw(proxy.port, post + post)
  t.same([...answer.text.matchAll(/HTTP\/1\.1 (\d{3})/g)].map(m => m[1]), ['200', '520'], 'a POST on a dropped reused connection is not retried')
})
