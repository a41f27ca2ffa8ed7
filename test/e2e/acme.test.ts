// Certificates obtained and renewed by highproxy itself, against a real ACME server:
// Debian's Pebble on loopback (test/pebble.ts), its validations pointed at the proxy's
// own ports, its DNS answering 127.0.0.1 for the test names. Each test is one proxy run
// (the CLI as a child process) with its own Pebble, so each starts from an empty CA.
// Failures and bad input: acme-failures.test.ts.

import { readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { writeFileSync } from 'node:fs'
import t from 'tap'
import { DOMAIN, configFile, fingerprintOf, https, msg, proxy, setup, startOrigin } from '../acme-setup.js'
import type { LogLine } from '../helpers.js'
import { noPebble } from '../pebble.js'
import { curl, handshake } from '../tls-support.js'

const originUrl = await startOrigin(t)

t.test('http-01: the first start orders a certificate; curl verifies it over HTTP/1.1 and HTTP/2', { skip: noPebble }, async t => {
  const s = await setup(t, originUrl)
  const p = proxy(t, s, ['--config', configFile(s, { challenges: ['http-01'] })])
  await p.waitFor(msg('highproxy listening'))
  const obtained = await p.waitFor(msg('acme: certificate obtained'), 30_000)
  t.equal(obtained.acme.domain, DOMAIN)
  t.same(obtained.acme.challenges, ['http-01'])
  const h1 = await curl(https(s, ['--http1.1']))
  t.equal(h1.status, 200)
  t.equal(h1.version, 'HTTP/1.1')
  t.equal(h1.body, 'origin saw /hello')
  const h2 = await curl(https(s, ['--http2']))
  t.equal(h2.status, 200)
  t.equal(h2.version, 'HTTP/2')
  // Files: 0600 in a 0700 directory.
  const dir = join(s.storage, readdirSync(s.storage)[0] as string)
  t.equal(statSync(s.storage).mode & 0o777, 0o700)
  t.equal(statSync(dir).mode & 0o777, 0o700)
  for (const f of ['account.key', 'account.json', `${DOMAIN}.crt`, `${DOMAIN}.key`]) t.equal(statSync(join(dir, f)).mode & 0o777, 0o600, `${f} is 0600`)
  t.equal(s.pebble.orders(), 1, 'one order')
})

t.test('tls-alpn-01 on the TLS port alone (no plain-HTTP listener); HTTP/2 verifies', { skip: noPebble }, async t => {
  const s = await setup(t, originUrl)
  const file = join(s.dir, 'alpn.yaml')
  writeFileSync(file, JSON.stringify({
    origin: originUrl,
    listen: { tls: { acme: { domains: [DOMAIN], directory: s.pebble.directory, directory_ca: s.pebble.apiCa, storage: s.storage } } }
  }))
  const p = proxy(t, s, ['--config', file])
  const obtained = await p.waitFor(msg('acme: certificate obtained'), 30_000)
  t.equal(obtained.acme.domain, DOMAIN)
  t.same(obtained.acme.challenges, ['tls-alpn-01'], 'validated by tls-alpn-01 (there is no plain-HTTP listener)')
  const h2 = await curl(https(s, ['--http2']))
  t.equal(h2.status, 200)
  t.equal(h2.version, 'HTTP/2')
  t.equal(h2.body, 'origin saw /hello')
})

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
  await second.waitFor(msg('highproxy listening'))
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

t.test('--workers 2: one process orders, both serve the certificate', { skip: noPebble }, async t => {
  const s = await setup(t, originUrl)
  const p = proxy(t, s, ['--config', configFile(s, {}), '--workers', '2'])
  await p.waitFor(msg('acme: certificate obtained'), 30_000)
  // The other worker picks it up from the storage.
  const pickedUp = await p.waitFor(msg('acme: certificate served'), 10_000)
  const leaders = p.logs.filter(msg('acme: this process orders and renews'))
  t.equal(leaders.length, 1, 'exactly one process orders')
  t.not(pickedUp.pid, leaders[0]?.pid, 'the other worker serves it too')
  const fingerprint = (p.logs.find(msg('acme: certificate obtained')) as LogLine).acme.fingerprint
  const root = await s.pebble.root()
  // New connections take turns between the workers.
  for (let i = 0; i < 6; i++) t.equal((await handshake(s.tlsPort, { servername: DOMAIN, ca: root })).fingerprint, fingerprint)
  t.equal(s.pebble.orders(), 1, 'one order')
})


t.test('external account binding: a CA that requires it issues to the account bound by kid and hmac', { skip: noPebble }, async t => {
  const hmac = 'zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W'
  const s = await setup(t, originUrl, { eab: { 'kid-1': hmac } })
  const p = proxy(t, s, ['--config', configFile(s, { external_account_binding: { kid: 'kid-1', hmac } })])
  const obtained = await p.waitFor(msg('acme: certificate obtained'), 30_000)
  t.equal(await fingerprintOf(s), obtained.acme.fingerprint)
})
