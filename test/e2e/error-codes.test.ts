// Every failure the lab can make, through a real proxy: the failure line's `error.code` is a
// documented HPX_ERR_* code (docs/logs.md, Error codes) and the system or library code that
// decided the status is its `error.cause.code`, so an alert written on a documented code
// fires. The access line of the same request carries the attempt's connect time.

import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Value } from '@sinclair/typebox/value'
import t from 'tap'
import { FAULT_NAMES, startLab, type FaultName } from '../../src/lab/index.js'
import { FailureRecordSchema } from '../../src/log/log-schema.js'
import { ERROR_CODES } from '../../src/status/errors.js'
import { accessFor, failureFor, get, rayOf, startProxy } from '../helpers.js'

interface Expected {
  status: number
  code: keyof typeof ERROR_CODES
  /** The cause's code, a pattern for the library's own names; null: the edge decided alone. */
  cause: RegExp | null
  /** The attempt dialled a TCP connection: the access line says how long that took. */
  dialled: boolean
}

// One row per fault of the catalog; null for the faults that answer (they fail only after
// some requests or past a timeout, and have tests of their own).
const EXPECTED: Record<FaultName, Expected | null> = {
  '520-reset': { status: 520, code: 'HPX_ERR_ORIGIN_RESET', cause: /^(ECONNRESET|EPIPE)$/, dialled: true },
  '520-empty': { status: 520, code: 'HPX_ERR_EMPTY_RESPONSE', cause: /^UND_ERR_(SOCKET|CLOSED)$/, dialled: true },
  '520-garbage': { status: 520, code: 'HPX_ERR_BAD_RESPONSE', cause: /^HPE_/, dialled: true },
  '520-headers': { status: 520, code: 'HPX_ERR_HEADERS_TOO_LARGE', cause: /^(UND_ERR_HEADERS_OVERFLOW|HPE_HEADER_OVERFLOW)$/, dialled: true },
  521: { status: 521, code: 'HPX_ERR_CONNECT', cause: /^ECONNREFUSED$/, dialled: true },
  '521-after': null,
  522: { status: 522, code: 'HPX_ERR_CONNECT_TIMEOUT', cause: null, dialled: true },
  523: { status: 523, code: 'HPX_ERR_CONNECT', cause: /^(EHOSTUNREACH|ENETUNREACH)$/, dialled: true },
  524: { status: 524, code: 'HPX_ERR_RESPONSE_TIMEOUT', cause: null, dialled: true },
  525: { status: 525, code: 'HPX_ERR_TLS_HANDSHAKE', cause: /SSL|TLS/, dialled: true },
  526: { status: 526, code: 'HPX_ERR_TLS_CERT', cause: /^DEPTH_ZERO_SELF_SIGNED_CERT$/, dialled: true },
  '526-expired': { status: 526, code: 'HPX_ERR_TLS_CERT', cause: /^CERT_HAS_EXPIRED$/, dialled: true },
  '526-name': { status: 526, code: 'HPX_ERR_TLS_CERT', cause: /^ERR_TLS_CERT_ALTNAME_INVALID$/, dialled: true },
  530: { status: 530, code: 'HPX_ERR_DNS', cause: /^ENOTFOUND$/, dialled: false },
  slow: null,
  trickle: null,
  'keepalive-cut': null,
  drowning: null
}

t.test('every lab fault: a documented error.code, the system code in error.cause.code', async t => {
  const lab = await startLab()
  t.teardown(() => lab.close())
  // The lab CA is trusted for its own certificates, so each 526 shows its own cause.
  const dir = await mkdtemp(join(tmpdir(), 'highproxy-codes-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const caFile = join(dir, 'lab-ca.pem')
  await writeFile(caFile, lab.origins['526-expired'].ca ?? '')
  const faults = FAULT_NAMES.filter(name => EXPECTED[name] !== null && lab.origins[name].available)
  const proxy = await startProxy({
    timeouts: { connect: '500ms', response: '600ms' },
    routes: faults.map(name => ({
      path: `/${name}`,
      origin: lab.urls[name],
      ...(name === '526-expired' || name === '526-name' ? { tls: { ca_file: caFile } } : {})
    }))
  })
  t.teardown(() => proxy.close())

  t.same(Object.keys(EXPECTED).sort(), [...FAULT_NAMES].sort(), 'a row for every fault of the catalog')
  const documented = Object.keys(ERROR_CODES)
  await Promise.all(faults.map(async name => {
    const want = EXPECTED[name] as Expected
    const res = await get(`${proxy.url}/${name}`, { headers: { accept: 'application/json' } })
    t.equal(res.status, want.status, `${name}: ${want.status}`)
    const failure = await proxy.waitForLog(failureFor(rayOf(res)))
    t.ok(Value.Check(FailureRecordSchema, failure), `${name}: the failure line fits its schema`)
    t.ok(documented.includes(failure.error.code), `${name}: ${String(failure.error.code)} is documented`)
    t.equal(failure.error.code, want.code, `${name}: error.code`)
    if (want.cause === null) {
      t.equal(failure.error.cause, null, `${name}: decided by the edge alone, no cause`)
    } else {
      t.match(failure.error.cause?.code, want.cause, `${name}: error.cause.code ${String(failure.error.cause?.code)}`)
      t.type(failure.error.cause?.message, 'string')
    }
    const access = await proxy.waitForLog(accessFor(rayOf(res)))
    if (want.dialled) {
      t.type(failure.timings.connect_ms, 'number', `${name}: the failure line timed the connect`)
      t.equal(access.connect_ms, failure.timings.connect_ms, `${name}: the access line carries the same connect_ms`)
    } else {
      t.equal(access.connect_ms, null, `${name}: nothing was dialled`)
    }
  }))
})

t.test('a pool-down stand-in and an injected fault keep their own code, with what they stand for as the cause', async t => {
  const lab = await startLab({ faults: ['521'] })
  t.teardown(() => lab.close())
  const proxy = await startProxy({
    fault_injection: true,
    timeouts: { connect: '300ms' },
    pools: [{ name: 'web', origins: [lab.urls['521']], health: { failures: 1 } }],
    routes: [{ pool: 'web' }]
  })
  t.teardown(() => proxy.close())

  const first = await get(`${proxy.url}/`)
  t.match(await proxy.waitForLog(failureFor(rayOf(first))), { error: { code: 'HPX_ERR_CONNECT', cause: { code: 'ECONNREFUSED' } } })
  const down = await get(`${proxy.url}/`)
  t.equal(down.status, 521)
  t.match(await proxy.waitForLog(failureFor(rayOf(down))), { error: { code: 'HPX_ERR_POOL_DOWN', cause: { code: 'ECONNREFUSED' } } })
  const injected = await get(`${proxy.url}/`, { headers: { 'x-highproxy-fault': '522' } })
  t.equal(injected.status, 522)
  t.match(await proxy.waitForLog(failureFor(rayOf(injected))), { error: { code: 'HPX_ERR_INJECTED', cause: { code: String } } })
})
