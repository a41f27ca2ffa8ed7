// Always online's store and rules without sockets: the byte bound and eviction order,
// variants, purge by route and path, and each rule of what is kept and what answers.

import t from 'tap'
import { clientLimit, copyTerms, directives, servable, varyMatches } from '../../src/cache/copy-rules.js'
import { copySize, StaleStore, type StoredCopy } from '../../src/cache/stale-store.js'
import { resolve, validate } from '../../src/config/load.js'

const terms = (res: Record<string, string>, req: Record<string, string> = {}, status = 200) =>
  copyTerms('GET', '/', { host: 'a.example', ...req }, status, res)

function copy (route: string, target: string, body = 'x'.repeat(100), res: Record<string, string> = { 'cache-control': 'max-age=60' }, req: Record<string, string> = {}): StoredCopy {
  const headers = ['content-type', 'text/plain']
  const b = Buffer.from(body)
  return { route, target, status: 200, text: 'OK', headers, body: b, terms: terms(res, req) as NonNullable<ReturnType<typeof terms>>, size: copySize(headers, b) }
}

t.test('the byte bound: least recently used go first, the bytes never pass max_bytes', async t => {
  const one = copy('r', '/0').size
  const store = new StaleStore(one * 10, 1 << 20)
  for (let i = 0; i < 1000; i++) {
    store.put(StaleStore.key('r', 'h', `/${i}`), copy('r', `/${i}`), () => false)
    if (i === 5) store.get(StaleStore.key('r', 'h', '/0'))
    t.ok(store.summary().bytes <= one * 10)
  }
  t.equal(store.summary().entries, 10)
  t.equal(store.get(StaleStore.key('r', 'h', '/999'))?.length, 1, 'the newest kept')
  t.equal(store.get(StaleStore.key('r', 'h', '/1')), undefined, 'the oldest gone')
  t.same(new StaleStore(0, 0).summary(), { entries: 0, bytes: 0, max_bytes: 0, max_entry_bytes: 0 }, 'max_bytes 0 keeps nothing')
})

t.test('variants: the same selecting headers replace, others sit beside, at most 4', async t => {
  const store = new StaleStore(1 << 20, 1 << 20)
  const key = StaleStore.key('r', 'h', '/lang')
  const vary = { 'cache-control': 'max-age=60', vary: 'accept-language' }
  const put = (lang: string, body: string): void => {
    const c = copy('r', '/lang', body, vary, { 'accept-language': lang })
    store.put(key, c, old => varyMatches(old.terms, { 'accept-language': lang }))
  }
  put('en', 'en 1')
  put('fr', 'fr 1')
  put('en', 'en 2')
  t.same(store.get(key)?.map(v => v.body.toString()), ['en 2', 'fr 1'])
  for (const lang of ['de', 'it', 'es']) put(lang, lang)
  t.same(store.get(key)?.map(v => v.body.toString()), ['es', 'it', 'de', 'en 2'])
})

t.test('purge: a route, a path with any query, one target, or everything', async t => {
  const store = new StaleStore(1 << 20, 1 << 20)
  for (const [route, target] of [['a', '/p'], ['a', '/p?x=1'], ['a', '/q'], ['b', '/p']] as const) {
    store.put(StaleStore.key(route, 'h', target), copy(route, target), () => false)
  }
  t.equal(store.purge('a', '/p?x=1'), 1)
  t.equal(store.purge('a', '/p'), 1)
  t.equal(store.purge(null, '/p'), 1, 'every route')
  t.equal(store.purge('a', null), 1)
  t.equal(store.summary().entries, 0)
})

t.test('what is kept', async t => {
  t.ok(terms({ 'cache-control': 'max-age=60' }), 'max-age')
  t.ok(terms({}), '200 without Cache-Control: cacheable by default')
  t.equal(terms({ 'cache-control': 'no-store' }), null, 'no-store')
  t.equal(terms({ 'cache-control': 'private, max-age=60' }), null, 'private')
  t.equal(terms({ 'cache-control': 'max-age=60', 'set-cookie': 'a=b' }), null, 'Set-Cookie')
  t.equal(terms({ 'cache-control': 'max-age=60', vary: '*' }), null, 'Vary: *')
  t.equal(terms({ 'cache-control': 'max-age=60' }, {}, 503), null, 'a 5xx')
  t.equal(terms({ 'cache-control': 'max-age=60' }, {}, 206), null, 'a 206')
  t.equal(terms({ 'cache-control': 'max-age=60' }, { range: 'bytes=0-1' }), null, 'a Range request')
  t.equal(terms({ 'cache-control': 'max-age=60' }, { authorization: 'Basic x' }), null, 'Authorization without public')
  t.equal(terms({ 'cache-control': 'max-age=60' }, { cookie: 'a=b' }), null, 'Cookie without public')
  t.ok(terms({ 'cache-control': 'public, max-age=60' }, { authorization: 'Basic x' }), 'Authorization with public')
  t.equal(terms({}, {}, 302), null, 'a 302 without explicit freshness is not storable')
  t.ok(terms({ 'cache-control': 'stale-if-error=60' }, {}, 302), 'unless the origin marks it stale-if-error')
  t.equal(copyTerms('HEAD', '/', { host: 'h' }, 200, { 'cache-control': 'max-age=60' }), null, 'a HEAD response has no body to keep')
  t.equal(copyTerms('POST', '/', { host: 'h' }, 200, { 'cache-control': 'max-age=60' }), null, 'nor a POST')
})

t.test('what answers', async t => {
  const any = clientLimit({})
  const fresh = terms({ 'cache-control': 'max-age=60' }) as NonNullable<ReturnType<typeof terms>>
  t.ok(servable(fresh, 3600, any, false))
  t.notOk(servable(fresh, 3600, any, true), 'credentials and not public')
  t.notOk(servable(fresh, 3600, { refused: false, maxStale: -61 }, false), 'staler than max-stale')
  const old = terms({ 'cache-control': 'max-age=0', age: '7200' }) as NonNullable<ReturnType<typeof terms>>
  t.notOk(servable(old, 3600, any, false), 'older than max_age')
  const kind = terms({ 'cache-control': 'max-age=0, stale-if-error=86400', age: '7200' }) as NonNullable<ReturnType<typeof terms>>
  t.ok(servable(kind, 3600, any, false), "older than max_age, within the origin's stale-if-error")
  const strict = terms({ 'cache-control': 'max-age=0, must-revalidate' }) as NonNullable<ReturnType<typeof terms>>
  t.notOk(servable(strict, 3600, any, false), 'must-revalidate')
  t.notOk(servable(terms({ 'cache-control': 's-maxage=0' }) as NonNullable<ReturnType<typeof terms>>, 3600, any, false), 's-maxage implies proxy-revalidate')
  t.same(clientLimit({ 'cache-control': 'no-cache' }).refused, true)
  t.same(clientLimit({ pragma: 'no-cache' }).refused, true)
  t.same(clientLimit({ 'cache-control': 'max-age=0', pragma: 'no-cache' }).refused, false, 'Pragma only counts without Cache-Control')
  t.same(clientLimit({ 'cache-control': 'max-stale=30' }), { refused: false, maxStale: 30 })
  t.same(clientLimit({ 'cache-control': 'max-stale' }).maxStale, Infinity)
})

t.test('directives', async t => {
  t.same([...directives('Max-Age=60, no-cache, stale-if-error="30"')], [['max-age', '60'], ['no-cache', true], ['stale-if-error', '30']])
  t.same([...directives(['public', 'max-age=1'])], [['public', true], ['max-age', '1']])
  t.equal(directives(undefined).size, 0)
})

t.test('config: off unless the route says so, defaults filled in, bad values name the key', async t => {
  const routes = (stale: unknown): Record<string, unknown> => ({ routes: [{ origin: 'http://127.0.0.1:9', ...(stale === undefined ? {} : { stale_if_error: stale }) }] })
  const edge = (raw: Record<string, unknown>) => resolve(validate(raw), false).edge
  t.equal(edge(routes(undefined)).routes[0]?.staleIfError, null, 'off by default')
  const on = edge(routes({})).routes[0]?.staleIfError
  t.equal(on?.maxAgeMs, 3_600_000)
  t.same([...(on?.statuses ?? [])], [520, 521, 522, 523, 524, 525, 530])
  t.equal(on?.serveWhenDown, false)
  t.same(edge({}).cache, { maxBytes: 64 * 2 ** 20, maxEntryBytes: 2 ** 20 })
  t.throws(() => validate(routes({ statuses: [200] })), /routes\.0\.stale_if_error\.statuses\.0/)
  t.throws(() => validate(routes({ max_age: 'forever' })), /routes\.0\.stale_if_error\.max_age/)
  t.throws(() => validate(routes({ max_ages: '1m' })), /routes\.0\.stale_if_error/)
  t.throws(() => validate({ cache: { max_bytes: -1 } }), /cache\.max_bytes/)
})
