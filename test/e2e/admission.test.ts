// What the edge refuses or rewrites before an origin sees a request: paths that could
// escape a prefix route once an origin decodes them, Host headers that are not hosts,
// and identity headers a client has no business setting.

import http from 'node:http'
import net from 'node:net'
import path from 'node:path'
import t from 'tap'
import { accessFor, startProxy } from '../helpers.js'
import { raw } from '../raw-client.js'

interface Seen { url: string, resolved: string, headers: http.IncomingHttpHeaders }

/**
 * An origin that reads paths the way nginx does: %2F and %5C decoded, `\` as `/`, `;`
 * parameters cut, then dot segments resolved. It serves /admin to whoever reaches it.
 */
async function decodingOrigin (): Promise<{ url: string, seen: Seen[], close: () => Promise<void> }> {
  const seen: Seen[] = []
  const server = http.createServer((req, res) => {
    const target = (req.url ?? '/').split('?')[0] as string
    const decoded = decodeURIComponent(target.replace(/%(?![0-9a-f]{2})/gi, '%25')).replace(/\\/g, '/').replace(/;[^/]*/g, '')
    const resolved = path.posix.normalize(decoded)
    seen.push({ url: req.url ?? '', resolved, headers: req.headers })
    res.end(resolved.startsWith('/admin') ? 'ADMIN AREA' : `public ${resolved}`)
  })
  await new Promise<void>(resolve => server.listen({ host: '127.0.0.1', port: 0 }, resolve))
  return { url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`, seen, close: () => new Promise(resolve => server.close(() => resolve())) }
}

const GET = (target: string, extra = ''): string => `GET ${target} HTTP/1.1\r\nhost: shop.test\r\n${extra}connection: close\r\n\r\n`

t.test('a prefix route cannot be escaped: dot segments behind encoded slashes, backslashes and ;params are refused', async t => {
  const origin = await decodingOrigin()
  const proxy = await startProxy({ routes: [{ path: '/api', origin: origin.url }] })
  t.teardown(async () => { await proxy.close(); await origin.close() })
  const escapes = ['/api/..%2fadmin', '/api/%2e%2e%2fadmin', '/api/%2E%2E/admin', '/api/..%5cadmin', '/api\\..\\admin',
    '/api/..;/admin', '/api/.%2e/admin', '/api/x/..%2F..%2Fadmin', '/api/%2e/../admin']
  for (const target of escapes) {
    const res = await raw(proxy.port, GET(target))
    t.equal(res.status, 400, `${target} → 400`)
    t.match(res.headers['cf-ray'], /^[0-9a-f]{16}-HPX$/, `${target}: with a ray id`)
    t.notMatch(res.body, 'ADMIN AREA')
  }
  t.same(origin.seen, [], 'none reached the origin')
  const ok = await raw(proxy.port, GET('/api/users/..lib.js'))
  t.equal(ok.status, 200, 'a name that merely starts with dots is a name')
  const access = proxy.logs.filter(l => l.msg === 'access' && l.status === 400)
  t.equal(access.length, escapes.length)
  t.ok(access.every(l => l.refused === 'dot_segment' || l.refused === 'escaped_slash'), 'each access line says which rule refused it')
})

t.test('escaped slashes: reject by default, keep or unescape when configured', async t => {
  const origin = await decodingOrigin()
  t.teardown(() => origin.close())
  const reject = await startProxy({ routes: [{ path: '/files', origin: origin.url }] })
  t.teardown(() => reject.close())
  const refused = await raw(reject.port, GET('/files/a%2Fb'))
  t.equal(refused.status, 400, 'reject (the default): /files/a%2Fb → 400')
  t.equal((await reject.waitForLog(l => l.msg === 'access' && l.status === 400)).refused, 'escaped_slash')

  const keep = await startProxy({ escaped_slashes: 'keep', routes: [{ path: '/files', origin: origin.url }] })
  t.teardown(() => keep.close())
  t.equal((await raw(keep.port, GET('/files/a%2Fb'))).status, 200, 'keep: forwarded')
  t.equal(origin.seen.at(-1)?.url, '/files/a%2Fb', 'as sent')

  const unescape = await startProxy({ escaped_slashes: 'unescape', routes: [{ path: '/files', origin: origin.url }, { path: '/', origin: 'http://127.0.0.1:9' }] })
  t.teardown(() => unescape.close())
  t.equal((await raw(unescape.port, GET('/files%2Fa'))).status, 200, 'unescape: /files%2Fa is routed as /files/a')
  t.equal(origin.seen.at(-1)?.url, '/files/a', 'and forwarded decoded')
  t.equal((await raw(unescape.port, GET('/files/..%2fadmin'))).status, 400, 'dot segments are still refused')
})

t.test('identity headers from an untrusted client are dropped; X-Forwarded-For starts at the peer', async t => {
  const origin = await decodingOrigin()
  const proxy = await startProxy({ origin: origin.url })
  t.teardown(async () => { await proxy.close(); await origin.close() })
  const forged = 'x-forwarded-for: 6.6.6.6\r\nforwarded: for=6.6.6.6\r\nx-real-ip: 6.6.6.6\r\ntrue-client-ip: 6.6.6.6\r\n' +
    'cf-connecting-ip: 6.6.6.6\r\nx-forwarded-host: evil.test\r\nx-forwarded-proto: https\r\n'
  t.equal((await raw(proxy.port, GET('/who', forged))).status, 200)
  const headers = origin.seen.at(-1)?.headers ?? {}
  t.equal(headers['x-forwarded-for'], '127.0.0.1', 'the chain starts at the peer')
  t.equal(headers['x-real-ip'], '127.0.0.1', 'the client address the edge decided on')
  t.equal(headers['x-forwarded-host'], 'shop.test')
  t.equal(headers['x-forwarded-proto'], 'http')
  for (const name of ['forwarded', 'true-client-ip', 'cf-connecting-ip']) t.equal(headers[name], undefined, `${name} dropped`)
  t.notMatch(JSON.stringify(headers), '6.6.6.6', 'nothing the client forged reaches the origin')
})

t.test('behind trusted proxies: the client is the rightmost untrusted X-Forwarded-For hop, in the header configured', async t => {
  const origin = await decodingOrigin()
  const proxy = await startProxy({ origin: origin.url, client_ip: { trusted_proxies: ['127.0.0.0/8', '10.0.0.0/8'], header: 'cf-connecting-ip' } })
  t.teardown(async () => { await proxy.close(); await origin.close() })
  await raw(proxy.port, GET('/who', 'x-forwarded-for: 6.6.6.6, 203.0.113.7, 10.1.2.3\r\nx-forwarded-proto: https\r\n'))
  const headers = origin.seen.at(-1)?.headers ?? {}
  t.equal(headers['cf-connecting-ip'], '203.0.113.7', 'the load balancer (10.1.2.3) is trusted; the client is the hop before it')
  t.equal(headers['x-forwarded-for'], '6.6.6.6, 203.0.113.7, 10.1.2.3, 127.0.0.1', 'the chain the trusted peer sent, then the peer')
  t.equal(headers['x-forwarded-proto'], 'https', "a trusted proxy's scheme is kept")
  t.equal(headers['x-real-ip'], undefined, 'only the configured header carries the address')
})

t.test('trusted_proxies must be addresses or CIDRs', async t => {
  await t.rejects(startProxy({ origin: 'http://127.0.0.1:9', client_ip: { trusted_proxies: ['not-an-ip'] } }), /client_ip\.trusted_proxies/)
})

t.test('a Host that is not a host gets 400 with a ray id, and never reaches the origin', async t => {
  const origin = await decodingOrigin()
  const proxy = await startProxy({ origin: origin.url })
  t.teardown(async () => { await proxy.close(); await origin.close() })
  for (const host of ['evil.com:80@127.0.0.1', 'a b', '<script>', 'evil.com/../x', 'evil.com?x', 'evil.com#x', 'a%zz', 'x:80:80', 'x:port']) {
    const res = await raw(proxy.port, `GET / HTTP/1.1\r\nhost: ${host}\r\nconnection: close\r\n\r\n`)
    t.equal(res.status, 400, `Host ${JSON.stringify(host)} → 400`)
    const ray = String(res.headers['cf-ray']).slice(0, 16)
    t.equal((await proxy.waitForLog(accessFor(ray))).refused, 'host_invalid')
  }
  t.same(origin.seen, [], 'none reached the origin')
  for (const host of ['shop.test', 'shop.test:8080', '127.0.0.1', '[::1]:80', 'xn--bcher-kva.example', "o'brien&co.example"]) {
    t.equal((await raw(proxy.port, `GET / HTTP/1.1\r\nhost: ${host}\r\nconnection: close\r\n\r\n`)).status, 200, `Host ${host} is a host`)
  }
  const missing = await raw(proxy.port, 'GET / HTTP/1.1\r\nconnection: close\r\n\r\n')
  t.equal(missing.status, 400, 'no Host at all → 400')
  t.match(missing.headers['cf-ray'], /^[0-9a-f]{16}-HPX$/, 'with a ray id (Node would answer it bare)')
})
