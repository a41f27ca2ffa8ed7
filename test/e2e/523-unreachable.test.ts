// 523: no route to the origin address. A loopback address (127.77.x.y) is routed
// "unreachable" in the local table, so the kernel answers the dial with EHOSTUNREACH at
// once; no packet ever leaves the host. Needs CAP_NET_ADMIN: skipped (with the reason) without.

import t from 'tap'
import { unreachableOrigin } from '../../src/lab/faults.js'
import type { ErrorBody } from '../../src/page/render.js'
import { accessFor, failureFor, get, rayOf, startProxy, type Got } from '../helpers.js'
import { timed, oneOfTwo, shown, type Timed } from '../timing.js'


const origin = await unreachableOrigin()
t.teardown(() => origin.close())
const skip = origin.available ? false : `523 cannot be made here: ${origin.reason ?? 'no reason given'}`

t.test('an unreachable origin address answers 523 at once', { skip }, async t => {
  const address = new URL(origin.url).hostname
  t.match(address, /^127\./, 'the unreachable address is a loopback one')
  const proxy = await startProxy({
    timeouts: { connect: '400ms', response: '500ms' },
    routes: [{ origin: origin.url, connect_timeout: '400ms', response_timeout: '500ms' }]
  })
  t.teardown(() => proxy.close())

  const once = (): Promise<Timed<Got>> => timed(() => get(`${proxy.url}/x`, { headers: { accept: 'application/json' } }))
  const res = await once()
  t.equal(res.status, 523)
  const atOnce = (x: Timed<Got>): boolean => x.ms < 300 + x.late
  const tries = await oneOfTwo(res, once, atOnce)
  t.ok(tries.some(atOnce), `the kernel said "no route" at once, nothing was waited for: ${shown(tries)}`)
  t.equal(res.headers['retry-after'], '120')
  const body = JSON.parse(res.body) as ErrorBody
  t.equal(body.error_name, 'origin_unreachable')
  t.equal(body.error_code, 523)
  t.equal(body.error_category, 'origin')
  t.notMatch(res.body, address, 'the body never names the origin address')

  const failure = await proxy.waitForLog(failureFor(rayOf(res)))
  t.equal(failure.edge_status, 523)
  t.equal(failure.phase, 'connect')
  t.equal(failure.error.code, 'HPX_ERR_CONNECT')
  t.equal(failure.error.cause.code, 'EHOSTUNREACH')
  t.equal(failure.origin.address, address)
  t.equal(failure.origin.port, 80)
  t.same(failure.dialled.map((a: { address: string, code: string }) => [a.address, a.code]), [[address, 'EHOSTUNREACH']])
  t.equal(failure.timings.ttfb_ms, null)
  const access = await proxy.waitForLog(accessFor(rayOf(res)))
  t.equal(access.status, 523)
})
