// Certificates obtained and renewed by highproxy itself, against a real ACME server:
// Debian's Pebble on loopback (test/pebble.ts), its validations pointed at the proxy's
// own ports, its DNS answering 127.0.0.1 for the test names. Each test is one proxy run
// (the CLI as a child process) with its own Pebble, so each starts from an empty CA.

import { spawnSync } from 'node:child_process'
import { cpSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import { CLI, start, type Running } from '../cli-process.js'
import { get, type LogLine } from '../helpers.js'
import { freePort, noPebble, startPebble, type Pebble } from '../pebble.js'
import { curl, handshake } from '../tls-support.js'

const DOMAIN = 'shop.hpx.test'

const origin = http.createServer((req, res) => { res.end(`origin saw ${req.url ?? ''}`) })
await new Promise<void>(resolve => origin.listen(0, '127.0.0.1', resolve))
t.teardown(() => new Promise<void>(resolve => origin.close(() => resolve())))
const originUrl = `http://127.0.0.1:${(origin.address() as AddressInfo).port}`

interface Setup { dir: string, pebble: Pebble, httpPort: number, tlsPort: number, root: string, storage: string }

async function setup (t: Test, opts: { nonceReject?: number, validateHttpAt?: number, name?: string, base?: string } = {}): Promise<Setup> {
  const dir = join(opts.base ?? t.testdir({}), opts.name ?? 'ca')
  mkdirSync(dir)
  const [httpPort, tlsPort] = [await freePort(), await freePort()]
  const pebble = await startPebble(dir, { httpPort: opts.validateHttpAt ?? httpPort, tlsPort, nonceReject: opts.nonceReject })
  t.teardown(() => pebble.close())
  const root = join(dir, 'pebble-root.pem')
  writeFileSync(root, await pebble.root())
  return { dir, pebble, httpPort, tlsPort, root, storage: join(dir, 'acme') }
}

/** The proxy's config file: ACME for `domains` against this Pebble, on the ports it validates. */
function configFile (s: Setup, acme: Record<string, unknown>, name = 'config.yaml'): string {
  const file = join(s.dir, name)
  writeFileSync(file, JSON.stringify({
    origin: originUrl,
    listen: {
      port: s.tlsPort,
      tls: {
        redirect: { port: s.httpPort },
        acme: { domains: [DOMAIN], email: 'ops@hpx.test', directory: s.pebble.directory, directory_ca: s.pebble.apiCa, storage: s.storage, ...acme }
      }
    }
  }))
  return file
}

/** The CLI with this setup's config: on the TLS port Pebble validates (start() says --port 0 first). */
function proxy (t: Test, s: Setup, args: string[]): Running {
  const p = start(['--port', String(s.tlsPort), ...args])
  t.teardown(async () => {
    if (p.child.exitCode === null && p.child.signalCode === null) {
      p.child.kill('SIGTERM')
      await p.exited
    }
  })
  return p
}

const msg = (m: string) => (l: LogLine): boolean => l.msg === m
const https = (s: Setup, extra: string[] = []): string[] =>
  ['--cacert', s.root, '--resolve', `${DOMAIN}:${s.tlsPort}:127.0.0.1`, ...extra, `https://${DOMAIN}:${s.tlsPort}/hello`]

t.test('http-01: the first start orders a certificate; curl verifies it over HTTP/1.1 and HTTP/2', { skip: noPebble }, async t => {
  const s = await setup(t)
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

const fingerprintOf = async (s: Setup): Promise<string> =>
  (await handshake(s.tlsPort, { servername: DOMAIN, ca: await s.pebble.root(), ALPNProtocols: ['h2'] })).fingerprint

t.test('tls-alpn-01 on the TLS port alone (no plain-HTTP listener); HTTP/2 verifies', { skip: noPebble }, async t => {
  const s = await setup(t)
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
  const s = await setup(t)
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
  const s = await setup(t)
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

const metric = async (p: Running, name: string): Promise<string[]> => {
  const listening = await p.waitFor(msg('highproxy listening'))
  const text = (await get(`${String(listening.admin)}/metrics`)).body
  return text.split('\n').filter(l => l.startsWith(name))
}

t.test('a failing challenge: warn lines with the problem document, backoff, the metric; the name gets an alert; plain HTTP works', { skip: noPebble }, async t => {
  // Pebble validates http-01 at a port nobody listens on.
  const s = await setup(t, { validateHttpAt: await freePort() })
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
  const a = await setup(t, { name: 'a', base })
  const first = proxy(t, a, ['--config', configFile(a, {})])
  const obtained = await first.waitFor(msg('acme: certificate obtained'), 30_000)
  first.child.kill('SIGTERM')
  await first.exited
  // A second CA that rejects every nonce; the stored certificate copied to where this
  // directory's state lives, without the account (unknown to this CA).
  const b = await setup(t, { nonceReject: 100, name: 'b', base })
  const from = join(a.storage, readdirSync(a.storage)[0] as string)
  const bFile = configFile(b, { renew_before: '87600h', retry: { first: '1s' } })
  const p = proxy(t, b, ['--config', bFile])
  await p.waitFor(msg('highproxy listening'))
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
  t.equal(q.child.exitCode, null)
})

t.test('--workers 2: one process orders, both serve the certificate', { skip: noPebble }, async t => {
  const s = await setup(t)
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

t.test('bad input: one line naming the key, exit 2', async t => {
  const dir = t.testdir({ 'a-file': 'x' })
  const run = (args: string[]): { code: number | null, stderr: string } => {
    const r = spawnSync(process.execPath, [CLI, '--origin', originUrl, '--port', '0', '--admin-port', '0', ...args], { encoding: 'utf8', timeout: 20_000 })
    return { code: r.status, stderr: r.stderr }
  }
  const storage = ['--acme-storage', join(dir, 'store')]
  const cases: Array<[string, string[], RegExp]> = [
    ['an invalid domain', ['--acme-domain', 'bad_name.example', ...storage], /listen\.tls\.acme\.domains\.0.*bad_name\.example/],
    ['a wildcard', ['--acme-domain', '*.example.com', ...storage], /listen\.tls\.acme\.domains\.0.*dns-01/],
    ['an email without @', ['--acme-domain', 'example.com', '--acme-email', 'ops.example.com', ...storage], /listen\.tls\.acme\.email.*@/],
    ['an email without domains', ['--acme-email', 'ops@example.com', ...storage], /listen\.tls\.acme/],
    ['storage that is not writable', ['--acme-domain', 'example.com', '--acme-storage', join(dir, 'a-file', 'acme')], /listen\.tls\.acme\.storage.*ENOTDIR/],
    ['a directory that is not https', ['--acme-domain', 'example.com', '--acme-directory', 'http://127.0.0.1:1/dir', ...storage], /listen\.tls\.acme\.directory/],
    ['http-01 without the plain-HTTP listener', ['--config', join(dir, 'http01.yaml')], /listen\.tls\.acme\.challenges.*redirect/]
  ]
  writeFileSync(join(dir, 'http01.yaml'), JSON.stringify({ listen: { tls: { acme: { domains: ['example.com'], challenges: ['http-01'], storage: join(dir, 'store') } } } }))
  for (const [name, args, expected] of cases) {
    const r = run(args)
    t.equal(r.code, 2, `${name}: exit 2`)
    t.equal(r.stderr.trim().split('\n').length, 1, `${name}: one line (${r.stderr.trim()})`)
    t.match(r.stderr, expected, name)
  }
})

t.test('a directory that does not answer: a warn line per try and retries, never a crash', async t => {
  const dir = t.testdir({})
  const dead = await freePort()
  mkdirSync(join(dir, 'store'))
  const p = start(['--origin', originUrl, '--acme-domain', DOMAIN, '--acme-directory', `https://127.0.0.1:${dead}/dir`, '--acme-storage', join(dir, 'store'),
    '--config', writeConfig(dir)])
  t.teardown(async () => { if (p.child.exitCode === null) { p.child.kill('SIGTERM'); await p.exited } })
  const first = await p.waitFor(l => l.msg === 'acme: order failed' && l.acme.failures === 1, 30_000)
  t.equal(first.error.cause, 'ECONNREFUSED')
  t.equal(first.problem, null)
  await p.waitFor(l => l.msg === 'acme: order failed' && l.acme.failures === 2, 30_000)
  t.equal(p.child.exitCode, null, 'still running')
  const ok = await get(`http://127.0.0.1:${String((p.logs.find(msg('highproxy listening')) as LogLine).redirect).split(':').pop() ?? ''}/x`)
  t.equal(ok.status, 308, 'plain HTTP keeps working')
})

/** retry.first of 1s (no flag for it) and a plain-HTTP listener on a port of its own. */
function writeConfig (dir: string): string {
  const file = join(dir, 'retry.yaml')
  writeFileSync(file, JSON.stringify({ listen: { tls: { redirect: { port: 0 }, acme: { domains: [DOMAIN], retry: { first: '1s' } } } } }))
  return file
}
