// ACME when things go wrong, against a real ACME server (Pebble, test/pebble.ts): a
// challenge the CA cannot validate, a CA refusing every request of a renewal, a
// directory nobody answers at, and configuration mistakes. Each is loud (a warn line with
// the CA's problem document, a metric), retried with backoff, never a crash, and never
// costs the certificate already served.

import { cpSync, readdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
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

t.test('Pebble refusing a renewal (every nonce rejected): the old certificate stays served, the failure is logged with badNonce', { skip: noPebble }, async t => {
  const base = t.testdir({})
  const a = await setup(t, originUrl, { name: 'a', base })
  const first = proxy(t, a, ['--config', configFile(a, {})])
  const obtained = await first.waitFor(msg('acme: certificate obtained'), 30_000)
  first.child.kill('SIGTERM')
  await first.exited
  // A second CA that rejects every nonce; the stored certificate copied to where this
  // directory's state lives, without the account (unknown to this CA).
  const b = await setup(t, originUrl, { nonceReject: 100, name: 'b', base })
  const from = join(a.storage, readdirSync(a.storage)[0] as string)
  const bFile = configFile(b, { renew_before: '87600h', retry: { first: '1s' } })
  const p = proxy(t, b, ['--config', bFile])
  await p.waitFor(msg('highproxy listening'), 30_000)
  p.child.kill('SIGTERM')
  await p.exited
  const to = join(b.storage, readdirSync(b.storage)[0] as string)
  for (const f of [`${DOMAIN}.crt`, `${DOMAIN}.key`]) cpSync(join(from, f), join(to, f))
  rmSync(join(to, 'account.json'), { force: true })
  const q = proxy(t, b, ['--config', bFile])
  const failed = await q.waitFor(msg('acme: renewal failed, the current certificate stays'), 30_000)
  t.equal(failed.problem?.type, 'urn:ietf:params:acme:error:badNonce')
  t.equal(failed.acme.serving.fingerprint, obtained.acme.fingerprint)
  await q.waitFor(l => l.msg === 'acme: renewal failed, the current certificate stays' && l.acme.failures === 2, 30_000)
  const served = await handshake(b.tlsPort, { servername: DOMAIN, ca: await a.pebble.root() })
  t.equal(served.fingerprint, obtained.acme.fingerprint, 'the old certificate is still served')
  t.match(await metric(q, 'highproxy_certificate_expiry_timestamp_seconds{name="shop.hpx.test"}'), [/ [0-9]{10}$/])
  const admin = String((await q.waitFor(msg('highproxy listening'))).admin)
  t.equal((await get(`${admin}/readyz`)).status, 200, '/readyz: ready while a valid certificate is served')
  t.equal(q.child.exitCode, null)
})

