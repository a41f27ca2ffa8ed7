// --workers 2 seen from the admin port, which lives in the primary: real requests on
// connections of their own, spread over both workers; /metrics counts every one of them
// on every scrape, /rays finds every ray whichever worker served it, and a worker that
// stops answering is reported within the timeout instead of hanging the scrape.

import { writeFileSync } from 'node:fs'
import t from 'tap'
import { ANSWER_TIMEOUT_MS } from '../../src/admin/ipc.js'
import { refusedOrigin } from '../../src/lab/faults.js'
import { healthyOrigin } from '../../src/lab/healthy-origin.js'
import { startWorkers } from '../cli-process.js'
import { get, rayOf } from '../helpers.js'
import { total } from '../prometheus-text.js'

const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))

/** Scrapes until `ready` holds (an access record is counted when the response closes). */
async function settled (admin: string, ready: (text: string) => boolean): Promise<string> {
  for (let i = 0; ; i++) {
    const text = (await get(`${admin}/metrics`)).body
    if (ready(text) || i === 40) return text
    await sleep(50)
  }
}

t.test('--workers 2: one view over both workers', async t => {
  const healthy = await healthyOrigin()
  const refused = await refusedOrigin()
  t.teardown(async () => { await healthy.close(); await refused.close() })
  const file = `${t.testdir({})}/config.yaml`
  writeFileSync(file, `routes:\n  - { name: ok, path: /ok, origin: "${healthy.url}" }\n  - { name: down, path: /down, origin: "${refused.url}" }\n`)
  const p = await startWorkers(['--config', file], 2)
  t.teardown(() => { p.child.kill('SIGKILL') })

  const ready = await get(`${p.admin}/readyz`)
  t.equal(ready.status, 200, 'ready: both workers listen')
  t.same(JSON.parse(ready.body), { status: 'ready', workers: { expected: 2, listening: 2 } })

  const rays: string[] = []
  let sent = 0
  let failed = 0

  await t.test('/metrics totals equal the requests sent, scrape after scrape', async t => {
    for (const batch of [12, 20, 8]) {
      await Promise.all(Array.from({ length: batch }, async (_, i) => {
        // Two of every four: if the primary hands connections out in strict turns, both
        // workers still get failed requests.
        const down = i % 4 >= 2
        const res = await get(`${p.listen}/${down ? 'down' : 'ok'}/${i}`, { fresh: true })
        if (down) rays.push(rayOf(res))
        t.equal(res.status, down ? 521 : 200)
      }))
      sent += batch
      failed += batch / 2
      await settled(p.admin, text => total(text, 'highproxy_requests_total') === sent)
      for (let scrape = 0; scrape < 3; scrape++) {
        const text = (await get(`${p.admin}/metrics`)).body
        t.equal(total(text, 'highproxy_requests_total'), sent, `requests_total = ${sent} (scrape ${scrape + 1})`)
        t.equal(total(text, 'highproxy_request_duration_seconds_count'), sent, 'every request timed once')
        t.equal(total(text, 'highproxy_requests_total', { route: 'down', status: '521' }), failed)
        t.equal(total(text, 'highproxy_edge_errors_total', { status: '521' }), failed)
        t.equal(total(text, 'highproxy_origin_failures_total', { status: '521', origin: new URL(refused.url).host }), failed)
        t.equal(total(text, 'highproxy_cluster_workers'), 2)
        t.equal(total(text, 'highproxy_cluster_workers_unanswered'), 0)
      }
    }
  })

  await t.test('every ray of 20 failed requests is found, from both workers', async t => {
    t.equal(rays.length, 20)
    const servedBy = new Set<number>()
    for (const ray of rays) {
      const res = await get(`${p.admin}/rays/${ray}`)
      t.equal(res.status, 200, `ray ${ray} found`)
      const body = JSON.parse(res.body) as { ray_id: string, worker: number, attempts: Array<{ ray_id: string, edge_status: number }> }
      t.equal(body.attempts[0]?.ray_id, ray)
      t.equal(body.attempts[0]?.edge_status, 521)
      servedBy.add(body.worker)
    }
    t.same([...servedBy].sort(), [...p.pids].sort(), 'the requests were spread over both workers')
    t.equal((await get(`${p.admin}/rays/ffffffffffffffff`)).status, 404, 'unknown to every worker: 404')
  })

  await t.test('a worker that does not answer is reported, not waited for', async t => {
    const stuck = p.pids[0] as number
    process.kill(stuck, 'SIGSTOP')
    try {
      const scrape = await get(`${p.admin}/metrics`)
      t.equal(scrape.status, 200, 'the scrape answers with what the other worker said')
      t.ok(scrape.ms < ANSWER_TIMEOUT_MS + 1000, `within the timeout (${scrape.ms.toFixed(0)} ms)`)
      t.equal(total(scrape.body, 'highproxy_cluster_workers_unanswered'), 1)
      const health = await get(`${p.admin}/healthz`)
      t.equal(health.status, 503)
      t.match(JSON.parse(health.body), { status: 'unresponsive', workers: { running: 2, answered: 1, unanswered: [stuck] } })
      const lost = await get(`${p.admin}/rays/ffffffffffffffff`)
      t.equal(lost.status, 503, 'not found, but a worker did not answer: not a plain 404')
      t.match(JSON.parse(lost.body), { unanswered: [stuck] })
      await p.waitFor(l => l.msg === 'workers did not answer in time' && l.unanswered?.[0] === stuck)
    } finally {
      process.kill(stuck, 'SIGCONT')
    }
    t.equal((await get(`${p.admin}/healthz`)).status, 200, 'healthy again once it answers')
  })

  p.child.kill('SIGTERM')
  t.equal(await p.exited, 0)
})
