// Admission (edge/admit.ts), rule by rule: each refusal with its status and reason, the
// request just inside each limit admitted, and the edge cases of Host, methods, targets,
// dot segments and escaped slashes. The request is what Node's parser hands over
// (fixtures/edge.ts); host and path are what handle-request passes (the Host as received,
// the target's path).

import t from 'tap'
import { HOST, refusalOf, unescapeSlashes, type AdmitLimits } from '../../src/edge/admit.js'
import { splitTarget } from '../../src/edge/router.js'
import type { EscapedSlashes } from '../../src/config/schema.js'
import { clientRequest, configOf, type RequestShape } from './fixtures/edge.js'

const LIMITS: AdmitLimits = { maxUrlLength: 64, maxHeaderCount: 8, maxRequestHeaderBytes: 400 }

interface Case extends RequestShape {
  http2?: boolean
  escaped?: EscapedSlashes
  limits?: AdmitLimits
}

/** The refusal of one request, as handle-request asks: its Host as received and its target's path. */
function admit (c: Case): { status: number, reason: string } | null {
  const req = clientRequest(c)
  const host = (req.headers[':authority'] as string | undefined) ?? req.headers.host ?? ''
  return refusalOf(req, c.http2 ?? false, host, splitTarget(req.url ?? '/').path, c.escaped ?? 'reject', c.limits ?? LIMITS)
}

const refused = (status: number, reason: string) => ({ status, reason })

/** An HTTP/2 request's headers as Node reports them: the pseudo-headers first. */
const h2 = (path: string, method = 'GET', authority = 'example.com', more: string[] = []): Case => ({
  http2: true, httpVersion: '2.0', method, url: path,
  raw: [':method', method, ':path', path, ':scheme', 'https', ':authority', authority, ...more]
})

t.test('a plain request is admitted, HTTP/1.1, HTTP/1.0 and HTTP/2 alike', async t => {
  t.equal(admit({}), null)
  t.equal(admit({ httpVersion: '1.0' }), null)
  t.equal(admit(h2('/x?y=1')), null)
})

t.test('HTTP version: only 1.0 and 1.1 are HTTP/1 (505)', async t => {
  for (const v of ['2.0', '1.7', '0.9', '3.0']) t.same(admit({ httpVersion: v }), refused(505, 'http_version'), `HTTP/${v} on a request line`)
  t.equal(admit({ ...h2('/'), httpVersion: '2.0' }), null, 'HTTP/2 itself is not a request line')
})

t.test('Transfer-Encoding: chunked only, and never on HTTP/1.0', async t => {
  const te = (value: string, httpVersion = '1.1') => admit({ httpVersion, method: 'POST', raw: ['Host', 'example.com', 'Transfer-Encoding', value] })
  t.equal(te('chunked'), null)
  t.equal(te(' Chunked '), null, 'case and spaces do not matter')
  t.same(te('gzip'), refused(501, 'transfer_coding'), 'a coding the parser would pass on undecoded')
  t.same(te('gzip, chunked'), refused(501, 'transfer_coding'))
  t.same(te('chunked', '1.0'), refused(400, 'transfer_coding'), 'HTTP/1.0 framing with Transfer-Encoding is faulty')
})

t.test('targets: a path, `*` for OPTIONS only, the absolute form on HTTP/1 only', async t => {
  t.equal(admit({ method: 'OPTIONS', url: '*' }), null)
  t.same(admit({ method: 'GET', url: '*' }), refused(400, 'asterisk_target'))
  t.equal(admit({ url: 'http://other.host/x?y' }), null, 'absolute form (RFC 9112 §3.2.2)')
  t.equal(admit({ url: 'HTTPS://other.host' }), null)
  t.same(admit({ url: 'ftp://other.host/x' }), refused(400, 'target_invalid'))
  t.same(admit({ url: 'other.host:443' }), refused(400, 'target_invalid'), 'authority form (CONNECT) is not proxied')
  t.same(admit({ url: 'x' }), refused(400, 'target_invalid'))
  t.same(admit(h2('http://other.host/x')), refused(400, 'target_invalid'), "HTTP/2's :path must be a path")
  t.same(admit({ ...h2('*', 'OPTIONS') }), null, 'OPTIONS * on HTTP/2 too')
})

t.test('methods: any token on HTTP/2; the HTTP/1 parser checked them already', async t => {
  t.equal(admit(h2('/', 'PURGE')), null)
  t.same(admit(h2('/', 'GET X')), refused(400, 'method_invalid'))
  t.same(admit(h2('/', '')), refused(400, 'method_invalid'))
  t.same(admit(h2('/', 'G(T')), refused(400, 'method_invalid'))
})

t.test('URL length: at the limit admitted, one past it 414', async t => {
  const at = `/${'a'.repeat(LIMITS.maxUrlLength - 1)}`
  t.equal(admit({ url: at }), null)
  t.same(admit({ url: `${at}a` }), refused(414, 'url_too_long'))
  t.same(admit({ url: `/?q=${'a'.repeat(LIMITS.maxUrlLength)}` }), refused(414, 'url_too_long'), 'the query counts')
})

t.test('Expect: 100-continue only (417)', async t => {
  const expect = (value: string) => admit({ method: 'POST', raw: ['Host', 'example.com', 'Expect', value] })
  t.equal(expect('100-continue'), null)
  t.equal(expect(' 100-Continue '), null)
  t.same(expect('200-ok'), refused(417, 'expectation'))
  t.same(expect('100-continue, x'), refused(417, 'expectation'))
})

t.test('header count: at the limit admitted, one past it 431', async t => {
  const headers = (n: number): string[] => ['Host', 'example.com', ...Array.from({ length: n - 1 }, (_, i) => [`x-${i}`, 'v']).flat()]
  t.equal(admit({ raw: headers(LIMITS.maxHeaderCount) }), null)
  t.same(admit({ raw: headers(LIMITS.maxHeaderCount + 1) }), refused(431, 'too_many_headers'))
  t.same(admit({ ...h2('/'), raw: [...(h2('/').raw as string[]), 'a', '1', 'b', '2', 'c', '3', 'd', '4', 'e', '5'] }), refused(431, 'too_many_headers'),
    'HTTP/2 pseudo-headers count as fields')
})

t.test("HTTP/2 header list size (RFC 9113 §6.5.2: name + value + 32 each), which Node's HTTP/2 server does not enforce", async t => {
  const base = h2('/')
  const size = (raw: readonly string[]) => raw.reduce((n, s) => n + s.length, 0) + 16 * raw.length
  const fill = (bytes: number): Case => {
    const raw = [...(base.raw as string[]), 'x-fill', '']
    raw[raw.length - 1] = 'v'.repeat(bytes - size(raw))
    return { ...base, raw }
  }
  t.equal(size((fill(LIMITS.maxRequestHeaderBytes).raw as string[])), LIMITS.maxRequestHeaderBytes, 'the fixture fills to the byte')
  t.equal(admit(fill(LIMITS.maxRequestHeaderBytes)), null, 'exactly at the limit')
  t.same(admit(fill(LIMITS.maxRequestHeaderBytes + 1)), refused(431, 'header_list_too_large'))
  t.equal(admit({ raw: ['Host', 'example.com', 'x-fill', 'v'.repeat(500)] }), null, "HTTP/1's parser enforces its own limit")
})

t.test('Host: exactly one on HTTP/1 (RFC 9112 §3.2)', async t => {
  t.same(admit({ raw: [] }), refused(400, 'host_count'), 'none')
  t.same(admit({ raw: ['Host', 'a.example', 'host', 'b.example'] }), refused(400, 'host_count'), 'two, whatever their case')
  t.same(admit({ raw: ['Host', 'a.example', 'Host', 'a.example'] }), refused(400, 'host_count'), 'two alike')
  t.equal(admit({ raw: ['HOST', 'a.example', 'X-Host', 'b'] }), null)
  t.equal(admit({ ...h2('/'), raw: [':method', 'GET', ':path', '/', ':authority', 'a.example'] }), null, 'HTTP/2: :authority, no Host needed')
})

t.test('Host: the grammar of RFC 3986 §3.2.2, and ports 0–65535', async t => {
  const host = (value: string) => admit({ raw: ['Host', value] })
  for (const ok of ['example.com', 'EXAMPLE.com', 'a-b_c~d.example', '127.0.0.1', 'example.com:8080', 'example.com:', 'example.com:65535',
    '[::1]', '[::1]:443', '[2001:db8::1]', '[::ffff:127.0.0.1]:80', 'xn--bcher-kva.example', '%41.example', "a!$&'()*+,;=.example"]) {
    t.equal(host(ok), null, `${ok} is a host`)
  }
  for (const bad of ['', 'evil.com:80@127.0.0.1', 'user@example.com', 'a b', '<script>', 'evil.com/../x', 'evil.com/x', 'example.com:65536', 'example.com:99999',
    'example.com:123456', 'example.com:8o', '[::1', '::1', '[::1]x', '[fe80::1%eth0]', '%4.example', 'a\\b', 'a"b', 'exa mple.com']) {
    t.same(host(bad), refused(400, 'host_invalid'), `${JSON.stringify(bad)} is not`)
  }
  t.same(admit(h2('/', 'GET', 'evil.com:80@127.0.0.1')), refused(400, 'host_invalid'), 'the same rule for :authority')
  t.ok(HOST.test('[::1]:443'), 'HOST is the grammar others check against too')
})

t.test('escaped slashes: %2F and %5C refused under `reject`, passed under `keep` and `unescape`', async t => {
  for (const path of ['/a%2fb', '/a%2Fb', '/a%5cb', '/a%5Cb']) {
    t.same(admit({ url: path }), refused(400, 'escaped_slash'), path)
    t.equal(admit({ url: path, escaped: 'keep' }), null)
    t.equal(admit({ url: path, escaped: 'unescape' }), null)
  }
  t.equal(admit({ url: '/a?b=%2f' }), null, 'the query is not the path')
  t.equal(admit({ url: '/a%2' }), null)
})

t.test('dot segments, as any origin may resolve them', async t => {
  const dots = ['/..', '/.', '/a/../b', '/a/./b', '/a/..', '/a/%2e%2e/b', '/a/%2E./b', '/a/.%2e', '/a\\..\\b', '/..;/admin', '/a/..%2fadmin', '/a/..%5cadmin']
  for (const path of dots) t.same(admit({ url: path, escaped: 'keep' }), refused(400, 'dot_segment'), path)
  t.same(admit({ url: 'http://h/a/../b', escaped: 'keep' }), null, 'URL parsing already resolved an absolute target')
  for (const path of ['/a..b', '/...', '/a/.../b', '/.well-known/x', '/a.', '/a/b..', '/%2e%2e%2e', '/a?x=/../'])
    t.equal(admit({ url: path, escaped: 'keep' }), null, `${path} is a name, not a dot segment`)
  t.same(admit({ url: '/a/..%2fadmin' }), refused(400, 'escaped_slash'), 'under reject, the escaped slash is named first')
})

t.test('the first rule broken is the one named', async t => {
  t.same(admit({ httpVersion: '1.7', url: '*', raw: [] }), refused(505, 'http_version'))
  t.same(admit({ url: `/${'a'.repeat(100)}`, raw: [] }), refused(414, 'url_too_long'), 'length before the Host')
  t.same(admit({ url: '/../x', raw: ['Host', 'a b'] }), refused(400, 'host_invalid'), 'the Host before the path')
})

t.test('the limits come from the configuration', async t => {
  const edge = configOf({ origin: 'http://127.0.0.1:9', limits: { max_url_length: 64, max_header_count: 3 } }).edge
  const req = clientRequest({ url: `/${'a'.repeat(64)}` })
  t.same(refusalOf(req, false, 'example.com', req.url as string, edge.escapedSlashes, edge), refused(414, 'url_too_long'))
  const many = clientRequest({ raw: ['Host', 'h', 'a', '1', 'b', '2', 'c', '3'] })
  t.same(refusalOf(many, false, 'h', '/', edge.escapedSlashes, edge), refused(431, 'too_many_headers'))
})

t.test('unescape: %2F and %5C become the separators they encode, nothing else changes', async t => {
  t.equal(unescapeSlashes('/a%2Fb%2fc'), '/a/b/c')
  t.equal(unescapeSlashes('/a%5Cb%5cc'), '/a\\b\\c')
  t.equal(unescapeSlashes('/a%20b'), '/a%20b')
  const plain = '/plain/path'
  t.equal(unescapeSlashes(plain), plain)
})
