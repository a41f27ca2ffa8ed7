// Certificates obtained and renewed by highproxy itself, against a real ACME server:
// Debian's Pebble on loopback (test/pebble.ts), its validations pointed at the proxy's
// own ports, its DNS answering 127.0.0.1 for the test names. Each test is one proxy run
// (the CLI as a child process) with its own Pebble, so each starts from an empty CA.
// Restart and renewal: acme-renewal.test.ts; --workers: acme-workers.test.ts; failures:
// acme-failures.test.ts; bad input: acme-input.test.ts.

import { readdirSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { DOMAIN, configFile, fingerprintOf, https, msg, proxy, setup, startOrigin } from '../acme-setup.js'
import { noPebble } from '../pebble.js'
import { curl, handshake, makePki } from '../tls-support.js'

const originUrl = await startOrigin(t)

t.test('http-01: the first start orders a certificate; curl verifies it over HTTP/1.1 and HTTP/2', { skip: noPebble }, async t => {
  const s = await setup(t, originUrl)
  const p = proxy(t, s, ['--config', configFile(s, { challenges: ['http-01'] })])
  await p.waitFor(msg('highproxy listening'), 30_000)
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

t.test('external account binding: a CA that requires it issues to the account bound by kid and hmac', { skip: noPebble }, async t => {
  const hmac = 'zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W'
  const s = await setup(t, originUrl, { eab: { 'kid-1': hmac } })
  const p = proxy(t, s, ['--config', configFile(s, { external_account_binding: { kid: 'kid-1', hmac } })])
  const obtained = await p.waitFor(msg('acme: certificate obtained'), 30_000)
  t.equal(await fingerprintOf(s), obtained.acme.fingerprint)
})

t.test('configured certificates beside ACME: a name both cover gets the configured one; the other ACME name its own', { skip: noPebble }, async t => {
  const pki = await makePki()
  t.teardown(() => pki.remove())
  const configured = await pki.issue('configured', [DOMAIN])
  const s = await setup(t, originUrl)
  const file = join(s.dir, 'both.yaml')
  writeFileSync(file, JSON.stringify({
    origin: originUrl,
    listen: {
      tls: {
        cert: configured.certFile,
        key: configured.keyFile,
        acme: { domains: [DOMAIN, 'api.hpx.test'], directory: s.pebble.directory, directory_ca: s.pebble.apiCa, storage: s.storage }
      }
    }
  }))
  const p = proxy(t, s, ['--config', file])
  const obtained = [
    await p.waitFor(l => l.msg === 'acme: certificate obtained' && l.acme.domain === 'api.hpx.test', 30_000),
    await p.waitFor(l => l.msg === 'acme: certificate obtained' && l.acme.domain === DOMAIN, 30_000)
  ]
  t.same(obtained.map(l => l.acme.challenges), [['tls-alpn-01'], ['tls-alpn-01']], 'validated on the TLS port, the configured name too')
  const root = await s.pebble.root()
  t.equal((await handshake(s.tlsPort, { servername: 'api.hpx.test', ca: root })).fingerprint, obtained[0]?.acme.fingerprint, 'the ACME name: its ACME certificate')
  t.equal((await handshake(s.tlsPort, { servername: DOMAIN, ca: pki.ca.cert })).fingerprint, configured.fingerprint, 'the name both cover: the configured certificate')
})
