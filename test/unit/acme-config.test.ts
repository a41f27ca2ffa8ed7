// listen.tls.acme as loaded from flags, env and file: names normalised, shortcuts
// expanded, defaults (storage, challenges by listener, renew_before), and each mistake
// a ConfigError naming its key.

import { statSync, writeFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { loadConfig } from '../../src/config/load.js'
import type { AcmeConfig } from '../../src/config/schema.js'
import { defaultStorage } from '../../src/config/acme.js'
import { directorySlug } from '../../src/listen/tls/acme-store.js'

type Flags = Record<string, string | boolean | undefined>
const acmeOf = (flags: Flags, env: NodeJS.ProcessEnv = {}): AcmeConfig | null =>
  loadConfig({ flags: { origin: 'http://127.0.0.1:9', ...flags }, env, isTTY: false }).front?.acme ?? null

t.test('flags: a comma-separated list of names, lower-cased, a trailing dot dropped, duplicates once', async t => {
  const storage = join(t.testdir({}), 'acme')
  const acme = acmeOf({ 'acme-domain': 'Example.COM, www.example.com.,example.com', 'acme-email': 'ops@example.com', 'acme-storage': storage })
  t.same(acme?.domains, ['example.com', 'www.example.com'])
  t.equal(acme?.email, 'ops@example.com')
  t.equal(acme?.directoryUrl, 'https://acme-v02.api.letsencrypt.org/directory', 'Let\'s Encrypt production by default')
  t.same(acme?.challenges, ['tls-alpn-01'], 'no plain-HTTP listener: tls-alpn-01 alone')
  t.equal(acme?.renewBeforeMs, null, 'a third of the lifetime')
  t.same([acme?.retryFirstMs, acme?.retryMaxMs], [60_000, 6 * 3_600_000])
  t.equal(statSync(storage).mode & 0o777, 0o700, 'storage made 0700')
})

t.test('env: HIGHPROXY_ACME_* like every other key; the staging shortcut', async t => {
  const storage = join(t.testdir({}), 'acme')
  const acme = acmeOf({}, { HIGHPROXY_ACME_DOMAIN: 'a.example.net', HIGHPROXY_ACME_DIRECTORY: 'letsencrypt-staging', HIGHPROXY_ACME_STORAGE: storage })
  t.same(acme?.domains, ['a.example.net'])
  t.equal(acme?.directoryUrl, 'https://acme-staging-v02.api.letsencrypt.org/directory')
})

t.test('a file: both challenges with a redirect listener, renew_before, EAB; TLS on with ACME alone', async t => {
  const dir = t.testdir({})
  const file = join(dir, 'c.yaml')
  writeFileSync(file, JSON.stringify({
    origin: 'http://127.0.0.1:9',
    listen: { tls: { redirect: { port: 0 }, acme: { domains: ['shop.example'], storage: join(dir, 's'), renew_before: '720h', external_account_binding: { kid: 'k', hmac: 'abc_-' } } } }
  }))
  const config = loadConfig({ flags: { config: file }, env: {}, isTTY: false })
  t.same(config.front?.certificates, [], 'no configured certificate')
  t.same(config.front?.acme?.challenges, ['http-01', 'tls-alpn-01'])
  t.equal(config.front?.acme?.renewBeforeMs, 720 * 3_600_000)
  t.same(config.front?.acme?.eab, { kid: 'k', hmac: 'abc_-' })
})

t.test('the default storage follows XDG_DATA_HOME, else ~/.local/share', async t => {
  t.equal(defaultStorage({ XDG_DATA_HOME: '/data' }), '/data/highproxy/acme')
  t.equal(defaultStorage({}), join(homedir(), '.local', 'share', 'highproxy', 'acme'))
})

t.test('one state directory per ACME directory URL', async t => {
  t.equal(directorySlug('https://acme-v02.api.letsencrypt.org/directory'), 'acme-v02.api.letsencrypt.org-directory')
  t.equal(directorySlug('https://acme-staging-v02.api.letsencrypt.org/directory'), 'acme-staging-v02.api.letsencrypt.org-directory')
  t.equal(directorySlug('https://127.0.0.1:14000/dir'), '127.0.0.1-14000-dir')
})

t.test('mistakes name their key', async t => {
  const storage = join(t.testdir({}), 'acme')
  const cases: Array<[Flags, RegExp]> = [
    [{ 'acme-domain': 'localhost' }, /listen\.tls\.acme\.domains\.0: "localhost" cannot be ordered: not a fully qualified name/],
    [{ 'acme-domain': '192.0.2.1' }, /listen\.tls\.acme\.domains\.0: .*an IP address/],
    [{ 'acme-domain': '-bad.example' }, /listen\.tls\.acme\.domains\.0: .*not a DNS name/],
    [{ 'acme-domain': `${'a'.repeat(64)}.example` }, /listen\.tls\.acme\.domains\.0: .*not a DNS name/],
    [{ 'acme-domain': 'ok.example', 'acme-email': 'a@b@c' }, /listen\.tls\.acme\.email \(from --acme-email\)|listen\.tls\.acme\.email/],
    [{ 'acme-domain': 'ok.example', 'acme-directory': 'not a url' }, /listen\.tls\.acme\.directory/]
  ]
  for (const [flags, expected] of cases) {
    t.throws(() => acmeOf({ ...flags, 'acme-storage': storage }), { code: 'HPX_ERR_CONFIG', message: expected }, JSON.stringify(flags))
  }
})
