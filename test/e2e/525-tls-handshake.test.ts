// 525: the TLS handshake with the origin fails. Here the origin speaks plain HTTP on the
// port the proxy dials as https, so the ClientHello gets an HTTP 400 back.

import t from 'tap'
import { plainOnTlsOrigin } from '../../src/lab/tls-faults.js'
import type { ErrorBody } from '../../src/page/render.js'
import { accessFor, failureFor, get, rayOf, startProxy, type Got } from '../helpers.js'
import { timed, oneOfTwo, shown, type Timed } from '../timing.js'


t.test('plain HTTP where TLS is expected answers 525', async t => {
  const origin = await plainOnTlsOrigin()
  t.teardown(() => origin.close())
  t.match(origin.url, /^https:\/\/127\.0\.0\.1:\d+$/)
  const originPort = Number(new URL(origin.url).port)
  const proxy = await startProxy({
    timeouts: { connect: '400ms', response: '500ms' },
    routes: [{ origin: origin.url, connect_timeout: '400ms', response_timeout: '500ms', tls: { verify: true } }]
  })
  t.teardown(() => proxy.close())

  const once = (): Promise<Timed<Got>> => timed(() => get(`${proxy.url}/login`, { headers: { accept: 'application/json' } }))
  const res = await once()
  t.equal(res.status, 525)
  const atOnce = (x: Timed<Got>): boolean => x.ms < 400 + x.late
  const tries = await oneOfTwo(res, once, atOnce)
  t.ok(tries.some(atOnce), `answered at once, no timeout involved: ${shown(tries)}`)
  t.equal(res.headers['retry-after'], undefined, 'no Retry-After: retrying will not fix a TLS setup')
  const body = JSON.parse(res.body) as ErrorBody
  t.equal(body.error_name, 'ssl_handshake_failed')
  t.equal(body.error_code, 525)
  t.equal(body.error_category, 'ssl')
  t.equal(body.retryable, false)
  t.equal(body.retry_after, null)
  t.notMatch(res.body, `127.0.0.1:${originPort}`)

  const failure = await proxy.waitForLog(failureFor(rayOf(res)))
  t.equal(failure.edge_status, 525)
  t.equal(failure.phase, 'tls')
  t.equal(failure.error.code, 'HPX_ERR_TLS_HANDSHAKE', 'a failed handshake, not a stalled one')
  t.match(failure.error.cause.code, /SSL|TLS/, `the TLS library's own code: ${String(failure.error.cause.code)}`)
  t.type(failure.timings.connect_ms, 'number', 'TCP connected first')
  t.type(failure.timings.tls_ms, 'number')
  t.equal(failure.timings.ttfb_ms, null)
  t.equal(failure.origin.address, '127.0.0.1')
  t.equal(failure.origin.port, originPort)
  t.not(failure.source, null, 'the proxy\'s end of the TCP connection is named')
  const access = await proxy.waitForLog(accessFor(rayOf(res)))
  t.equal(access.status, 525)

  // The HTML page also has no Retry-After and names the failure.
  const html = await get(`${proxy.url}/login`)
  t.equal(html.status, 525)
  t.equal(html.headers['retry-after'], undefined)
  t.match(html.body, `<title>127.0.0.1:${proxy.port} | 525: SSL handshake failed</title>`)
})

t.test('a TLS handshake that stalls is a 525 at the TLS timeout, never a 522', async t => {
  const net = await import('node:net')
  // Accepts the TCP connection, reads the ClientHello, never answers it.
  const server = net.createServer(s => { s.resume(); s.on('error', () => {}) })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const url = `https://127.0.0.1:${(server.address() as import('node:net').AddressInfo).port}`
  const proxy = await startProxy({ origin: url, timeouts: { connect: '2s', tls: '300ms' } })
  t.teardown(async () => { await proxy.close(); server.close() })
  const start = performance.now()
  const res = await get(`${proxy.url}/`, { headers: { accept: 'application/json' } })
  const took = performance.now() - start
  t.equal(res.status, 525)
  t.ok(took >= 300 && took < 1500, `answered after ${took.toFixed(0)} ms`)
  const failure = await proxy.waitForLog(failureFor(rayOf(res)))
  t.equal(failure.phase, 'tls')
  t.equal(failure.error.code, 'HPX_ERR_TLS_TIMEOUT')
  t.type(failure.timings.connect_ms, 'number', 'the TCP phase is timed apart')
  t.ok(failure.timings.tls_ms >= 300)
})
