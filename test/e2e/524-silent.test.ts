// 524: the origin accepts the connection and reads the request, then never answers.

import t from 'tap'
import { request } from 'undici'
import { silentOrigin } from '../../src/lab/faults.js'
import { healthyOrigin } from '../../src/lab/healthy-origin.js'
import type { ErrorBody } from '../../src/page/render.js'
import { accessFor, client, failureFor, rayOf, startProxy, type Got } from '../helpers.js'
import { timed, oneOfTwo, shown, getWithin, type Timed } from '../timing.js'

const RESPONSE_MS = 500
const TIMEOUTS = { connect: '400ms', response: `${RESPONSE_MS}ms` }
const LATE_OR_EARLY = { early: 0, late: 150 }



t.test('a silent origin answers 524 at the response timeout', async t => {
  const origin = await silentOrigin()
  t.teardown(() => origin.close())
  const originPort = Number(new URL(origin.url).port)
  const proxy = await startProxy({
    timeouts: TIMEOUTS,
    routes: [{ origin: origin.url, connect_timeout: TIMEOUTS.connect, response_timeout: TIMEOUTS.response }]
  })
  t.teardown(() => proxy.close())

  const once = (): Promise<Timed<Got>> => timed(() => getWithin(`${proxy.url}/report`, 3000, { accept: 'application/json' }))
  const res = await once()
  t.equal(res.status, 524)
  // The response timeout runs on undici's headersTimeout, a coarse clock that ticks every
  // 499 ms: it can fire up to ~1 s late and, by its rounding, a hair early. Hence the bounds:
  // never clearly before the timeout, and nowhere near the 100 s default.
  const inTime = (x: Timed<Got>): boolean => x.ms < RESPONSE_MS + LATE_OR_EARLY.late + x.late
  const tries = await oneOfTwo(res, once, inTime)
  t.ok(tries.every(x => x.ms >= RESPONSE_MS - LATE_OR_EARLY.early), `waited the response timeout: ${shown(tries)}`)
  t.ok(tries.some(inTime), `answered less than ${LATE_OR_EARLY.late} ms after the timeout: ${shown(tries)}`)
  t.equal(res.headers['retry-after'], '120')
  const body = JSON.parse(res.body) as ErrorBody
  t.equal(body.error_name, 'timeout')
  t.equal(body.error_code, 524)
  t.equal(body.error_category, 'origin')
  t.notMatch(res.body, `127.0.0.1:${originPort}`)

  const failure = await proxy.waitForLog(failureFor(rayOf(res)))
  t.equal(failure.edge_status, 524)
  t.equal(failure.phase, 'response')
  t.equal(failure.error.code, 'HPX_ERR_RESPONSE_TIMEOUT')
  t.equal(failure.timings.ttfb_ms, null, 'no response headers, so no time to first byte')
  t.type(failure.timings.connect_ms, 'number', 'the connection was made (fresh socket, its dial timings are this request\'s)')
  t.ok(failure.timings.total_ms >= RESPONSE_MS, `total_ms ${String(failure.timings.total_ms)}`)
  t.equal(failure.origin.address, '127.0.0.1')
  t.equal(failure.origin.port, originPort)
  t.not(failure.source, null, 'the proxy\'s own end of the connection is named')
  t.equal(failure.source?.address, '127.0.0.1')
  const access = await proxy.waitForLog(accessFor(rayOf(res)))
  t.equal(access.status, 524)
})

t.test('a route\'s own response_timeout applies when another route has a longer one', async t => {
  const silent = await silentOrigin()
  t.teardown(() => silent.close())
  const healthy = await healthyOrigin()
  t.teardown(() => healthy.close())
  const proxy = await startProxy({
    timeouts: TIMEOUTS,
    routes: [
      { path: '/slow', origin: silent.url, response_timeout: TIMEOUTS.response },
      { path: '/', origin: healthy.url, response_timeout: '30s' }
    ]
  })
  t.teardown(() => proxy.close())

  // Regression: one undici Agent used to serve every route with headersTimeout = the
  // LONGEST route response timeout (30 s here), so /slow answered after 30 s (fixed by
  // 35eb8fa: headersTimeout per request in src/origin/forward.ts). The 3 s deadline trips first.
  const res = await getWithin(`${proxy.url}/slow`, 3000).catch((err: Error) => err)
  t.notOk(res instanceof Error, `per-route response_timeout honoured (${res instanceof Error ? res.message : 'ok'})`)
  if (res instanceof Error) return
  t.equal(res.status, 524)
  t.ok(res.ms >= RESPONSE_MS - LATE_OR_EARLY.early && res.ms < RESPONSE_MS + LATE_OR_EARLY.late, `524 after ${res.ms.toFixed(1)} ms`)
})

t.test('the global timeouts.response applies to routes that do not override it', async t => {
  const origin = await silentOrigin()
  t.teardown(() => origin.close())
  const proxy = await startProxy({ origin: origin.url, timeouts: TIMEOUTS })
  t.teardown(() => proxy.close())

  // Regression: the route's optional response_timeout used to carry a schema default
  // ('100s'), so timeouts.response was never used (fixed in src/config/schema.ts by
  // 35eb8fa). A 100 s wait would trip the 3 s deadline rather than hang the run.
  const res = await getWithin(`${proxy.url}/`, 3000).catch((err: Error) => err)
  t.notOk(res instanceof Error, `answered before the 3 s deadline (${res instanceof Error ? res.message : 'ok'})`)
  if (res instanceof Error) return
  t.equal(res.status, 524)
  t.ok(res.ms >= RESPONSE_MS - LATE_OR_EARLY.early && res.ms < RESPONSE_MS + LATE_OR_EARLY.late, `524 after ${res.ms.toFixed(1)} ms`)
})
