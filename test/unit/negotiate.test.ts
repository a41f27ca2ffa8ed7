import t from 'tap'
import { negotiate } from '../../src/page/negotiate.js'

t.test('negotiation matrix', async t => {
  const cases: Array<[string | undefined, string]> = [
    [undefined, 'html'],
    ['', 'html'],
    ['*/*', 'html'],
    ['text/html', 'html'],
    ['text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8', 'html'],
    ['application/json', 'json'],
    ['application/problem+json', 'problem'],
    ['text/markdown', 'markdown'],
    ['text/plain', 'markdown'],
    ['TEXT/MARKDOWN', 'markdown'],
    ['application/json;q=0.5, text/html', 'html'],
    ['text/html;q=0.1, application/json', 'json'],
    ['application/json, text/html', 'json'],
    ['text/html, application/json', 'html'],
    ['*/*, application/json', 'html'],
    ['application/json;q=0.8, application/problem+json;q=0.8', 'json'],
    ['application/problem+json;q=0.9, application/json;q=0.8', 'problem'],
    ['application/json;q=0', 'html'],
    ['image/png', 'html'],
    ['application/xml', 'html'],
    ['text/markdown;q=1.0, text/html;q=0.99', 'markdown'],
    ['application/json; charset=utf-8', 'json'],
    ['application/json;q=abc, text/html;q=0.2', 'html'],
    [';;;,,,', 'html']
  ]
  for (const [accept, expected] of cases) {
    t.equal(negotiate(accept), expected, `Accept: ${String(accept)} → ${expected}`)
  }
})
