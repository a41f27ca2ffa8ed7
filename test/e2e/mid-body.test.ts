// The origin dies in the middle of the body: the status (200) and the first chunks are
// already on their way to the client, so no edge status can be sent any more. The client
// must see a broken body (never a clean, short 200), the failure must be logged as
// truncated, and the proxy must keep serving.

import t from 'tap'
import { request } from 'undici'
import { healthyOrigin } from '../../src/lab/healthy-origin.js'
import { accessFor, client, failureFor, get, startProxy } from '../helpers.js'

const CHUNKS = 50
const SIZE = 1024
const FULL = CHUNKS * SIZE

t.test('an origin that resets after 5 of 50 chunks: 200, truncated body, failure logged', async t => {
  const origin = await healthyOrigin()
  t.teardown(() => origin.close())
  const proxy = await startProxy({
    timeouts: { connect: '400ms', response: '500ms' },
    routes: [{ origin: origin.url, connect_timeout: '400ms', response_timeout: '500ms' }]
  })
  t.teardown(() => proxy.close())

  // Control: the same stream without die_after arrives whole through the proxy.
  const whole = await request(`${proxy.url}/stream?chunks=${CHUNKS}&size=${SIZE}`, { dispatcher: client })
  t.equal(whole.statusCode, 200)
  t.equal((await whole.body.arrayBuffer()).byteLength, FULL, 'a healthy stream arrives whole')

  const res = await request(`${proxy.url}/stream?chunks=${CHUNKS}&size=${SIZE}&die_after=5`, {
    dispatcher: client, signal: AbortSignal.timeout(5000)
  })
  t.equal(res.statusCode, 200, 'the status was sent before the origin died')
  const ray = String(res.headers['cf-ray']).slice(0, 16)
  t.match(ray, /^[0-9a-f]{16}$/)
  let received = 0
  let bodyError: Error | null = null
  try {
    for await (const chunk of res.body) received += (chunk as Buffer).length
  } catch (err) {
    bodyError = err as Error
  }
  t.not(bodyError?.name, 'TimeoutError', 'the broken body ended promptly, it did not hang')
  t.ok(bodyError !== null || received < FULL,
    `the client can tell the body is broken (error: ${bodyError?.message ?? 'none'}, ${received} of ${FULL} bytes)`)
  t.ok(bodyError !== null, `the body ends in an error, not a clean end: ${bodyError?.message ?? 'clean end'}`)
  t.ok(received < FULL, `received ${received} of ${FULL} bytes`)

  const failure = await proxy.waitForLog(failureFor(ray))
  t.equal(failure.truncated, true)
  t.equal(failure.phase, 'body')
  t.equal(failure.edge_status, 520, 'classified as the 520 it would have been')
  t.equal(failure.cause, 'reset')
  t.equal(failure.error.code, 'HPX_ERR_ORIGIN_RESET')
  t.equal(failure.error.cause.code, 'ECONNRESET')
  t.type(failure.timings.ttfb_ms, 'number', 'headers had arrived')
  t.equal(failure.injected, false)
  const access = await proxy.waitForLog(accessFor(ray))
  // Regression: the proxy cutting the client connection itself used to be logged as a
  // client abort (access status 499, "client left"); the client stayed and got a 200 with
  // a broken body (fixed by 35eb8fa: ctx.truncated in src/edge/plugin.ts, now src/listen/plugin.ts).
  t.equal(access.status, 200, 'the access line has the status the client got, not 499')
  t.equal(access.edge_status, null)

  // The proxy is still up and serving.
  const next = await get(`${proxy.url}/echo`)
  t.equal(next.status, 200)
  t.equal(JSON.parse(next.body).url, '/echo')
  const again = await request(`${proxy.url}/stream?chunks=${CHUNKS}&size=${SIZE}`, { dispatcher: client })
  t.equal((await again.body.arrayBuffer()).byteLength, FULL, 'and streams whole bodies again')
})
