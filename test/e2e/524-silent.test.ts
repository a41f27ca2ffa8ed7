// 524: the origin accepts the connection and reads the request, then never answers.

import net, { type AddressInfo } from 'node:net'
import t from 'tap'
import { request } from 'undici'
import { silentOrigin } from '../../src/lab/faults.js'
import { healthyOrigin } from '../../src/lab/healthy-origin.js'
import type { ErrorBody } from '../../src/page/render.js'
import { accessFor, client, failureFor, rayOf, startProxy, type Got } from '../helpers.js'
import { parseAnswer } from '../raw-client.js'
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
  // The response timeout is the attempt's own timer (undici's coarse ~0.5 s clock only backs
  // it up): never before the timeout, and soon after it on a busy 2-core machine.
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

t.test('origin_write: an origin that stops reading a large upload gets 524 at the write timeout, and the failure line says how much it got', async t => {
  const WRITE_MS = 500
  // Reads the request head, then nothing more: its receive buffer fills, then ours.
  const origin = net.createServer(socket => {
    socket.on('error', () => {})
    socket.once('data', () => socket.pause())
  })
  await new Promise<void>(resolve => origin.listen(0, '127.0.0.1', resolve))
  const proxy = await startProxy({ timeouts: { origin_write: `${WRITE_MS}ms` }, origin: `http://127.0.0.1:${(origin.address() as AddressInfo).port}` })
  t.teardown(async () => { await proxy.close(); origin.close() })

  const total = 96 * 1024 * 1024 // under max_body_size (100 MiB), far over what socket buffers hold
  const chunk = Buffer.alloc(64 * 1024, 120)
  const client = net.connect(proxy.port, '127.0.0.1')
  client.on('error', () => {})
  const start = performance.now()
  let written = 0
  const pump = (): void => { while (written < total && client.write(chunk)) written += chunk.length }
  client.write(`POST /upload HTTP/1.1\r\nHost: shop.test\r\nContent-Length: ${total}\r\nAccept: application/json\r\n\r\n`)
  client.on('drain', pump)
  pump()
  const answer = await new Promise<{ text: string, ms: number }>(resolve => {
    let text = ''
    let ms = 0
    client.on('data', d => { if (text === '') ms = performance.now() - start; text += d.toString('latin1') })
    client.on('close', () => resolve({ text, ms }))
    setTimeout(() => client.destroy(), 10_000)
  })
  const got = parseAnswer(answer.text, true)
  t.equal(got.status, 524, 'a 524, not a hang')
  t.ok(answer.ms >= WRITE_MS, `not before the write timeout (${Math.round(answer.ms)} ms)`)
  t.ok(answer.ms < WRITE_MS + 3000, `soon after it, not at the response timeout (${Math.round(answer.ms)} ms)`)
  t.equal(got.headers.connection, 'close', 'the rest of the body is not read: the connection closes')
  t.equal((JSON.parse(got.body) as ErrorBody).error_code, 524)
  const failure = await proxy.waitForLog(failureFor(String(got.headers['cf-ray']).slice(0, 16)))
  t.equal(failure.edge_status, 524)
  t.equal(failure.phase, 'request', 'failed while writing the request')
  t.equal(failure.error.code, 'HPX_ERR_WRITE_TIMEOUT')
  const sent = Number(/\((\d+) bytes sent\)/.exec(failure.error.message)?.[1])
  t.ok(sent > 0 && sent < total, `the failure line says how much of the body the origin got: ${sent} of ${total} bytes`)
  t.match(failure.why, /stopped reading|request body/, 'and why, in words')
})
