// The plain-HTTP listener beside the TLS one (listen.tls.redirect): 308 to https:// with
// the same host, path and query, and ACME HTTP-01 tokens served from a directory, never
// anything outside it. Started by the CLI from a config file, as a user would.

import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { healthyOrigin } from '../../src/lab/healthy-origin.js'
import { listening, start } from '../cli-process.js'
import { curl, makePki } from '../tls-support.js'

const pki = await makePki()
t.teardown(() => pki.remove())
const origin = await healthyOrigin()
t.teardown(() => origin.close())
const cert = await pki.issue('edge', ['localhost', 'shop.example'])
const acme = join(pki.dir, 'acme')
mkdirSync(acme)
writeFileSync(join(acme, 'tok-EN_123'), 'tok-EN_123.thumbprint')
writeFileSync(join(pki.dir, 'secret'), 'outside the challenge directory')
const config = join(pki.dir, 'config.yaml')
writeFileSync(config, `origin: ${origin.url}
listen:
  tls:
    cert: ${cert.certFile}
    key: ${cert.keyFile}
    hsts: max-age=31536000
    redirect: { port: 0, acme_dir: ${acme} }
`)

const p = start(['--config', config])
t.teardown(() => { p.child.kill('SIGKILL') })
const up = await p.waitFor(listening)
const httpsPort = Number(new URL(String(up.listen)).port)
const redirect = String(up.redirect)
t.match(redirect, /^http:\/\/127\.0\.0\.1:\d+$/)

t.test('every request gets 308 to https with the same host, path and query', async t => {
  const res = await curl(['-H', 'host: shop.example', '-X', 'POST', '-d', 'x=1', `${redirect}/cart/add?item=7&q=a%20b`])
  t.equal(res.status, 308, '308 keeps the method and body')
  t.equal(res.headers.location, `https://shop.example:${httpsPort}/cart/add?item=7&q=a%20b`)
  t.match(res.headers['cf-ray'], /^[0-9a-f]{16}-HPX$/)
  const access = await p.waitFor(l => l.msg === 'access' && l.refused === 'https_redirect')
  t.equal(access.status, 308)
  t.equal(access.path, '/cart/add')
  // Follow it: the TLS listener serves the same path, with HSTS.
  const followed = await curl(['--http2', '--cacert', pki.caFile, '--resolve', `shop.example:${httpsPort}:127.0.0.1`, String(res.headers.location)])
  t.equal(followed.status, 200)
  t.equal(followed.headers['strict-transport-security'], 'max-age=31536000')
})

t.test('the Host port is replaced; a bad Host is refused', async t => {
  const res = await curl(['-H', 'host: shop.example:80', `${redirect}/x`])
  t.equal(res.headers.location, `https://shop.example:${httpsPort}/x`)
  const bad = await curl(['-H', 'host: evil.example/..', `${redirect}/x`])
  t.equal(bad.status, 400)
  t.equal(bad.headers.location, undefined)
})

t.test('ACME HTTP-01: a token from the directory, nothing outside it', async t => {
  const ok = await curl([`${redirect}/.well-known/acme-challenge/tok-EN_123`])
  t.equal(ok.status, 200)
  t.equal(ok.body, 'tok-EN_123.thumbprint')
  for (const path of ['tok-missing', '..%2fsecret', '../secret', '%2e%2e/secret', '.hidden', 'a/b']) {
    const res = await curl(['--path-as-is', `${redirect}/.well-known/acme-challenge/${path}`])
    t.equal(res.status, 404, path)
    t.notMatch(res.body, 'outside the challenge directory')
  }
})
