// ACME certificates across time, against a real ACME server:
// Debian's Pebble on loopback (test/pebble.ts), its validations pointed at the proxy's
// own ports, its DNS answering 127.0.0.1 for the test names. Each test is one proxy run
// (the CLI as a child process) with its own Pebble, so each starts from an empty CA.
// Here: a restart reuses what is stored, and renewal while running.

import t from 'tap'
import { configFile, fingerprintOf, https, msg, proxy, setup, startOrigin } from '../acme-setup.js'
import { noPebble } from '../pebble.js'
import { curl, handshake } from '../tls-support.js'

const originUrl = await startOrigin(t)

t.test('a restart reuses the stored certificate: served from the first handshake, no new order', { skip: noPebble }, async t => {
  const s = await setup(t, originUrl)
  const file = configFile(s, {})
  const first = proxy(t, s, ['--config', file])
  await first.waitFor(msg('acme: certificate obtained'), 30_000)
  const before = await fingerprintOf(s)
  first.child.kill('SIGTERM')
  t.equal(await first.exited, 0)
  t.equal(s.pebble.orders(), 1)
  const second = proxy(t, s, ['--config', file])
  const served = await second.waitFor(msg('acme: certificate served'))
  await second.waitFor(msg('highproxy listening'), 30_000)
  t.equal(served.acme.fingerprint, before)
  t.equal(await fingerprintOf(s), before, 'the same certificate')
  const h1 = await curl(https(s))
  t.equal(h1.status, 200)
  // Long enough for an order to have started, had one been due.
  await new Promise(resolve => setTimeout(resolve, 1500))
  t.equal(s.pebble.orders(), 1, 'Pebble saw no new order')
  t.notOk(second.logs.some(msg('acme: certificate obtained')) || second.logs.some(msg('acme: certificate renewed')))
})

t.test('renewal while running: a renew_before longer than the lifetime renews at retry.first; new connections get the new certificate', { skip: noPebble }, async t => {
  const s = await setup(t, originUrl)
  // Pebble's certificates live 5 years: renew_before of 10 years is always due.
  const p = proxy(t, s, ['--config', configFile(s, { renew_before: '87600h', retry: { first: '2s' } })])
  const obtained = await p.waitFor(msg('acme: certificate obtained'), 30_000)
  t.equal(await fingerprintOf(s), obtained.acme.fingerprint)
  const renewed = await p.waitFor(msg('acme: certificate renewed'), 30_000)
  t.not(renewed.acme.fingerprint, obtained.acme.fingerprint)
  t.equal(renewed.acme.renewal, true)
  t.ok(p.logs.some(msg('acme: renew_before is longer than the certificate lifetime; renewing after retry.first')))
  const now = await fingerprintOf(s)
  const later = p.logs.filter(msg('acme: certificate renewed')).map(l => l.acme.fingerprint as string)
  t.ok(later.includes(now), 'a new connection gets a renewed certificate, without a restart')
  t.equal((await curl(https(s))).status, 200)
})

