import net from 'node:net'
import t from 'tap'
import { refusedPort } from '../../src/lab/loopback.js'
import { classify, RULES } from '../../src/status/classify.js'
import { causeChain, ERROR_CODES, type Phase } from '../../src/status/errors.js'
import { CATALOG } from '../../src/status/catalog.js'

/** A real system error from a real socket (loopback only). */
function connectError (opts: net.NetConnectOpts): Promise<NodeJS.ErrnoException> {
  return new Promise(resolve => {
    const s = net.connect(opts)
    s.once('error', resolve)
    s.once('connect', () => { s.destroy(); resolve(Object.assign(new Error('connected'), { code: 'CONNECTED' })) })
  })
}

/** A refused port no port-0 listener of a test beside this one can take. */
const freePort = (): Promise<number> => refusedPort()

t.test('a real refused connect is 521', async t => {
  const err = await connectError({ host: '127.0.0.1', port: await freePort() })
  t.equal(err.code, 'ECONNREFUSED')
  t.same(classify(err, 'connect'), { status: 521, cause: null, proxyStatus: 'connection_refused', code: 'ECONNREFUSED', errorCode: 'HPX_ERR_CONNECT', causeCode: 'ECONNREFUSED', why: RULES.find(r => r.status === 521)?.why, known: true })
})

t.test("Node's happy-eyeballs AggregateError (empty message) is unpacked", async t => {
  const port = await freePort()
  // Two loopback addresses for one name, as `localhost` resolves on many machines.
  const lookup = ((_h: string, _o: unknown, cb: (e: null, a: Array<{ address: string, family: number }>) => void) =>
    cb(null, [{ address: '::1', family: 6 }, { address: '127.0.0.1', family: 4 }])) as unknown as net.LookupFunction
  const err = await connectError({ host: 'twoaddrs.test', port, lookup, autoSelectFamily: true })
  t.equal(err.message, '', 'Node gives the aggregate an empty message')
  t.ok(Array.isArray((err as unknown as AggregateError).errors), 'it is an AggregateError')
  t.ok(causeChain(err).filter(e => (e as { code?: string }).code === 'ECONNREFUSED').length >= 2, 'both refusals are in the chain')
  t.equal(classify(err, 'connect').status, 521, 'all refused → 521')
})

t.test('aggregate precedence: a timeout outranks a refusal, a refusal outranks unreachable', async t => {
  const refused = Object.assign(new Error('refused'), { code: 'ECONNREFUSED' })
  const timedOut = Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })
  const unreachable = Object.assign(new Error('unreachable'), { code: 'ENETUNREACH' })
  t.equal(classify(new AggregateError([refused, timedOut], ''), 'connect').status, 522)
  t.equal(classify(new AggregateError([unreachable, refused], ''), 'connect').status, 521)
  t.equal(classify(new AggregateError([unreachable], ''), 'connect').status, 523)
})

t.test('the table, row by row', async t => {
  const cases: Array<[string, Parameters<typeof classify>[1], number, string | null]> = [
    ['HPX_ERR_CONNECT_TIMEOUT', 'connect', 522, null],
    ['UND_ERR_CONNECT_TIMEOUT', 'connect', 522, null],
    ['ECONNREFUSED', 'connect', 521, null],
    ['EHOSTUNREACH', 'connect', 523, null],
    ['ENETUNREACH', 'connect', 523, null],
    ['EADDRNOTAVAIL', 'connect', 523, null],
    ['ENOTFOUND', 'dns', 530, null],
    ['EAI_AGAIN', 'dns', 530, null],
    ['DEPTH_ZERO_SELF_SIGNED_CERT', 'tls', 526, null],
    ['CERT_HAS_EXPIRED', 'tls', 526, null],
    ['ERR_TLS_CERT_ALTNAME_INVALID', 'tls', 526, null],
    ['ERR_SSL_WRONG_VERSION_NUMBER', 'tls', 525, null],
    ['ECONNRESET', 'tls', 525, null],
    ['HPX_ERR_TLS_TIMEOUT', 'tls', 525, null],
    ['UND_ERR_HEADERS_TIMEOUT', 'response', 524, null],
    ['UND_ERR_HEADERS_OVERFLOW', 'response', 520, 'headers_too_large'],
    ['HPE_INVALID_CONSTANT', 'response', 520, 'invalid'],
    ['ECONNRESET', 'response', 520, 'reset'],
    ['UND_ERR_SOCKET', 'response', 520, 'empty'],
    ['ECONNRESET', 'body', 520, 'reset'],
    ['UND_ERR_ABORTED', 'response', 499, null],
    ['HPX_ERR_CLIENT_ABORT', 'connect', 499, null]
  ]
  for (const [code, phase, status, cause] of cases) {
    const c = classify(Object.assign(new Error(code), { code }), phase)
    t.equal(c.status, status, `${code} in ${phase} → ${status}`)
    t.equal(c.cause, cause, `${code} in ${phase}: cause ${String(cause)}`)
  }
})

t.test('the phase decides: the same code means different things', async t => {
  const reset = { code: 'ECONNRESET' }
  t.equal(classify(reset, 'tls').status, 525)
  t.equal(classify(reset, 'response').status, 520)
  t.equal(classify({ code: 'ETIMEDOUT' }, 'connect').status, 522)
  t.not(classify({ code: 'ETIMEDOUT' }, 'response').status, 522, 'a timeout after connect is never a 522')
})

t.test('codes are found through wrappers, innermost reported', async t => {
  const inner = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })
  const wrapped = Object.assign(new Error('wrapper', { cause: Object.assign(new Error('dial', { cause: inner }), { code: 'HPX_ERR_CONNECT' }) }), { code: 'FST_REPLY_FROM_INTERNAL_SERVER_ERROR' })
  const c = classify(wrapped, 'connect')
  t.equal(c.status, 521)
  t.equal(c.code, 'ECONNREFUSED')
})

t.test('messages never decide', async t => {
  t.equal(classify(new Error('ECONNREFUSED connection refused'), 'response').status, 502)
})

t.test('unknown failures fall back to 502, marked unclassified', async t => {
  const c = classify({ code: 'SOMETHING_NEW' }, 'response')
  t.same(c, {
    status: 502,
    cause: null,
    proxyStatus: 'proxy_internal_error',
    code: 'SOMETHING_NEW',
    errorCode: 'HPX_ERR_UNCLASSIFIED',
    causeCode: 'SOMETHING_NEW',
    why: 'unclassified failure in the response phase',
    known: false
  })
  t.equal(classify(null, 'connect').known, false)
})

t.test('every status the table produces has a catalog entry', async t => {
  for (const rule of RULES) {
    if (rule.status === 499 || rule.status === null) continue
    t.ok(CATALOG.has(rule.status), `catalog has ${rule.status}`)
  }
})

t.test('stand-ins are classified as the failure they stand for, under their own code', async t => {
  const { InjectedFaultError, PoolDownError } = await import('../../src/status/errors.js')
  const injected = classify(new InjectedFaultError(522, 'HPX_ERR_CONNECT_TIMEOUT', 'connect'), 'connect')
  t.match(injected, { status: 522, code: 'HPX_ERR_INJECTED', proxyStatus: 'connection_timeout', known: true })
  const refused = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })
  const down = classify(new PoolDownError('web', 2, refused, 'connect'), 'connect')
  t.match(down, { status: 521, code: 'HPX_ERR_POOL_DOWN', proxyStatus: 'destination_unavailable', known: true })
})

t.test('TLS alerts from the origin, and the write timeout', async t => {
  t.match(classify({ code: 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION' }, 'tls'), { status: 525, proxyStatus: 'tls_alert_received' })
  t.match(classify({ code: 'ERR_SSL_WRONG_VERSION_NUMBER' }, 'tls'), { status: 525, proxyStatus: 'tls_protocol_error' })
  t.match(classify({ code: 'HPX_ERR_WRITE_TIMEOUT' }, 'request'), { status: 524, proxyStatus: 'connection_write_timeout' })
  t.match(classify({ code: 'HPX_ERR_CONNECTION_LIMIT' }, 'queue'), { status: 503, proxyStatus: 'connection_limit_reached' })
})

t.test('every row reports a documented code, with the system code as the cause', async t => {
  const refused = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })
  t.match(classify(refused, 'connect'), { status: 521, errorCode: 'HPX_ERR_CONNECT', causeCode: 'ECONNREFUSED' })
  t.match(classify({ code: 'UND_ERR_SOCKET' }, 'response'), { status: 520, errorCode: 'HPX_ERR_EMPTY_RESPONSE', causeCode: 'UND_ERR_SOCKET' })
  t.match(classify({ code: 'HPE_INVALID_CONSTANT' }, 'response'), { status: 520, errorCode: 'HPX_ERR_BAD_RESPONSE', causeCode: 'HPE_INVALID_CONSTANT' })
  t.match(classify({ code: 'UND_ERR_HEADERS_TIMEOUT' }, 'response'), { status: 524, errorCode: 'HPX_ERR_RESPONSE_TIMEOUT', causeCode: 'UND_ERR_HEADERS_TIMEOUT' })
  t.match(classify({ code: 'HPX_ERR_TLS_TIMEOUT' }, 'tls'), { status: 525, errorCode: 'HPX_ERR_TLS_TIMEOUT', causeCode: null })
  t.match(classify({ code: 'HPX_ERR_CONNECT_TIMEOUT' }, 'connect'), { status: 522, errorCode: 'HPX_ERR_CONNECT_TIMEOUT', causeCode: null })
  for (const rule of RULES) t.ok(Object.hasOwn(ERROR_CODES, rule.error), `${rule.why}: ${rule.error} is documented`)
})

t.test('the same codes in the same phase are classified once: one shared, frozen answer', async t => {
  const timeout = (): Error => Object.assign(new Error('no SYN-ACK'), { code: 'HPX_ERR_CONNECT_TIMEOUT' })
  const first = classify(timeout(), 'connect')
  t.equal(classify(timeout(), 'connect'), first, 'the same object for another error with the same code')
  t.ok(Object.isFrozen(first), 'shared, so it cannot be changed by one reader for the others')
  t.throws(() => { (first as { status: number }).status = 200 })
  // The phase is part of what decides: a reset while connecting and one after are not the same answer.
  const reset = (): Error => Object.assign(new Error('reset'), { code: 'ECONNRESET' })
  t.equal(classify(reset(), 'connect').status, 502, 'a reset while connecting is no row of the connect phase')
  t.equal(classify(reset(), 'response').status, 520)
  // The chain's codes are the key, not only the outer one.
  const wrapped = (code: string): Error => Object.assign(new Error('wrapped'), { code: 'UND_ERR_SOCKET', cause: Object.assign(new Error('inner'), { code }) })
  t.equal(classify(wrapped('ECONNRESET'), 'response').code, 'ECONNRESET')
  t.equal(classify(wrapped('EPIPE'), 'response').code, 'EPIPE')
  t.equal(classify(wrapped('ECONNRESET'), 'response'), classify(wrapped('ECONNRESET'), 'response'))
  // No code at all is not the same as a code that is the empty string.
  t.equal(classify(new Error('bare'), 'tls').code, null)
  t.equal(classify(Object.assign(new Error('empty code'), { code: '' }), 'tls').code, '')
  // A phase the table does not know is answered (502), not a crash.
  t.equal(classify(timeout(), 'nowhere' as Phase).status, 502)
  // Codes a library coins are many: the memo stays bounded and answers the same after it is emptied.
  for (let i = 0; i < 600; i++) classify(Object.assign(new Error('x'), { code: `E_COINED_${i}` }), 'connect')
  t.same(classify(timeout(), 'connect'), first)
})
