// A challenge the CA cannot validate, against a real ACME server (Pebble, test/pebble.ts):
// a warn line with the CA's problem document per try, backoff, the failure metric; the
// pending name gets a TLS alert, never another certificate; plain HTTP keeps working.
// acme-refused.test.ts: a refused renewal; acme-input.test.ts: bad input.

import t from 'tap'
import { DOMAIN, configFile, metric, msg, proxy, setup, startOrigin } from '../acme-setup.js'
import { get } from '../helpers.js'
import { freePort, noPebble } from '../pebble.js'
import { handshake } from '../tls-support.js'

const originUrl = await startOrigin(t)

t.test('a failing challenge: warn lines with the problem document, backoff, the metric; the name gets an alert; plain HTTP works', { skip: noPebble }, async t => {
  // Pebble validates http-01 at a port nobody listens on.
  const s = await setup(t, originUrl, { validateHttpAt: await freePort() })
  const p = proxy(t, s, ['--config', configFile(s, { challenges: ['http-01'], retry: { first: '1s', max: '30s' } })])
  const first = await p.waitFor(l => l.msg === 'acme: order failed' && l.acme.failures === 1, 30_000)
  t.equal(first.level, 'warn')
  t.equal(first.error.code, 'HPX_ERR_ACME')
  t.match(first.problem, { type: /^urn:ietf:params:acme:error:/, detail: /\S/ }, 'the problem document: type and detail')
  t.equal(first.acme.serving, null)
  const second = await p.waitFor(l => l.msg === 'acme: order failed' && l.acme.failures === 2, 30_000)
  t.ok(second.acme.retry_in_ms > first.acme.retry_in_ms, `backoff grows: ${first.acme.retry_in_ms as number} ms, then ${second.acme.retry_in_ms as number} ms`)
  t.match(await metric(p, 'highproxy_acme_failures_total '), [/ ([2-9]|[1-9][0-9]+)$/], 'counted')
  // The name has no certificate: an alert, never another certificate, and one line.
  await t.rejects(handshake(s.tlsPort, { servername: DOMAIN, rejectUnauthorized: false }), /alert handshake failure/)
  await p.waitFor(msg('tls handshake refused'))
  await t.rejects(handshake(s.tlsPort, { servername: DOMAIN, rejectUnauthorized: false }), /alert handshake failure/)
  // The second refusal's access line (every failed handshake has one) comes after any line of its own.
  await p.waitFor(l => l.msg === 'access' && l.status === 400 && p.logs.filter(l => l.msg === 'access' && l.status === 400).length >= 2)
  const refused = p.logs.filter(msg('tls handshake refused'))
  t.equal(refused.length, 1, 'one line for the name, not one per handshake')
  t.equal(refused[0]?.error.code, 'HPX_ERR_ACME_PENDING')
  t.equal(refused[0]?.server_name, DOMAIN)
  const plain = await get(`http://127.0.0.1:${s.httpPort}/page`)
  t.equal(plain.status, 308, 'the plain-HTTP listener answers')
  t.equal(p.child.exitCode, null, 'still running')
})
