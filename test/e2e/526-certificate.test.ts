// 526: the origin's certificate does not verify while verification is strict. The
// certificate is made at test time (CN localhost, SAN localhost and 127.0.0.1); trusting
// it through tls.ca_file makes the same origin verify and proxy 200.

import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { selfSignedCertificate } from '../../src/lab/certificates.js'
import { tlsOrigin } from '../../src/lab/tls-faults.js'
import type { ErrorBody } from '../../src/page/render.js'
import { accessFor, failureFor, get, rayOf, startProxy, type LogLine } from '../helpers.js'

const TIMEOUTS = { connect: '400ms', response: '500ms' }
const route = (origin: string, tls?: Record<string, unknown>): Record<string, unknown> =>
  ({ origin, connect_timeout: TIMEOUTS.connect, response_timeout: TIMEOUTS.response, ...(tls === undefined ? {} : { tls }) })
/** A warn line (pino's numeric level or its label) saying verification is off. */
const verificationOff = (l: LogLine): boolean =>
  (l.level === 40 || l.level === 'warn') && /verification is off/.test(String(l.msg))

const certificate = await selfSignedCertificate()
const dir = await mkdtemp(join(tmpdir(), 'highproxy-526-'))
t.teardown(() => rm(dir, { recursive: true, force: true }))
const caFile = join(dir, 'origin-ca.pem')
await writeFile(caFile, certificate.cert)
const origin = await tlsOrigin(certificate)
t.teardown(() => origin.close())
const originPort = Number(new URL(origin.url).port)

t.test('a self-signed certificate under strict verification answers 526', async t => {
  const proxy = await startProxy({ timeouts: TIMEOUTS, routes: [route(origin.url)] })
  t.teardown(() => proxy.close())
  t.notOk(proxy.logs.some(verificationOff), 'verification is on: no warning at start')

  const res = await get(`${proxy.url}/account`, { headers: { accept: 'application/json' } })
  t.equal(res.status, 526)
  t.equal(res.headers['retry-after'], undefined)
  const body = JSON.parse(res.body) as ErrorBody
  t.equal(body.error_name, 'invalid_ssl_certificate')
  t.equal(body.error_code, 526)
  t.equal(body.error_category, 'ssl')
  t.notMatch(res.body, `127.0.0.1:${originPort}`)

  const failure = await proxy.waitForLog(failureFor(rayOf(res)))
  t.equal(failure.edge_status, 526)
  t.equal(failure.phase, 'tls')
  t.equal(failure.error.code, 'HPX_ERR_TLS_CERT')
  t.equal(failure.error.cause.code, 'DEPTH_ZERO_SELF_SIGNED_CERT')
  t.type(failure.timings.tls_ms, 'number')
  t.equal(failure.timings.ttfb_ms, null)
  t.equal(failure.origin.port, originPort)
  const access = await proxy.waitForLog(accessFor(rayOf(res)))
  t.equal(access.status, 526)
})

t.test('the same certificate given as the route\'s tls.ca_file verifies: 200', async t => {
  const proxy = await startProxy({ timeouts: TIMEOUTS, routes: [route(origin.url, { verify: true, ca_file: caFile })] })
  t.teardown(() => proxy.close())
  const res = await get(`${proxy.url}/account`)
  t.equal(res.status, 200)
  t.equal(res.body, 'hello over TLS\n')
  t.notOk(proxy.logs.some(l => l.msg === 'origin failure'), 'no failure logged')
  const access = await proxy.waitForLog(accessFor(rayOf(res)))
  t.equal(access.status, 200)
  t.equal(access.edge_status, null)
})

t.test('tls.verify false proxies 200 and warns at start that verification is off', async t => {
  const proxy = await startProxy({ timeouts: TIMEOUTS, routes: [route(origin.url, { verify: false })] })
  t.teardown(() => proxy.close())
  const warning = proxy.logs.find(verificationOff)
  t.ok(warning, 'a warn line at start says certificate verification is off')
  t.match(warning?.msg, /526 cannot happen/)
  const res = await get(`${proxy.url}/account`)
  t.equal(res.status, 200)
  t.equal(res.body, 'hello over TLS\n')
})

t.test('a server name the certificate does not cover answers 526 even with the CA trusted', async t => {
  const proxy = await startProxy({
    timeouts: TIMEOUTS,
    routes: [route(origin.url, { ca_file: caFile, servername: 'wrong.example' })]
  })
  t.teardown(() => proxy.close())
  const res = await get(`${proxy.url}/account`, { headers: { accept: 'application/json' } })
  t.equal(res.status, 526)
  t.equal((JSON.parse(res.body) as ErrorBody).error_name, 'invalid_ssl_certificate')
  const failure = await proxy.waitForLog(failureFor(rayOf(res)))
  t.equal(failure.phase, 'tls')
  t.equal(failure.error.code, 'HPX_ERR_TLS_CERT')
  t.equal(failure.error.cause.code, 'ERR_TLS_CERT_ALTNAME_INVALID')

  // Control: the right name with the same CA verifies.
  const good = await startProxy({ timeouts: TIMEOUTS, routes: [route(origin.url, { ca_file: caFile, servername: 'localhost' })] })
  t.teardown(() => good.close())
  t.equal((await get(`${good.url}/account`)).status, 200)
})

t.test('the top-level tls settings apply to routes without their own', async t => {
  // Regression: routes used to get the TLS schema's `default: {}` (so `tls: { verify: true }`
  // filled in by Value.Default), and the top-level verify / ca_file / servername were
  // silently ignored: 526 here, and no warning (fixed by a2ee3da, TlsOverride without a default).
  const trusted = await startProxy({ origin: origin.url, timeouts: TIMEOUTS, tls: { verify: true, ca_file: caFile } })
  t.teardown(() => trusted.close())
  t.equal((await get(`${trusted.url}/`)).status, 200, 'top-level tls.ca_file trusted')

  const unverified = await startProxy({ origin: origin.url, timeouts: TIMEOUTS, tls: { verify: false } })
  t.teardown(() => unverified.close())
  t.ok(unverified.logs.some(verificationOff), 'warns that verification is off')
  t.equal((await get(`${unverified.url}/`)).status, 200, 'top-level tls.verify false honoured')
})
