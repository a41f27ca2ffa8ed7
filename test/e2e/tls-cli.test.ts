// The TLS front door as a user runs it, `node dist/cli.js` (run `npm run build` first;
// `npm test` does): a missing or mismatched certificate is one line naming the key and
// exit 2; SIGHUP serves a new certificate to new connections, and a bad one on reload is
// one log line with the old one kept; --tls-selfsigned serves HTTPS and HTTP/2 at once.

import { spawn } from 'node:child_process'
import { copyFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { healthyOrigin } from '../../src/lab/healthy-origin.js'
import { CLI, listening, start } from '../cli-process.js'
import { curl, handshake, makePki } from '../tls-support.js'

const pki = await makePki()
t.teardown(() => pki.remove())
const origin = await healthyOrigin()
t.teardown(() => origin.close())
const first = await pki.issue('first', ['localhost'])
const other = await pki.issue('other', ['localhost'])

function run (args: string[]): Promise<{ code: number | null, stderr: string }> {
  return new Promise(resolve => {
    const child = spawn(process.execPath, [CLI, '--port', '0', '--admin-port', '0', ...args], { stdio: ['ignore', 'ignore', 'pipe'] })
    let stderr = ''
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
    child.once('exit', code => resolve({ code, stderr }))
  })
}

t.test('a missing or mismatched certificate: one line naming the key, exit 2', async t => {
  const missing = await run(['--origin', origin.url, '--tls-cert', join(pki.dir, 'nope.pem'), '--tls-key', first.keyFile])
  t.equal(missing.code, 2)
  t.equal(missing.stderr.trim().split('\n').length, 1, 'one line')
  t.match(missing.stderr, /^highproxy: config listen\.tls\.cert: cannot read .*nope\.pem \(ENOENT\)/)
  const mismatched = await run(['--origin', origin.url, '--tls-cert', first.certFile, '--tls-key', other.keyFile])
  t.equal(mismatched.code, 2)
  t.equal(mismatched.stderr.trim().split('\n').length, 1)
  t.match(mismatched.stderr, /config listen\.tls\.key \(.*other\.key\): does not match the certificate of listen\.tls\.cert/)
  const keyless = await run(['--origin', origin.url, '--tls-cert', first.certFile])
  t.equal(keyless.code, 2)
  t.match(keyless.stderr, /config listen\.tls\.key: needed with listen\.tls\.cert/)
})

t.test('SIGHUP: new connections get the new certificate; a bad one is refused and the old kept', async t => {
  // The files the process reads, overwritten in place as a certificate renewal does.
  const cert = join(pki.dir, 'live.pem')
  const key = join(pki.dir, 'live.key')
  copyFileSync(first.certFile, cert)
  copyFileSync(first.keyFile, key)
  const p = start(['--origin', origin.url, '--tls-cert', cert, '--tls-key', key])
  t.teardown(() => { p.child.kill('SIGKILL') })
  const up = await p.waitFor(listening)
  const port = Number(new URL(String(up.listen)).port)
  t.match(String(up.listen), /^https:/)
  t.equal(up.tls.certificates[0].fingerprint, first.fingerprint)
  t.equal((await handshake(port, { ca: pki.ca.cert, servername: 'localhost' })).fingerprint, first.fingerprint)

  copyFileSync(other.certFile, cert)
  copyFileSync(other.keyFile, key)
  p.child.kill('SIGHUP')
  const reloaded = await p.waitFor(l => l.msg === 'certificates reloaded')
  t.equal(reloaded.certificates[0].fingerprint, other.fingerprint)
  t.equal((await handshake(port, { ca: pki.ca.cert, servername: 'localhost' })).fingerprint, other.fingerprint, 'a new connection gets the new certificate')
  const res = await curl(['--http2', '--cacert', pki.caFile, '--resolve', `localhost:${port}:127.0.0.1`, `https://localhost:${port}/`])
  t.equal(res.status, 200, 'and is served')

  // Half a renewal: the new certificate with the old key.
  copyFileSync(first.certFile, cert)
  p.child.kill('SIGHUP')
  const rejected = await p.waitFor(l => l.msg === 'config reload rejected, old config kept')
  t.match(rejected.error, /listen\.tls\.key .*does not match the certificate/)
  t.equal(p.logs.filter(l => l.level === 'error').length, 1, 'one log line')
  t.equal((await handshake(port, { ca: pki.ca.cert, servername: 'localhost' })).fingerprint, other.fingerprint, 'the old certificate is kept')
  t.equal(p.child.exitCode, null, 'and the process is up')
})

t.test('--tls-selfsigned: HTTPS and HTTP/2 with a throwaway certificate for localhost', async t => {
  const p = start(['--origin', origin.url, '--tls-selfsigned'])
  t.teardown(() => { p.child.kill('SIGKILL') })
  const up = await p.waitFor(listening)
  const port = Number(new URL(String(up.listen)).port)
  t.same(up.tls.certificates[0].names, ['localhost'])
  const res = await curl(['--http2', '-k', `https://localhost:${port}/`, '--resolve', `localhost:${port}:127.0.0.1`])
  t.equal(res.version, 'HTTP/2')
  t.equal(res.status, 200)
  const hs = await handshake(port, { servername: 'localhost', rejectUnauthorized: false })
  t.equal(hs.fingerprint, up.tls.certificates[0].fingerprint)
})
