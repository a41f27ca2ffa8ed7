// The one refusal → Proxy-Status table (page/refusal.ts): each refusal status has the
// RFC 9209 type the table says, and the two ways a refusal is answered — the short
// plain-text one of the listeners (refusal()) and the edge's own page for a request it
// read (refusalFacts(), through answerError) — carry the same type for the same status.

import t from 'tap'
import { Token, parseList } from 'structured-headers'
import { ProxyStatus } from '../../src/page/proxy-status.js'
import { REFUSAL_TYPES, connectRefusal, refusal, refusalFacts, refusalType } from '../../src/page/refusal.js'

const names = { rayHeader: 'cf-ray', edgeName: 'HPX', proxyStatus: new ProxyStatus({ edgeName: 'HPX' }) }
const RAY = '0123456789abcdef'

/** Our member's `error` parameter in a Proxy-Status value. */
function errorOf (value: string): string {
  const [member] = parseList(value)
  const error = member?.[1].get('error')
  if (!(error instanceof Token)) throw new Error(`no error token in ${value}`)
  return error.toString()
}

const header = (flat: string[], name: string): string | undefined => {
  const at = flat.indexOf(name)
  return at === -1 ? undefined : flat[at + 1]
}

t.test('the table: malformed or unreadable is an error, a declined well-formed request is denied', async t => {
  t.same(Object.fromEntries(REFUSAL_TYPES), {
    400: 'http_request_error',
    405: 'http_request_denied',
    408: 'http_request_error',
    413: 'http_request_denied',
    414: 'http_request_denied',
    417: 'http_request_denied',
    429: 'http_request_denied',
    431: 'http_request_denied',
    501: 'http_request_error',
    502: 'proxy_internal_error',
    503: 'http_request_denied',
    505: 'http_request_error'
  })
  t.equal(refusalType(451), 'http_request_denied', 'a status not in the table is a policy refusal')
})

t.test('both ways of answering a refusal carry the same type for every status in the table', async t => {
  for (const [status, type] of REFUSAL_TYPES) {
    const short = refusal(names, status, RAY)
    t.equal(errorOf(header(short.headers, 'proxy-status') as string), type, `${status}: the listeners' short refusal`)
    const facts = refusalFacts(status, 'some_reason')
    t.equal(facts.proxyStatus, type, `${status}: the edge's page for a request it read`)
    t.equal(errorOf(names.proxyStatus.forFailure(facts, null, null)), type, `${status}: as serialized for the page`)
  }
})

t.test('a short refusal: ray id, Server, Proxy-Status, plain text, extras last, and a body naming the status', async t => {
  const short = refusal(names, 503, RAY, ['retry-after', '5'])
  t.equal(short.status, 503)
  t.same(short.headers.filter((_, i) => i % 2 === 0), ['cf-ray', 'server', 'proxy-status', 'content-type', 'retry-after'])
  t.equal(header(short.headers, 'cf-ray'), `${RAY}-HPX`)
  t.equal(header(short.headers, 'server'), 'highproxy')
  t.equal(header(short.headers, 'content-type'), 'text/plain; charset=utf-8')
  t.equal(short.body, '503 Service Unavailable: the edge refused this request\n')
  t.notOk(short.headers.includes('content-length'), 'each writer frames the body its own way')

  const connect = connectRefusal(names, RAY)
  t.equal(connect.status, 405)
  t.equal(header(connect.headers, 'allow'), 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS')
  t.equal(errorOf(header(connect.headers, 'proxy-status') as string), 'http_request_denied', 'CONNECT is declined by policy')
})

t.test("a refusal's why names its reason, never anything the client sent", async t => {
  t.same(refusalFacts(413, 'body_too_large'), { status: 413, cause: null, proxyStatus: 'http_request_denied', why: 'the edge refused this request (body_too_large)' })
})
