// Which headers cross the proxy (edge/forward-headers.ts), each way, rule by rule:
// hop-by-hop fields (RFC 9110 §7.6.1) and the ones a Connection header lists, the identity
// headers a client may forge (dropped, rebuilt from what the edge saw), the ray header,
// Host, the route's own headers, trace context, and on the way back the origin's Server,
// Proxy-Status, redirects that would leak the origin's address, and upgrades. Routes,
// pools and header rules are built from a configuration the way the runtime builds them.

import t, { type Test } from 'tap'
import type { IncomingHttpHeaders } from 'node:http'
import { headerRules, requestHeaders, responseHeaders, type EdgeIdentity } from '../../src/edge/forward-headers.js'
import type { ActiveRoute } from '../../src/edge/exchange.js'
import type { EdgeRuntime } from '../../src/edge/runtime.js'
import type { PoolMember } from '../../src/origin/pool.js'
import { ProxyStatus } from '../../src/page/proxy-status.js'
import { exchangeOf, runtimeOf, type ExchangeShape } from './fixtures/edge.js'

const ORIGIN = 'http://127.0.0.1:9'
const RAY = '0123456789abcdef'

/** Flat name/value list → pairs, to compare. */
const pairs = (flat: readonly string[]): Array<[string, string]> => {
  const out: Array<[string, string]> = []
  for (let i = 0; i < flat.length; i += 2) out.push([flat[i] as string, flat[i + 1] as string])
  return out
}
const names = (flat: readonly string[]): string[] => pairs(flat).map(([n]) => n)
const valuesOf = (flat: readonly string[], name: string): string[] => pairs(flat).filter(([n]) => n === name).map(([, v]) => v)

function edgeOf (t: Test, tree: Record<string, unknown>): EdgeRuntime {
  const edge = runtimeOf(tree)
  t.teardown(() => edge.close())
  return edge
}

const routeOf = (edge: EdgeRuntime, name = 'origin'): ActiveRoute => edge.state.routes.find(r => r.config.name === name) as ActiveRoute

/** What the origin receives for a request of `shape` on `route`. */
function forwarded (route: ActiveRoute, shape: ExchangeShape): string[] {
  const exchange = exchangeOf({ ray: RAY, ...shape })
  return requestHeaders(exchange, route.pool.members[0] as PoolMember, route.settings.headers)
}

const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer',
  'transfer-encoding', 'upgrade', 'expect', 'http2-settings']
const IDENTITY = ['forwarded', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'x-forwarded-port', 'x-real-ip', 'true-client-ip',
  'cf-connecting-ip', 'x-client-ip', 'x-cluster-client-ip']

t.test('request: hop-by-hop fields never reach the origin', async t => {
  const route = routeOf(edgeOf(t, { origin: ORIGIN }))
  const raw = ['Host', 'example.com', 'Accept', '*/*']
  for (const name of HOP_BY_HOP) raw.push(name === 'connection' ? 'Connection' : name, name === 'connection' ? 'keep-alive' : 'x')
  const out = forwarded(route, { raw })
  for (const name of HOP_BY_HOP) t.notOk(names(out).includes(name), `${name} dropped`)
  t.same(valuesOf(out, 'accept'), ['*/*'], 'end-to-end fields pass')
})

t.test('request: fields a Connection header lists are hop-by-hop for that request only', async t => {
  const route = routeOf(edgeOf(t, { origin: ORIGIN }))
  const out = forwarded(route, { raw: ['Host', 'example.com', 'Connection', 'keep-alive, X-Secret-Hop ,x-other', 'X-Secret-Hop', '1', 'X-Other', '2', 'X-Kept', '3'] })
  t.notOk(names(out).includes('x-secret-hop'), 'listed (any case, spaces around) → dropped')
  t.notOk(names(out).includes('x-other'))
  t.same(valuesOf(out, 'x-kept'), ['3'])
  const next = forwarded(route, { raw: ['Host', 'example.com', 'Connection', 'close', 'X-Secret-Hop', '1'] })
  t.same(valuesOf(next, 'x-secret-hop'), ['1'], 'the next request without the listing keeps it')
  const upgrade = forwarded(route, { raw: ['Host', 'example.com', 'Connection', 'Upgrade, X-Hop', 'Upgrade', 'websocket', 'X-Hop', '1'] })
  t.notOk(names(upgrade).includes('x-hop'))
  t.notOk(names(upgrade).includes('upgrade'), 'the upgrade itself is carried by the attempt, not as a header')
})

t.test("request: a client's identity headers are forgeries; the edge's own take their place", async t => {
  const route = routeOf(edgeOf(t, { origin: ORIGIN }))
  const raw = ['Host', 'example.com:8443']
  for (const name of IDENTITY) raw.push(name, 'forged')
  const out = forwarded(route, { raw, ip: '192.0.2.1', peer: '10.0.0.7', forwardedFor: '192.0.2.1, 10.0.0.7', forwardedProto: 'https' })
  for (const name of IDENTITY) t.notOk(valuesOf(out, name).includes('forged'), `${name}: the client's value is gone`)
  t.same(valuesOf(out, 'x-forwarded-for'), ['192.0.2.1, 10.0.0.7'], 'X-Forwarded-For: the chain client-ip.ts decided')
  t.same(valuesOf(out, 'x-forwarded-proto'), ['https'])
  t.same(valuesOf(out, 'x-forwarded-host'), ['example.com:8443'], 'X-Forwarded-Host: the Host as received')
  for (const name of ['forwarded', 'x-forwarded-port', 'cf-connecting-ip', 'true-client-ip', 'x-client-ip', 'x-cluster-client-ip']) {
    t.notOk(names(out).includes(name), `${name} is not set by the edge`)
  }
  t.same(valuesOf(out, 'x-real-ip'), ['192.0.2.1'], 'the client-address header (default X-Real-IP): the decided address, not the peer (a trusted proxy)')
})

t.test('request: the client-address header is configurable, or off', async t => {
  const custom = routeOf(edgeOf(t, { origin: ORIGIN, client_ip: { header: 'X-Client-Addr' } }))
  const out = forwarded(custom, { raw: ['Host', 'h', 'X-Client-Addr', 'forged', 'CF-Connecting-IP', 'forged'], ip: '10.0.0.7' })
  t.same(valuesOf(out, 'x-client-addr'), ['10.0.0.7'])
  t.notOk(names(out).includes('cf-connecting-ip'))
  const off = routeOf(edgeOf(t, { origin: ORIGIN, client_ip: { header: false } }))
  const none = forwarded(off, { raw: ['Host', 'h', 'CF-Connecting-IP', 'forged'], ip: '10.0.0.7' })
  t.notOk(names(none).includes('cf-connecting-ip'), 'off: not sent, and the forged one still dropped')
})

t.test("request: the ray header is the edge's, its value the ray and the edge's name", async t => {
  const route = routeOf(edgeOf(t, { origin: ORIGIN, edge: { name: 'ams', ray_header: 'X-Ray' } }))
  const out = forwarded(route, { raw: ['Host', 'h', 'X-Ray', 'forged', 'cf-ray', 'passes'] })
  t.same(valuesOf(out, 'x-ray'), [`${RAY}-ams`])
  t.same(valuesOf(out, 'cf-ray'), ['passes'], 'only the configured ray header is the edge\'s')
})

t.test("request: Host is the origin's own, or the client's under host_header: keep", async t => {
  const edge = edgeOf(t, {
    routes: [
      { name: 'own', path: '/own', origin: 'http://127.0.0.1:9' },
      { name: 'keep', path: '/keep', origin: 'http://127.0.0.1:9', host_header: 'keep' },
      { name: 'v6', path: '/v6', origin: 'http://[::1]:8080' }
    ]
  })
  t.same(valuesOf(forwarded(routeOf(edge, 'own'), { raw: ['Host', 'example.com'] }), 'host'), ['127.0.0.1:9'])
  t.same(valuesOf(forwarded(routeOf(edge, 'keep'), { raw: ['Host', 'example.com:8080'] }), 'host'), ['example.com:8080'])
  t.same(valuesOf(forwarded(routeOf(edge, 'keep'), { raw: [] }), 'host'), ['127.0.0.1:9'], 'keep with no Host: the origin\'s')
  t.same(valuesOf(forwarded(routeOf(edge, 'v6'), { raw: ['Host', 'example.com'] }), 'host'), ['[::1]:8080'])
  const out = forwarded(routeOf(edge, 'own'), { raw: ['Host', 'example.com'] })
  t.equal(names(out).filter(n => n === 'host').length, 1, 'exactly one Host')
  t.equal(names(out)[names(out).length - 1], 'host')
})

t.test("request: the route's headers replace the client's of the same name", async t => {
  const route = routeOf(edgeOf(t, { routes: [{ name: 'origin', origin: ORIGIN, request_headers: { 'X-Tenant': 'blue', Authorization: 'Bearer edge' } }] }))
  const out = forwarded(route, { raw: ['Host', 'h', 'X-Tenant', 'red', 'authorization', 'Bearer client', 'X-Other', '1'] })
  t.same(valuesOf(out, 'x-tenant'), ['blue'])
  t.same(valuesOf(out, 'authorization'), ['Bearer edge'])
  t.same(valuesOf(out, 'x-other'), ['1'])
})

t.test("request: HTTP/2's pseudo-headers become the request line, repeated fields stay repeated, Via passes", async t => {
  const route = routeOf(edgeOf(t, { origin: ORIGIN }))
  const out = forwarded(route, {
    http2: true,
    raw: [':method', 'GET', ':path', '/', ':scheme', 'https', ':authority', 'example.com', 'set-cookie', 'a=1', 'set-cookie', 'b=2', 'via', '1.1 upstream']
  })
  t.notOk(names(out).some(n => n.startsWith(':')), 'no pseudo-header')
  t.same(valuesOf(out, 'x-forwarded-host'), ['example.com'], ':authority is the Host')
  t.same(valuesOf(out, 'set-cookie'), ['a=1', 'b=2'], 'a list stays a list')
  t.same(valuesOf(out, 'via'), ['1.1 upstream'], 'the edge adds no Via (as Cloudflare); a client\'s passes')
})

t.test("request: with tracing on, the client's trace context never reaches the origin as it came", async t => {
  const edge = edgeOf(t, { origin: ORIGIN })
  const route = routeOf(edge)
  const traced: EdgeIdentity = { ...edge.identity, traced: true }
  const rules = headerRules(route.config, traced, edge.flags, null)
  const raw = ['Host', 'h', 'traceparent', '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', 'tracestate', 'x=1']
  const on = requestHeaders(exchangeOf({ raw }), route.pool.members[0] as PoolMember, rules)
  t.notOk(names(on).includes('traceparent'))
  t.notOk(names(on).includes('tracestate'))
  const off = forwarded(route, { raw })
  t.same(valuesOf(off, 'traceparent'), [raw[3]], 'tracing off: the client\'s passes untouched')
})

/** The client's response for an origin's `status` and headers. */
function answered (route: ActiveRoute, origin: IncomingHttpHeaders, shape: ExchangeShape = {}, status = 200, upgrade = false, rules = route.settings.headers): string[] {
  const exchange = exchangeOf({ ray: RAY, raw: ['Host', 'example.com'], ...shape })
  return responseHeaders(exchange, route.pool.members[0] as PoolMember, status, origin, rules, upgrade)
}

t.test("response: hop-by-hop fields, the origin's Server and its ray header are replaced by the edge's", async t => {
  const edge = edgeOf(t, { origin: ORIGIN })
  const route = routeOf(edge)
  const origin: IncomingHttpHeaders = { 'content-type': 'text/plain', server: 'nginx/1.2.3', 'cf-ray': 'origin-ray' }
  for (const name of HOP_BY_HOP) origin[name] = 'x'
  const out = answered(route, origin)
  for (const name of HOP_BY_HOP) t.notOk(names(out).includes(name), `${name} dropped`)
  t.same(valuesOf(out, 'server'), ['highproxy'], 'the origin\'s Server does not leak')
  t.same(valuesOf(out, 'cf-ray'), [`${RAY}-${edge.config.edgeName}`])
  t.same(valuesOf(out, 'content-type'), ['text/plain'])
})

t.test('response: an upgrade keeps Upgrade (the 101 names the protocol), never Connection', async t => {
  const route = routeOf(edgeOf(t, { origin: ORIGIN }))
  const out = answered(route, { upgrade: 'websocket', connection: 'Upgrade', 'sec-websocket-accept': 'abc' }, {}, 101, true)
  t.same(valuesOf(out, 'upgrade'), ['websocket'])
  t.notOk(names(out).includes('connection'))
  t.same(valuesOf(out, 'sec-websocket-accept'), ['abc'])
  t.notOk(names(answered(route, { upgrade: 'websocket' })).includes('upgrade'), 'not an upgrade: dropped')
})

t.test("response: fields the origin's Connection header lists are hop-by-hop for that response only", async t => {
  const route = routeOf(edgeOf(t, { origin: ORIGIN }))
  const out = answered(route, { connection: 'keep-alive, X-Hop ,x-other', 'x-hop': '1', 'x-other': '2', 'x-kept': '3' })
  t.notOk(names(out).includes('x-hop'), 'listed (any case, spaces around) → dropped')
  t.notOk(names(out).includes('x-other'))
  t.same(valuesOf(out, 'x-kept'), ['3'], 'not listed → kept')
  t.same(valuesOf(answered(route, { connection: 'close', 'x-hop': '1' }), 'x-hop'), ['1'], 'a later response lists nothing: kept')
  const upgrade = answered(route, { upgrade: 'websocket', connection: 'Upgrade, X-Hop', 'x-hop': '1' }, {}, 101, true)
  t.same(valuesOf(upgrade, 'upgrade'), ['websocket'], 'an upgrade keeps Upgrade although Connection lists it')
  t.notOk(names(upgrade).includes('x-hop'))
})

t.test('response: repeated fields stay repeated (Set-Cookie)', async t => {
  const route = routeOf(edgeOf(t, { origin: ORIGIN }))
  t.same(valuesOf(answered(route, { 'set-cookie': ['a=1', 'b=2'] }), 'set-cookie'), ['a=1', 'b=2'])
})

t.test("response: the route's headers replace the origin's; the edge's (HSTS) yield to the route's", async t => {
  const edge = edgeOf(t, {
    routes: [
      { name: 'own', path: '/own', origin: ORIGIN, response_headers: { 'X-Frame-Options': 'DENY', 'Strict-Transport-Security': 'max-age=1' } },
      { name: 'plain', path: '/', origin: ORIGIN }
    ]
  })
  const ownRoute = routeOf(edge, 'own')
  const hsts = ['strict-transport-security', 'max-age=63072000']
  const own = headerRules(ownRoute.config, edge.identity, edge.flags, null, hsts)
  const out = answered(ownRoute, { 'x-frame-options': 'SAMEORIGIN', 'strict-transport-security': 'max-age=5' }, {}, 200, false, own)
  t.same(valuesOf(out, 'x-frame-options'), ['DENY'])
  t.same(valuesOf(out, 'strict-transport-security'), ['max-age=1'], 'the route\'s own wins over the edge\'s and the origin\'s')
  const plainRoute = routeOf(edge, 'plain')
  const plain = headerRules(plainRoute.config, edge.identity, edge.flags, null, hsts)
  t.same(valuesOf(answered(plainRoute, { 'strict-transport-security': 'max-age=5' }, {}, 200, false, plain), 'strict-transport-security'),
    ['max-age=63072000'], 'the edge\'s over the origin\'s')
})

t.test('response: Proxy-Status with received-status when configured; the origin\'s own members kept first', async t => {
  const edge = edgeOf(t, { origin: ORIGIN, edge: { received_status: true } })
  const route = routeOf(edge)
  const out = answered(route, { 'proxy-status': 'upstream-cache; hit' }, {}, 503)
  const status = valuesOf(out, 'proxy-status')
  t.equal(status.length, 1, 'one field')
  t.equal(status[0], `upstream-cache; hit, ${edge.config.edgeName};received-status=503`)
  t.same(valuesOf(answered(route, {}, {}, 200), 'proxy-status'), [new ProxyStatus({ edgeName: edge.config.edgeName }).forRelayed(200)])
  const off = routeOf(edgeOf(t, { origin: ORIGIN }))
  t.same(valuesOf(answered(off, { 'proxy-status': 'upstream-cache; hit' }), 'proxy-status'), ['upstream-cache; hit'], 'off: the origin\'s passes alone')
})

t.test("response: redirects to the origin's address are rewritten to the client's host (nginx's proxy_redirect default)", async t => {
  const edge = edgeOf(t, {
    routes: [
      { name: 'strip', path: '/app/', origin: ORIGIN, strip_prefix: true },
      { name: 'plain', path: '/', origin: ORIGIN }
    ]
  })
  const plain = routeOf(edge, 'plain')
  const https = { scheme: 'https' as const, raw: ['Host', 'example.com'] }
  t.same(valuesOf(answered(plain, { location: `${ORIGIN}/next?x=1` }, https, 302), 'location'), ['https://example.com/next?x=1'])
  t.same(valuesOf(answered(plain, { 'content-location': `${ORIGIN}/doc` }, https), 'content-location'), ['https://example.com/doc'])
  t.same(valuesOf(answered(plain, { location: 'https://elsewhere.example/x' }, https, 302), 'location'), ['https://elsewhere.example/x'], 'another site: untouched')
  t.same(valuesOf(answered(plain, { location: '/relative' }, https, 302), 'location'), ['/relative'])
  t.same(valuesOf(answered(plain, { location: `${ORIGIN}0/x` }, https, 302), 'location'), ['https://example.com0/x'],
    'a prefix match of the origin string (port 9 vs 90) is rewritten too: the rule compares strings')
  const strip = routeOf(edge, 'strip')
  t.same(valuesOf(answered(strip, { location: `${ORIGIN}/login` }, https, 302), 'location'), ['https://example.com/app/login'], 'a stripped prefix is put back')
})

t.test('response: a draining server closes HTTP/1 connections; HTTP/2 has no Connection header', async t => {
  const edge = edgeOf(t, { origin: ORIGIN })
  const route = routeOf(edge)
  t.notOk(names(answered(route, {})).includes('connection'))
  edge.flags.draining = true
  t.same(valuesOf(answered(route, {}), 'connection'), ['close'])
  t.notOk(names(answered(route, {}, { http2: true })).includes('connection'))
})

t.test('headerRules: what is dropped is decided once per route', async t => {
  const edge = edgeOf(t, { routes: [{ name: 'origin', origin: ORIGIN, request_headers: { 'X-A': '1' }, response_headers: { 'X-B': '2' } }] })
  const route = routeOf(edge)
  const rules = headerRules(route.config, { rayHeader: 'x-ray', edgeName: 'ams', clientIpHeader: 'x-ip' }, edge.flags, null)
  for (const name of [...HOP_BY_HOP, ...IDENTITY, 'host', 'x-ray', 'x-ip', 'x-a']) t.ok(rules.dropRequest.has(name), `request drops ${name}`)
  t.notOk(rules.dropRequest.has('traceparent'), 'trace context only when traced')
  for (const name of [...HOP_BY_HOP, 'server', 'x-ray', 'x-b']) t.ok(rules.dropResponse.has(name), `response drops ${name}`)
  t.notOk(rules.dropResponse.has('proxy-status'), 'no received-status: the origin\'s Proxy-Status passes')
  t.same(rules.requestExtra, ['x-a', '1'])
  t.same(rules.responseExtra, ['x-b', '2'])
  t.equal(rules.redirectPrefix, '')
})
