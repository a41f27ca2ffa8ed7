// The proxy loop's one decision, alone (what Caddy's retries_test.go does for its
// tryAgain): every reason to try again, and every reason not to, from plain facts. The
// failures are the edge's real errors, classified by the real table, and the budget is
// the pool's real RetryBudget, so a test here fails when any of them changes meaning.

import t from 'tap'
import { MAX_ATTEMPTS, tryAgain, type OutcomeFacts, type RequestFacts } from '../../src/edge/proxy-loop.js'
import { RetryBudget } from '../../src/origin/retry-budget.js'
import { classify, type Classification } from '../../src/status/classify.js'
import {
  BadResponseError, ConnectFailedError, ConnectTimeoutError, ConnectionLimitError, DnsLookupError, OverloadedError,
  ResponseTimeoutError, TlsHandshakeError, type DialFacts
} from '../../src/status/errors.js'

const facts: DialFacts = { phase: 'connect', timings: { dns_ms: 0, connect_ms: 5, tls_ms: null }, attempts: [], address: '127.0.0.1', port: 9, localAddress: null, localPort: null }
const coded = (code: string, message = code): Error => Object.assign(new Error(message), { code })

const refused = new ConnectFailedError(facts, coded('ECONNREFUSED'))
const unreachable = new ConnectFailedError(facts, coded('EHOSTUNREACH'))
const connectTimeout = new ConnectTimeoutError(facts, 2000)
const dns = new DnsLookupError({ ...facts, phase: 'dns' }, coded('ENOTFOUND'))
const tls = new TlsHandshakeError({ ...facts, phase: 'tls' }, coded('ECONNRESET'))
/** What undici reports when an origin closes a connection without answering. */
const closed = coded('UND_ERR_SOCKET', 'other side closed')
const reset = coded('ECONNRESET')

/** One request, tried `tries` times so far; GET without a body unless told. */
const request = (over: Partial<RequestFacts> & { tries?: number } = {}): RequestFacts =>
  ({ tried: { length: over.tries ?? 1 }, method: over.method ?? 'GET', body: over.body ?? null, aborted: over.aborted ?? false })

/** An attempt that failed while dialling: nothing was sent. */
const dialFailed = (error: Error): OutcomeFacts => ({ requestSent: false, error, fresh: true, originStatus: 0 })
/** An attempt whose request went out on a connection the origin had used before, and nothing came back. */
const reusedDropped = (error: Error, over: Partial<OutcomeFacts> = {}): OutcomeFacts =>
  ({ requestSent: true, error, fresh: false, originStatus: 0, ...over })

/** A pool's budget with this many requests in flight; `room`: retries it allows (0: none). */
function budget (room: number, origins = 2): RetryBudget {
  const b = new RetryBudget({ percent: 0, minRetries: room }, origins)
  b.requests = 10
  return b
}

const failure = (err: Error, phase: Parameters<typeof classify>[1]): Classification => classify(err, phase)

t.test('the classifications this test leans on', async t => {
  t.equal(failure(refused, 'connect').status, 521)
  t.equal(failure(unreachable, 'connect').status, 523)
  t.equal(failure(connectTimeout, 'connect').status, 522)
  t.equal(failure(dns, 'dns').status, 530)
  t.equal(failure(tls, 'tls').status, 525)
  t.match(failure(closed, 'response'), { status: 520, cause: 'empty' })
  t.match(failure(reset, 'response'), { status: 520, cause: 'reset' })
  t.equal(MAX_ATTEMPTS, 2)
})

t.test('nothing was sent, the origin is down (521, 523): another origin, never budgeted', async t => {
  for (const [err, status] of [[refused, 521], [unreachable, 523]] as const) {
    const b = budget(0)
    t.equal(tryAgain(request(), dialFailed(err), failure(err, 'connect'), b), 'another origin', `${status}`)
    t.equal(b.retries, 0, 'the budget is not spent')
    t.equal(b.refused, 0, 'nor even asked')
  }
})

t.test('nothing was sent, any method, the origin slow or unknown: another origin while the budget lasts', async t => {
  const cases: Array<[string, Error, Parameters<typeof classify>[1]]> = [['522', connectTimeout, 'connect'], ['530', dns, 'dns'], ['525', tls, 'tls']]
  for (const [name, err, phase] of cases) {
    const b = budget(1)
    const c = failure(err, phase)
    // A POST with a body too: nothing of it reached any origin.
    t.equal(tryAgain(request({ method: 'POST', body: {} }), dialFailed(err), c, b), 'another origin, budgeted', `${name}: budgeted`)
    t.equal(b.retries, 1, `${name}: the retry is counted`)
    t.equal(tryAgain(request(), dialFailed(err), c, b), null, `${name}: past the budget, answered`)
    t.equal(b.refused, 1, `${name}: and the refusal counted`)
  }
})

t.test('a dial error inside another (undici wraps what a dispatcher throws) is still a dial error', async t => {
  const wrapped = new Error('dispatch failed', { cause: connectTimeout })
  t.equal(tryAgain(request(), dialFailed(wrapped), failure(connectTimeout, 'connect'), budget(1)), 'another origin, budgeted')
})

t.test('the keep-alive race: a reused connection dropped before a byte of answer goes again to the same origin', async t => {
  for (const method of ['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']) {
    for (const err of [closed, reset]) {
      const b = budget(0)
      t.equal(tryAgain(request({ method }), reusedDropped(err), failure(err, 'response'), b), 'same origin', `${method}, ${String((err as { code?: string }).code)}`)
      t.equal(b.refused + b.retries, 0, 'never a budget question')
    }
  }
})

t.test('reasons not to try again', async t => {
  const b = budget(5)
  const closedC = failure(closed, 'response')
  const timeoutC = failure(connectTimeout, 'connect')
  t.equal(tryAgain(request({ tries: MAX_ATTEMPTS }), dialFailed(connectTimeout), timeoutC, b), null, 'two attempts is the most')
  t.equal(tryAgain(request({ tries: MAX_ATTEMPTS }), reusedDropped(closed), closedC, b), null, 'for the keep-alive race too')
  t.equal(tryAgain(request({ aborted: true }), dialFailed(refused), failure(refused, 'connect'), b), null, 'the client left')
  t.equal(tryAgain(request({ aborted: true }), reusedDropped(closed), closedC, b), null, 'the client left (keep-alive race)')
  const single = budget(5, 1)
  t.equal(tryAgain(request(), dialFailed(refused), failure(refused, 'connect'), single), null, 'a pool of one origin: nowhere to go')
  t.equal(single.refused + single.retries, 0, 'and that is no question for the budget')

  // Request bytes may have reached the origin: never again, whatever the method.
  const sent = new ResponseTimeoutError(1000)
  t.equal(tryAgain(request(), { requestSent: true, error: sent, fresh: true, originStatus: 0 }, failure(sent, 'response'), b), null, '524: the request reached the origin')
  t.equal(tryAgain(request(), reusedDropped(closed, { fresh: true }), closedC, b), null, 'dropped on a fresh connection: the origin, not a race')
  t.equal(tryAgain(request(), reusedDropped(closed, { originStatus: 200 }), closedC, b), null, 'dropped after the origin answered')
  t.equal(tryAgain(request({ body: {} }), reusedDropped(closed), closedC, b), null, 'a body was read once and sent')
  for (const method of ['POST', 'PATCH', 'CONNECT']) {
    t.equal(tryAgain(request({ method }), reusedDropped(closed), closedC, b), null, `${method} is not idempotent`)
  }
  const invalid = new BadResponseError('a control character in the status line')
  t.equal(tryAgain(request(), reusedDropped(invalid), failure(invalid, 'response'), b), null, 'an invalid answer is an answer')
  t.equal(tryAgain(request(), reusedDropped(sent), failure(sent, 'response'), b), null, 'a 524 on a reused connection')

  // Not sent, but not a dial failure either: the edge's own limits answer.
  const shed = new OverloadedError(3, 1000, 'queue timeout')
  t.equal(tryAgain(request(), { requestSent: false, error: shed, fresh: false, originStatus: 0 }, failure(shed, 'queue'), b), null, 'shed by adaptive concurrency (503)')
  const limit = new ConnectionLimitError(10, 'queue full')
  t.equal(tryAgain(request(), { requestSent: false, error: limit, fresh: false, originStatus: 0 }, failure(limit, 'queue'), b), null, 'the connection limit (503)')
  t.equal(b.retries + b.refused, 0, 'none of these asked the budget')
})
