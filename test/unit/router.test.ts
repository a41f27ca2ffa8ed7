// The router (edge/router.ts): first match wins in configured order; exact hosts,
// `*.domain` wildcards and `*`; path prefixes on segment boundaries; the Host reduced to
// its host (port dropped, case folded, IPv6 brackets kept) before matching; and the
// request target split into path and query, absolute-form targets reduced to their path.
// Routes come from a configuration as the loader resolves it, through the runtime that
// builds the router the edge uses.

import t from 'tap'
import { Router, hostOnly, splitTarget, type Routable } from '../../src/edge/router.js'
import { runtimeOf } from './fixtures/edge.js'

const ORIGIN = 'http://127.0.0.1:9'

function router (routes: Array<Routable & { name: string }>): Router<Routable & { name: string }> {
  return new Router(routes)
}

/** The route name the router picks for a Host header and a target, as handle-request asks. */
const pick = (r: Router<Routable & { name: string }>, host: string, url: string): string | null =>
  r.match(hostOnly(host), splitTarget(url).path)?.name ?? null

t.test('first match wins, in configured order', async t => {
  const r = router([
    { name: 'api', host: 'example.com', path: '/api' },
    { name: 'site', host: 'example.com', path: '/' },
    { name: 'api-later', host: 'example.com', path: '/api/v2' },
    { name: 'any', host: '*', path: '/' }
  ])
  t.equal(pick(r, 'example.com', '/api/v2/x'), 'api', 'a longer prefix listed later does not win')
  t.equal(pick(r, 'example.com', '/'), 'site')
  t.equal(pick(r, 'other.example', '/api'), 'any')
  const reversed = router([{ name: 'any', host: '*', path: '/' }, { name: 'api', host: 'example.com', path: '/api' }])
  t.equal(pick(reversed, 'example.com', '/api'), 'any', 'a catch-all first takes everything')
})

t.test('no route: null', async t => {
  const r = router([{ name: 'a', host: 'a.example', path: '/' }])
  t.equal(pick(r, 'b.example', '/'), null)
  t.equal(router([]).match('a.example', '/'), null)
})

t.test('hosts: exact, case-folded, without the port', async t => {
  const r = router([{ name: 'a', host: 'a.example', path: '/' }])
  t.equal(pick(r, 'a.example', '/'), 'a')
  t.equal(pick(r, 'A.Example', '/'), 'a', 'Host is case-insensitive (RFC 9110 §4.2.3)')
  t.equal(pick(r, 'a.example:8443', '/'), 'a', 'any port')
  t.equal(pick(r, 'a.example:', '/'), 'a', 'an empty port')
  t.equal(pick(r, 'b.a.example', '/'), null, 'an exact host is not a suffix')
  t.equal(pick(r, 'a.example.evil', '/'), null)
  t.equal(pick(r, 'xa.example', '/'), null)
})

t.test('wildcards: `*.domain` matches subdomains at any depth, never the domain itself', async t => {
  const r = router([{ name: 'sub', host: '*.example.com', path: '/' }, { name: 'apex', host: 'example.com', path: '/' }])
  t.equal(pick(r, 'a.example.com', '/'), 'sub')
  t.equal(pick(r, 'a.b.example.com', '/'), 'sub')
  t.equal(pick(r, 'WWW.EXAMPLE.COM:80', '/'), 'sub')
  t.equal(pick(r, 'example.com', '/'), 'apex', 'the apex is not a subdomain')
  t.equal(pick(r, '.example.com', '/'), null, 'an empty label is not a subdomain')
  t.equal(pick(r, 'badexample.com', '/'), null, 'the suffix starts at a dot')
  t.equal(pick(r, 'example.com.evil', '/'), null)
  const any = router([{ name: 'any', host: '*', path: '/' }])
  t.equal(pick(any, '', '/'), 'any', '`*` takes even an empty host')
})

t.test('IPv6 literals keep their brackets; the port after them is dropped', async t => {
  t.equal(hostOnly('[::1]:8080'), '[::1]')
  t.equal(hostOnly('[2001:DB8::1]'), '[2001:db8::1]')
  t.equal(hostOnly('[::1'), '[::1', 'an unclosed bracket is kept as it came (admit refused it already)')
  t.equal(hostOnly('127.0.0.1:80'), '127.0.0.1')
  const r = router([{ name: 'v6', host: '[::1]', path: '/' }, { name: 'v4', host: '127.0.0.1', path: '/' }])
  t.equal(pick(r, '[::1]:443', '/'), 'v6')
  t.equal(pick(r, '[::1]', '/'), 'v6')
  t.equal(pick(r, '127.0.0.1:443', '/'), 'v4')
  t.equal(pick(r, '[::2]', '/'), null)
})

t.test('paths: prefixes on segment boundaries', async t => {
  const r = router([{ name: 'api', host: '*', path: '/api' }, { name: 'dir', host: '*', path: '/static/' }])
  t.equal(pick(r, 'h', '/api'), 'api')
  t.equal(pick(r, 'h', '/api/'), 'api')
  t.equal(pick(r, 'h', '/api/x/y'), 'api')
  t.equal(pick(r, 'h', '/api?x=1'), 'api', 'the query is not the path')
  t.equal(pick(r, 'h', '/apix'), null, '"/api" does not serve "/apix"')
  t.equal(pick(r, 'h', '/API'), null, 'paths are case-sensitive')
  t.equal(pick(r, 'h', '/static/a.css'), 'dir')
  t.equal(pick(r, 'h', '/static/'), 'dir')
  t.equal(pick(r, 'h', '/static'), null, 'a prefix ending in / needs the /')
  t.equal(pick(r, 'h', '/staticx'), null)
  const root = router([{ name: 'root', host: '*', path: '/' }])
  t.equal(pick(root, 'h', '/'), 'root')
  t.equal(pick(root, 'h', '/anything/at/all'), 'root')
})

t.test('targets: path and query split; the absolute form routed by its path and the Host, never its authority', async t => {
  t.same(splitTarget('/a/b?x=1&y'), { path: '/a/b', query: '?x=1&y' })
  t.same(splitTarget('/a?'), { path: '/a', query: '?' })
  t.same(splitTarget('/a/b'), { path: '/a/b', query: '' })
  t.same(splitTarget('/a?b?c'), { path: '/a', query: '?b?c' }, 'the first ? starts the query')
  t.same(splitTarget('http://other.host/x?y=1'), { path: '/x', query: '?y=1' })
  t.same(splitTarget('https://other.host'), { path: '/', query: '' })
  t.same(splitTarget('*'), { path: '/', query: '' }, 'not a URL: routed as /')
  const r = router([{ name: 'api', host: 'example.com', path: '/api' }])
  t.equal(pick(r, 'example.com', 'http://evil.example/api/x'), 'api')
  t.equal(pick(r, 'evil.example', 'http://example.com/api/x'), null, "the target's authority chooses nothing")
})

t.test("the runtime's router: routes in the order of the configuration, `origin:` last", async t => {
  const edge = runtimeOf({
    origin: ORIGIN,
    routes: [
      { name: 'api', host: 'example.com', path: '/api', origin: ORIGIN },
      { name: 'wild', host: '*.example.com', path: '/', origin: ORIGIN },
      { name: 'apex', host: 'example.com', origin: ORIGIN }
    ]
  })
  t.teardown(() => edge.close())
  const name = (host: string, url: string): string | null => edge.state.router.match(hostOnly(host), splitTarget(url).path)?.config.name ?? null
  t.equal(name('example.com', '/api/x'), 'api')
  t.equal(name('Example.COM:443', '/apix'), 'apex')
  t.equal(name('www.example.com', '/api'), 'wild')
  t.equal(name('elsewhere', '/'), 'origin', 'the top-level origin takes what no route did')
})
