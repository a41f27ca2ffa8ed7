// log.fields: the access line in our names (the default) or in the names, types and
// units of Cloudflare's Logpush http_requests dataset. Real requests, real faults; every
// line checked against the one schema that declares both shapes.

import http from 'node:http'
import https from 'node:https'
import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import { Value } from '@sinclair/typebox/value'
import type { TSchema } from '@sinclair/typebox'
import { AccessRecordSchema, FailureRecordSchema, LogpushRecordSchema } from '../../src/log/log-schema.js'
import { selfSignedCertificate } from '../../src/lab/certificates.js'
import { startLab } from '../../src/lab/index.js'
import { accessFor, get, rayOf, startProxy, type LogLine, type TestProxy } from '../helpers.js'
import { raw } from '../raw-client.js'

/** The fields issue 11 names, with the type Cloudflare's Logpush reference gives each. */
const DOCUMENTED: Record<string, 'int' | 'string' | 'int or string'> = {
  RayID: 'string',
  EdgeStartTimestamp: 'int or string',
  EdgeEndTimestamp: 'int or string',
  EdgeResponseStatus: 'int',
  EdgeTimeToFirstByteMs: 'int',
  OriginResponseStatus: 'int',
  OriginIP: 'string',
  OriginDNSResponseTimeMs: 'int',
  OriginTCPHandshakeDurationMs: 'int',
  OriginTLSHandshakeDurationMs: 'int',
  OriginRequestHeaderSendDurationMs: 'int',
  OriginResponseHeaderReceiveDurationMs: 'int',
  OriginResponseDurationMs: 'int',
  OriginSSLProtocol: 'string',
  ClientIP: 'string',
  ClientRequestHost: 'string',
  ClientRequestMethod: 'string',
  ClientRequestURI: 'string',
  ClientRequestProtocol: 'string',
  ClientRequestUserAgent: 'string'
}

const listen = (server: http.Server | https.Server): Promise<string> => new Promise(resolve => server.listen(0, '127.0.0.1', () => {
  const scheme = server instanceof https.Server ? 'https' : 'http'
  resolve(`${scheme}://127.0.0.1:${(server.address() as AddressInfo).port}`)
}))

/** The raw text of a ray's access line, and the line parsed with its timestamps as exact BigInts. */
function logpushLine (proxy: TestProxy, ray: string): LogLine {
  const text = proxy.lines.find(l => l.includes(`"RayID":"${ray}"`))
  if (text === undefined) throw new Error(`no access line for ${ray}`)
  const line = JSON.parse(text) as LogLine
  for (const key of ['EdgeStartTimestamp', 'EdgeEndTimestamp']) {
    const digits = new RegExp(`"${key}":(\\d+)[,}]`).exec(text)
    line[key] = digits === null ? null : BigInt(digits[1] as string)
  }
  return line
}

function conforms (t: Test, schema: TSchema, line: LogLine, what: string): void {
  const errors = [...Value.Errors(schema, withoutLogger(line))].map(e => `${e.path}: ${e.message}`)
  t.same(errors, [], `${what}: the line matches its schema`)
}

/** pino's own members, which neither shape declares. */
function withoutLogger (line: LogLine): LogLine {
  const { level: _level, time: _time, ...rest } = line
  return rest
}

t.test('the schema declares every Logpush field issue 11 names, with its documented type', async t => {
  const properties = LogpushRecordSchema.properties as Record<string, TSchema>
  for (const [name, type] of Object.entries(DOCUMENTED)) {
    const schema = properties[name]
    if (schema === undefined) { t.fail(`${name}: missing`); continue }
    const declared = schema.type === 'bigint' ? 'int or string' : schema.type === 'integer' ? 'int' : schema.type
    t.equal(declared, type, `${name}: ${type}`)
  }
  for (const name of Object.keys(properties)) {
    t.ok(name === 'msg' || name === 'highproxy' || /^[A-Z][A-Za-z0-9]+$/.test(name), `${name}: Logpush's PascalCase, or one of ours in lower case`)
  }
})

t.test('log.fields: cloudflare — a healthy request, a reused connection, a TLS origin', async t => {
  const origin = http.createServer((req, res) => res.end(`ok ${req.url ?? ''}`))
  const pems = await selfSignedCertificate()
  const secure = https.createServer({ cert: pems.cert, key: pems.key }, (_req, res) => res.end('secure'))
  const url = await listen(origin)
  const secureUrl = await listen(secure)
  const proxy = await startProxy({
    log: { fields: 'cloudflare' },
    pools: [{ name: 'web', origins: [url], connections: { reuse: 'always' } }, { name: 'tls', origins: [secureUrl], tls: { verify: false } }],
    routes: [{ host: 'shop.test', pool: 'web' }, { host: 'secure.test', pool: 'tls' }]
  })
  t.teardown(async () => { await proxy.close(); origin.close(); secure.close() })

  const before = BigInt(Date.now()) * 1_000_000n
  const first = await get(`${proxy.url}/cart?item=7`, { headers: { host: 'shop.test', 'user-agent': 'curl/8.5.0', referer: 'https://shop.test/' } })
  const after = BigInt(Date.now()) * 1_000_000n
  t.equal(first.body, 'ok /cart?item=7')
  await proxy.waitForLog(l => l.RayID === rayOf(first))
  const line = logpushLine(proxy, rayOf(first))
  conforms(t, LogpushRecordSchema, line, 'healthy')
  t.equal(line.RayID, rayOf(first), 'RayID: the ray the client saw, without the edge name')
  t.ok(line.EdgeStartTimestamp >= before - 1_000_000n && line.EdgeStartTimestamp <= line.EdgeEndTimestamp && line.EdgeEndTimestamp <= after + 1_000_000n,
    'unixnano timestamps, exact on the line, start before end, within the request')
  t.match(proxy.lines.find(l => l.includes(rayOf(first))), /"EdgeStartTimestamp":\d{19},/, 'nanoseconds as a bare 19-digit integer')
  t.equal(line.EdgeResponseStatus, 200)
  t.equal(line.OriginResponseStatus, 200)
  t.equal(line.OriginIP, '127.0.0.1')
  t.equal(line.EdgeServerIP, '127.0.0.1', "the edge's own end of the origin connection")
  t.equal(line.OriginSSLProtocol, 'none', 'a plaintext origin')
  t.equal(line.OriginDNSResponseTimeMs, 0, 'an IP literal: no lookup')
  t.ok(line.OriginResponseDurationMs >= line.OriginResponseHeaderReceiveDurationMs, 'the response duration includes the header wait')
  t.equal(line.ClientRequestURI, '/cart?item=7')
  t.equal(line.ClientRequestPath, '/cart')
  t.equal(line.ClientRequestHost, 'shop.test')
  t.equal(line.ClientRequestMethod, 'GET')
  t.equal(line.ClientRequestProtocol, 'HTTP/1.1')
  t.equal(line.ClientRequestScheme, 'http')
  t.equal(line.ClientRequestUserAgent, 'curl/8.5.0')
  t.equal(line.ClientRequestReferer, 'https://shop.test/')
  t.equal(line.ClientIP, '127.0.0.1')
  t.ok(line.ClientSrcPort > 0)
  t.equal(line.ClientSSLProtocol, 'none')
  t.same(line.highproxy, {
    edge_status: null, route: 'shop.test/', pool: 'web', origin: url, attempt: 1, refused: null, phase: null, why: null, error_code: null, cause: null,
    dialled: [{ address: '127.0.0.1', port: Number(new URL(url).port), family: 4, code: null, ms: line.highproxy.dialled[0].ms }]
  }, 'our own facts, under a name Logpush fields cannot clash with')
  t.notOk('ray_id' in line || 'status' in line, 'no highproxy-named field at the top level')

  const second = await get(`${proxy.url}/again`, { headers: { host: 'shop.test' } })
  await proxy.waitForLog(l => l.RayID === rayOf(second))
  const reused = logpushLine(proxy, rayOf(second))
  t.equal(reused.OriginTCPHandshakeDurationMs, 0, 'a reused connection: no TCP handshake (Logpush: 0)')
  t.equal(reused.OriginTLSHandshakeDurationMs, 0)

  const tls = await get(`${proxy.url}/`, { headers: { host: 'secure.test' } })
  t.equal(tls.body, 'secure')
  await proxy.waitForLog(l => l.RayID === rayOf(tls))
  const overTls = logpushLine(proxy, rayOf(tls))
  conforms(t, LogpushRecordSchema, overTls, 'TLS origin')
  t.equal(overTls.OriginSSLProtocol, 'TLSv1.3', "the origin connection's TLS version, as Logpush names it")
})

t.test('log.fields: cloudflare — edge answers from real faults carry the failure under highproxy', async t => {
  const lab = await startLab({ faults: ['521', '522', '530'] })
  t.teardown(() => lab.close())
  const routes = (['521', '522', '530'] as const).filter(k => lab.origins[k]?.available === true)
    .map(k => ({ path: `/${k}`, origin: lab.urls[k], connect_timeout: '300ms' }))
  const proxy = await startProxy({ log: { fields: 'cloudflare' }, routes, limits: { max_url_length: 64 } })
  t.teardown(() => proxy.close())

  if (lab.origins['521']?.available === true) {
    const refused = await get(`${proxy.url}/521`)
    t.equal(refused.status, 521)
    await proxy.waitForLog(l => l.RayID === rayOf(refused))
    const line = logpushLine(proxy, rayOf(refused))
    conforms(t, LogpushRecordSchema, line, '521')
    t.equal(line.EdgeResponseStatus, 521)
    t.equal(line.OriginResponseStatus, 0, 'no origin answered')
    t.equal(line.OriginIP, '127.0.0.1', 'the address dialled')
    t.equal(line.OriginSSLProtocol, 'unknown', 'no origin connection')
    t.ok(line.EdgeTimeToFirstByteMs >= 0 && Number.isInteger(line.EdgeTimeToFirstByteMs), "the edge page's first byte")
    t.match(line.highproxy, { edge_status: 521, phase: 'connect', error_code: 'HPX_ERR_CONNECT', attempt: 1 })
    t.type(line.highproxy.why, 'string')
    t.equal(line.highproxy.dialled[0]?.code, 'ECONNREFUSED', 'the dialled addresses with their errors')
  }
  if (lab.origins['522']?.available === true) {
    const dropped = await get(`${proxy.url}/522`)
    t.equal(dropped.status, 522)
    await proxy.waitForLog(l => l.RayID === rayOf(dropped))
    const line = logpushLine(proxy, rayOf(dropped))
    conforms(t, LogpushRecordSchema, line, '522')
    t.ok(line.OriginTCPHandshakeDurationMs >= 300 && line.OriginTCPHandshakeDurationMs < 1000,
      `522: the time spent on the handshake, in integer ms (${String(line.OriginTCPHandshakeDurationMs)})`)
    t.equal(line.highproxy.phase, 'connect')
  }
  if (lab.origins['530']?.available === true) {
    const unknown = await get(`${proxy.url}/530`)
    t.equal(unknown.status, 530)
    await proxy.waitForLog(l => l.RayID === rayOf(unknown))
    const line = logpushLine(proxy, rayOf(unknown))
    conforms(t, LogpushRecordSchema, line, '530')
    t.equal(line.OriginIP, '', 'no address: the name did not resolve')
    t.equal(line.highproxy.phase, 'dns')
  }
  // A refusal before routing, and one before the handler (Node's parser).
  const long = await get(`${proxy.url}/${'x'.repeat(100)}`)
  t.equal(long.status, 414)
  await proxy.waitForLog(l => l.RayID === rayOf(long))
  const refusedLine = logpushLine(proxy, rayOf(long))
  conforms(t, LogpushRecordSchema, refusedLine, '414')
  t.equal(refusedLine.highproxy.refused, 'url_too_long')
  const bad = await raw(proxy.port, 'GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n')
  t.equal(bad.status, 400)
  const ray = String(bad.headers['cf-ray']).slice(0, 16)
  await proxy.waitForLog(l => l.RayID === ray)
  const parserLine = logpushLine(proxy, ray)
  conforms(t, LogpushRecordSchema, parserLine, "Node's parser refusal")
  t.equal(parserLine.ClientIP, '127.0.0.1')
  t.equal(parserLine.EdgeResponseStatus, 400)
})

t.test('log.fields: highproxy (the default) — our names, and failure lines in one shape in both', async t => {
  const lab = await startLab({ faults: ['521'] })
  t.teardown(() => lab.close())
  const origin = http.createServer((_req, res) => res.end('ok'))
  const url = await listen(origin)
  const proxy = await startProxy({ routes: [{ path: '/dead', origin: lab.urls['521'] }, { origin: url }] })
  const logpush = await startProxy({ log: { fields: 'cloudflare' }, routes: [{ origin: lab.urls['521'] }] })
  t.teardown(async () => { await proxy.close(); await logpush.close(); origin.close() })
  const ok = await get(`${proxy.url}/`)
  const dead = await get(`${proxy.url}/dead`)
  const line = await proxy.waitForLog(accessFor(rayOf(ok)))
  conforms(t, AccessRecordSchema, line, 'highproxy access')
  t.notOk('RayID' in line)
  conforms(t, FailureRecordSchema, await proxy.waitForLog(l => l.msg === 'origin failure' && l.ray_id === rayOf(dead)), 'highproxy failure')
  conforms(t, AccessRecordSchema, await proxy.waitForLog(accessFor(rayOf(dead))), 'highproxy access of an edge answer')
  const other = await get(`${logpush.url}/`)
  conforms(t, FailureRecordSchema, await logpush.waitForLog(l => l.msg === 'origin failure' && l.ray_id === rayOf(other)),
    'cloudflare: the failure line keeps its one shape')
})
