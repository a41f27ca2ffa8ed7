import t from 'tap'
import { CATALOG, ORIGIN_FAULT_STATUSES } from '../../src/status/catalog.js'
import { ErrorRenderer, type ErrorBody } from '../../src/page/render.js'

const pages = new ErrorRenderer('HPX')
/** The renderer, with its flat header list as an object for readable assertions. */
const renderer = {
  render: (...args: Parameters<ErrorRenderer['render']>) => {
    const { headers, body } = pages.render(...args)
    const named: Record<string, string> = {}
    for (let i = 0; i < headers.length; i += 2) named[headers[i] as string] = headers[i + 1] as string
    return { headers: named, body }
  }
}
const facts = { status: 522, cause: null, host: 'example.com', ray: '0123456789abcdef', clientIp: '203.0.113.9', time: new Date('2026-11-25T13:01:02.345Z') }

t.test('JSON body: every field, Cloudflare names', async t => {
  const { headers, body } = renderer.render(facts, 'json')
  t.equal(headers['content-type'], 'application/json; charset=utf-8')
  const parsed = JSON.parse(body) as ErrorBody
  t.same(Object.keys(parsed).sort(), ['detail', 'error_category', 'error_code', 'error_name', 'instance', 'owner_action', 'owner_action_required', 'ray_id',
    'retry_after', 'retryable', 'status', 'timestamp', 'title', 'type', 'what_you_should_do', 'zone'].sort())
  t.match(parsed, {
    title: 'Error 522: Connection timed out',
    status: 522,
    error_code: 522,
    error_name: 'connection_timeout',
    error_category: 'origin',
    ray_id: '0123456789abcdef',
    timestamp: '2026-11-25T13:01:02.345Z',
    zone: 'example.com',
    retryable: true,
    retry_after: 120,
    owner_action_required: true
  })
  t.equal(renderer.render({ ...facts, status: 521 }, 'json').headers['retry-after'], '120')
  t.equal(renderer.render(facts, 'problem').headers['content-type'], 'application/problem+json; charset=utf-8')
})

t.test('headers on every edge error', async t => {
  for (const status of ORIGIN_FAULT_STATUSES) {
    const { headers } = renderer.render({ ...facts, status }, 'html')
    t.equal(headers['cache-control'], 'private, max-age=0, no-store, no-cache, must-revalidate, post-check=0, pre-check=0')
    t.equal(headers['x-frame-options'], 'SAMEORIGIN')
    t.equal(headers['referrer-policy'], 'same-origin')
    t.equal(headers.expires, 'Thu, 01 Jan 1970 00:00:01 GMT')
    t.match(headers['content-type'], /charset=utf-8/)
    const expected = CATALOG.get(status)?.retryAfter
    t.equal(headers['retry-after'], expected === null ? undefined : String(expected), `${status} Retry-After`)
  }
})

t.test('Retry-After and category per status', async t => {
  const expect: Record<number, [string | undefined, string]> = {
    520: ['60', 'origin'], 521: ['120', 'origin'], 522: ['120', 'origin'], 523: ['120', 'origin'], 524: ['120', 'origin'],
    525: [undefined, 'ssl'], 526: [undefined, 'ssl'], 530: [undefined, 'dns']
  }
  for (const [status, [retry, category]] of Object.entries(expect)) {
    const r = renderer.render({ ...facts, status: Number(status) }, 'json')
    t.equal(r.headers['retry-after'], retry, `${status} retry-after`)
    t.equal(JSON.parse(r.body).error_category, category, `${status} category`)
  }
  t.equal(JSON.parse(renderer.render({ ...facts, status: 530 }, 'json').body).error_code, 1016)
})

t.test('HTML page: title, hops, footer', async t => {
  const { body } = renderer.render(facts, 'html')
  t.match(body, '<title>example.com | 522: Connection timed out</title>')
  t.match(body, '2026-11-25 13:01:02 UTC')
  t.match(body, '0123456789abcdef')
  t.match(body, '203.0.113.9')
  t.match(body, /class="[^"]*box[^"]*error/)
  t.notMatch(body, /\{\{/, 'no placeholder left')
  t.notMatch(body, /<script|https?:\/\/|src=/i, 'no scripts and no external requests')
})

t.test('520 detail differs by cause, without origin internals', async t => {
  const details = new Set<string>()
  for (const cause of ['reset', 'empty', 'invalid', 'headers_too_large'] as const) {
    const body = JSON.parse(renderer.render({ ...facts, status: 520, cause }, 'json').body) as ErrorBody
    details.add(body.detail)
    t.notMatch(body.detail, /127\.0\.0\.1|:\d{2,5}/)
    t.match(renderer.render({ ...facts, status: 520, cause }, 'html').body, body.detail.split('.')[0] as string)
  }
  t.equal(details.size, 4)
})

t.test('every reflected value is escaped', async t => {
  const evil = '"><script>alert(1)</script>'
  const hostile = { ...facts, host: evil, clientIp: '<img src=x onerror=alert(1)>' }
  const html = renderer.render(hostile, 'html').body
  t.notMatch(html, '<script>alert(1)')
  t.notMatch(html, '<img src=x')
  t.match(html, '&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;')
  const json = renderer.render(hostile, 'json').body
  t.notMatch(json, '<script>')
  t.equal(JSON.parse(json).zone, evil, 'JSON escapes but keeps the value')
  const md = renderer.render(hostile, 'markdown').body
  t.notMatch(md, '<script>')
  t.notMatch(md.split('---')[2] as string, /(^|[^\\])\*\*\*/)
  const newline = renderer.render({ ...facts, host: 'a\nb: injected' }, 'markdown').body
  t.notMatch(newline, /^b: injected/m, 'no frontmatter key can be forged')
})

t.test('markdown has YAML frontmatter with the JSON fields', async t => {
  const md = renderer.render(facts, 'markdown')
  t.equal(md.headers['content-type'], 'text/markdown; charset=utf-8')
  const [, front] = md.body.split('---\n')
  const { parse } = await import('yaml')
  const parsed = parse(front as string) as ErrorBody
  t.equal(parsed.error_name, 'connection_timeout')
  t.equal(parsed.status, 522)
  t.match(md.body, '# Error 522: Connection timed out')
})
