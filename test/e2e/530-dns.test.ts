// 530 (body error 1016): the origin's host name does not resolve.
//
// Loopback only, DNS included: a plain `origin.invalid` is NOT answered locally by glibc,
// it is sent to the resolver in /etc/resolv.conf (checked with strace on the test box).
// So the name used here has a 64-octet label: still a real name under .invalid (RFC 6761),
// going through the real getaddrinfo(), but glibc refuses to encode a label over 63
// octets (RFC 1035) and fails the lookup with ENOTFOUND without sending a packet.

import t from 'tap'
import type { ErrorBody } from '../../src/page/render.js'
import { accessFor, failureFor, get, rayOf, startProxy, type Got } from '../helpers.js'
import { timed, oneOfTwo, shown, type Timed } from '../timing.js'

const HOST = `${'nx'.repeat(32)}.invalid`
const ORIGIN = `http://${HOST}`


t.test('a host name that does not resolve answers 530 with error 1016', async t => {
  t.equal(HOST.split('.')[0]?.length, 64, 'the label is over the 63-octet DNS limit: no query can leave the host')
  const proxy = await startProxy({
    timeouts: { connect: '400ms', response: '500ms' },
    routes: [{ origin: ORIGIN, connect_timeout: '400ms', response_timeout: '500ms' }]
  })
  t.teardown(() => proxy.close())

  const once = (): Promise<Timed<Got>> => timed(() => get(`${proxy.url}/index.html`, { headers: { accept: 'application/json' } }))
  const res = await once()
  t.equal(res.status, 530)
  const atOnce = (x: Timed<Got>): boolean => x.ms < 400 + x.late
  const tries = await oneOfTwo(res, once, atOnce)
  t.ok(tries.some(atOnce), `answered at once: ${shown(tries)}`)
  t.equal(res.headers['retry-after'], undefined, 'no Retry-After for a DNS error')
  const body = JSON.parse(res.body) as ErrorBody
  t.equal(body.status, 530)
  t.equal(body.error_code, 1016)
  t.equal(body.error_name, 'origin_dns_error')
  t.equal(body.error_category, 'dns')
  t.equal(body.title, 'Error 1016: Origin DNS error')
  t.notMatch(res.body, HOST, 'the body never names the origin host')

  const failure = await proxy.waitForLog(failureFor(rayOf(res)))
  t.equal(failure.edge_status, 530)
  t.equal(failure.phase, 'dns')
  t.equal(failure.error.code, 'HPX_ERR_DNS')
  t.equal(failure.error.cause.code, 'ENOTFOUND')
  t.equal(failure.origin.url, ORIGIN)
  t.equal(failure.origin.address, null, 'no address: nothing was dialled')
  t.same(failure.dialled, [])
  t.type(failure.timings.dns_ms, 'number')
  t.equal(failure.timings.connect_ms, null)
  t.equal(failure.source, null)
  const access = await proxy.waitForLog(accessFor(rayOf(res)))
  t.equal(access.status, 530)

  const html = await get(`${proxy.url}/index.html`)
  t.equal(html.status, 530)
  t.match(html.body, `<title>127.0.0.1:${proxy.port} | 530: Origin DNS error</title>`)
})
