// RFC 9209 Proxy-Status: a client that knows only the RFC can tell every failure apart
// from the headers alone. Each edge status from its real fault (the lab), the header
// parsed as an RFC 8941 list.

import http from 'node:http'
import net from 'node:net'
import tls from 'node:tls'
import t from 'tap'
import { Token, parseList, type Item } from 'structured-headers'
import { selfSignedCertificate } from '../../src/lab/certificates.js'
import { startLab } from '../../src/lab/index.js'
import { get, startProxy } from '../helpers.js'
import { raw } from '../raw-client.js'

interface Member { name: string, params: Map<string, unknown> }

/** The header, parsed; every member's name and parameters. */
function members (value: string | undefined): Member[] {
  if (value === undefined) throw new Error('no Proxy-Status header')
  return parseList(value).map(m => {
    const [name, params] = m as Item
    return { name: name instanceof Token ? name.toString() : String(name), params }
  })
}

/** Our member (the last, RFC 9209 §2: the proxy closest to the client comes last). */
function ours (value: string | undefined): Member {
  const list = members(value)
  return list[list.length - 1] as Member
}

const tokenOf = (v: unknown): string | null => v instanceof Token ? v.toString() : null

t.test('every edge status from its real fault carries the registry type of that fault', async t => {
  const lab = await startLab()
  t.teardown(() => lab.close())
  const origins = lab.origins
  const routes: Array<Record<string, unknown>> = []
  const cases: Array<[string, string, Record<string, unknown>?]> = [
    ['520-reset', 'connection_terminated'],
    ['520-empty', 'http_response_incomplete'],
    ['520-garbage', 'http_protocol_error'],
    ['520-headers', 'http_response_header_section_size'],
    ['521', 'connection_refused'],
    ['522', 'connection_timeout'],
    ['523', 'destination_ip_unroutable'],
    ['524', 'http_response_timeout'],
    ['525', 'tls_protocol_error'],
    ['526', 'tls_certificate_error'],
    ['530', 'dns_error', { rcode: 'NXDOMAIN' }]
  ]
  for (const [key] of cases) {
    const o = origins[key as keyof typeof origins]
    if (o?.available === true) routes.push({ path: `/${key}`, origin: o.url, strip_prefix: true, connect_timeout: '300ms', response_timeout: '300ms' })
  }
  const proxy = await startProxy({ routes })
  t.teardown(() => proxy.close())
  for (const [key, type, extra] of cases) {
    if (origins[key as keyof typeof origins]?.available !== true) { t.comment(`${key}: not available here`); continue }
    const res = await get(`${proxy.url}/${key}`, { headers: { accept: 'application/json' } })
    const member = ours(res.headers['proxy-status'])
    t.equal(member.name, 'HPX', `${key}: names the edge`)
    t.equal(tokenOf(member.params.get('error')), type, `${key} (${res.status}): error=${type}`)
    t.equal(member.params.get('next-hop'), `/${key}`.replace(/^\//, '*/'), `${key}: next-hop is the route's pool, as a string`)
    t.notMatch(String(member.params.get('next-hop')), /127\.0\.0\.1|\d+\.\d+\.\d+\.\d+/, `${key}: never an address`)
    t.type(member.params.get('details'), 'string', `${key}: details, in words`)
    for (const [k, v] of Object.entries(extra ?? {})) t.equal(member.params.get(k), v, `${key}: ${k}=${String(v)}`)
  }
})

t.test('a TLS alert from the origin: tls_alert_received with the alert id and name', async t => {
  const pems = await selfSignedCertificate()
  // Only a cipher the edge does not offer: the origin ends the handshake with an alert.
  const origin = tls.createServer({ cert: pems.cert, key: pems.key, maxVersion: 'TLSv1.2', ciphers: 'CAMELLIA128-SHA' }, s => s.end())
  origin.on('tlsClientError', () => {})
  await new Promise<void>(resolve => origin.listen(0, '127.0.0.1', resolve))
  const proxy = await startProxy({ origin: `https://127.0.0.1:${(origin.address() as net.AddressInfo).port}`, tls: { verify: false } })
  t.teardown(async () => { await proxy.close(); origin.close() })
  const res = await get(`${proxy.url}/`)
  t.equal(res.status, 525)
  const member = ours(res.headers['proxy-status'])
  t.equal(tokenOf(member.params.get('error')), 'tls_alert_received')
  t.equal(member.params.get('alert-id'), 40)
  t.equal(member.params.get('alert-message'), 'handshake_failure')
})

t.test('status_rewrite changes the status line, never the Proxy-Status', async t => {
  const lab = await startLab({ faults: ['521'] })
  t.teardown(() => lab.close())
  const proxy = await startProxy({ routes: [{ origin: lab.urls['521'], status_rewrite: { 521: 502 } }] })
  t.teardown(() => proxy.close())
  const res = await get(`${proxy.url}/`)
  t.equal(res.status, 502, 'rewritten for clients that know only standard codes')
  t.equal(tokenOf(ours(res.headers['proxy-status']).params.get('error')), 'connection_refused', 'a client that knows RFC 9209 still reads what happened')
})

t.test("the edge's own answers: pool down, no route, refusals, connection limit", async t => {
  const lab = await startLab({ faults: ['521'] })
  t.teardown(() => lab.close())
  const slow = http.createServer((_req, res) => setTimeout(() => res.end('late'), 800))
  await new Promise<void>(resolve => slow.listen(0, '127.0.0.1', resolve))
  const proxy = await startProxy({
    pools: [{ name: 'web', origins: [lab.urls['521']], health: { failures: 1, cooldown: '10s' } },
      { name: 'busy', origins: [`http://127.0.0.1:${(slow.address() as net.AddressInfo).port}`], connections: { max_per_origin: 1, max_queue_per_origin: 0 } }],
    routes: [{ host: 'shop.test', pool: 'web' }, { host: 'busy.test', pool: 'busy' }],
    limits: { max_url_length: 100 }
  })
  t.teardown(async () => { await proxy.close(); slow.close() })
  await get(`${proxy.url}/`, { headers: { host: 'shop.test' } })
  const down = await get(`${proxy.url}/`, { headers: { host: 'shop.test' } })
  t.equal(tokenOf(ours(down.headers['proxy-status']).params.get('error')), 'destination_unavailable', 'every origin of the pool down')
  t.equal(ours(down.headers['proxy-status']).params.get('next-hop'), 'web')
  const nowhere = await get(`${proxy.url}/`, { headers: { host: 'nowhere.test' } })
  t.equal(tokenOf(ours(nowhere.headers['proxy-status']).params.get('error')), 'destination_not_found', '404: no route')
  // Raw bytes: a WHATWG URL would resolve the encoded dot segment before sending.
  const dots = await raw(proxy.port, 'GET /a/%2e%2e/b HTTP/1.1\r\nHost: shop.test\r\nConnection: close\r\n\r\n')
  t.equal(dots.status, 400)
  t.equal(tokenOf(ours(dots.headers['proxy-status']).params.get('error')), 'http_request_error', '400: malformed')
  const long = await get(`${proxy.url}/${'x'.repeat(200)}`, { headers: { host: 'shop.test' } })
  t.equal(tokenOf(ours(long.headers['proxy-status']).params.get('error')), 'http_request_denied', '414: over a limit')
  const [, full] = await Promise.all([
    get(`${proxy.url}/`, { headers: { host: 'busy.test' } }),
    new Promise<Awaited<ReturnType<typeof get>>>(resolve => setTimeout(() => resolve(get(`${proxy.url}/`, { headers: { host: 'busy.test' } })), 100))
  ])
  t.equal(full.status, 503)
  t.equal(tokenOf(ours(full.headers['proxy-status']).params.get('error')), 'connection_limit_reached', '503: the origin\'s connections are all busy')
})

t.test('received-status on relayed responses (off by default), after the origin\'s own member', async t => {
  const origin = http.createServer((req, res) => {
    if (req.url === '/behind') res.setHeader('proxy-status', 'InnerCache; received-status=503')
    res.writeHead(req.url === '/fail' ? 502 : 200).end('x')
  })
  await new Promise<void>(resolve => origin.listen(0, '127.0.0.1', resolve))
  const url = `http://127.0.0.1:${(origin.address() as net.AddressInfo).port}`
  const off = await startProxy({ origin: url })
  const on = await startProxy({ origin: url, edge: { received_status: true } })
  t.teardown(async () => { await off.close(); await on.close(); origin.close() })
  t.equal((await get(`${off.url}/`)).headers['proxy-status'], undefined, 'off: an origin\'s answer passes as it is')
  const fail = await get(`${on.url}/fail`)
  t.equal(fail.status, 502)
  t.same(members(fail.headers['proxy-status']).map(m => [m.name, m.params.get('received-status'), m.params.has('error')]), [['HPX', 502, false]],
    "on: the origin's own 502, told apart from the edge's (no error parameter)")
  const behind = members((await get(`${on.url}/behind`)).headers['proxy-status'])
  t.same(behind.map(m => m.name), ['InnerCache', 'HPX'], 'appended to the member the origin sent')
})
