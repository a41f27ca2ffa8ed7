// A CA refusing a renewal (Pebble rejecting every nonce, test/pebble.ts): the failure is
// loud (a warn line with the CA's problem document, retried with backoff) and never
// costs the certificate already served; /readyz stays ready. acme-failures.test.ts has a
// challenge the CA cannot validate.

import { cpSync, readdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { DOMAIN, configFile, metric, msg, proxy, setup, startOrigin } from '../acme-setup.js'
import { get } from '../helpers.js'
import { noPebble } from '../pebble.js'
import { handshake } from '../tls-support.js'

const originUrl = await startOrigin(t)

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

