import t from 'tap'
import { refusedOrigin } from '../../src/lab/faults.js'
import { accessFor, failureFor, get, rayOf, startProxy, type Got } from '../helpers.js'
import { timed, oneOfTwo, shown, type Timed } from '../timing.js'

t.test('a refused port answers 521 at once, with the failure logged', async t => {
  const origin = await refusedOrigin()
  const proxy = await startProxy({ origin: origin.url })
  t.teardown(() => proxy.close())

  const once = (): Promise<Timed<Got>> => timed(() => get(`${proxy.url}/some/path?q=1`, { headers: { accept: 'application/json' } }))
  const res = await once()
  t.equal(res.status, 521)
  const atOnce = (x: Timed<Got>): boolean => x.ms < 200 + x.late
  const tries = await oneOfTwo(res, once, atOnce)
  t.ok(tries.every(x => x.status === 521) && tries.some(atOnce), `521 at once: ${shown(tries)}`)
  t.match(res.headers['cf-ray'], /^[0-9a-f]{16}-HPX$/)
  t.equal(res.headers['retry-after'], '120')
  const body = JSON.parse(res.body)
  t.equal(body.error_name, 'web_server_down')
  t.equal(body.error_code, 521)

  const failure = await proxy.waitForLog(failureFor(rayOf(res)))
  t.equal(failure.edge_status, 521)
  t.equal(failure.error.code, 'HPX_ERR_CONNECT')
  t.equal(failure.error.cause.code, 'ECONNREFUSED')
  t.equal(failure.origin.url, origin.url)
  t.equal(failure.origin.address, '127.0.0.1')
  t.equal(failure.phase, 'connect')
  t.equal(failure.attempt, 1)
  t.type(failure.timings.connect_ms, 'number')
  t.equal(failure.timings.tls_ms, null)
  t.equal(failure.timings.ttfb_ms, null)
  const access = await proxy.waitForLog(accessFor(rayOf(res)))
  t.equal(access.status, 521)
  t.equal(access.path, '/some/path')
})
