// A real browser: headless Chromium loads the 522 page over HTTPS and HTTP/2, trusting
// only the test's certificate (by its public key's hash, --ignore-certificate-errors-spki-list),
// with the site's name mapped to loopback.

import { execFile } from 'node:child_process'
import { createHash, createPublicKey } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { synDropOrigin } from '../../src/lab/faults.js'
import { startProxy } from '../helpers.js'
import { makePki } from '../tls-support.js'

const pki = await makePki()
t.teardown(() => pki.remove())
const cert = await pki.issue('edge', ['shop.example'])
const origin = await synDropOrigin()
t.teardown(() => origin.close())
const proxy = await startProxy({
  routes: [{ origin: origin.url, connect_timeout: '300ms' }],
  listen: { tls: { cert: cert.certFile, key: cert.keyFile } }
})
t.teardown(() => proxy.close())

const spki = createHash('sha256').update(createPublicKey(cert.cert).export({ type: 'spki', format: 'der' })).digest('base64')

function chromium (url: string): Promise<string> {
  const profile = mkdtempSync(join(tmpdir(), 'hp-chromium-'))
  const args = [
    '--headless', '--disable-gpu', '--no-first-run', '--disable-extensions', `--user-data-dir=${profile}`,
    `--ignore-certificate-errors-spki-list=${spki}`, '--host-resolver-rules=MAP shop.example 127.0.0.1',
    ...(process.getuid?.() === 0 ? ['--no-sandbox'] : []),
    '--dump-dom', url
  ]
  return new Promise((resolve, reject) => {
    execFile('chromium', args, { timeout: 30_000, maxBuffer: 1 << 24 }, (err, stdout) => {
      rmSync(profile, { recursive: true, force: true })
      if (err !== null) reject(err)
      else resolve(stdout)
    })
  })
}

t.test('Chromium gets the 522 page over HTTPS, by HTTP/2', async t => {
  const dom = await chromium(`https://shop.example:${proxy.port}/checkout`)
  t.match(dom, /522/)
  t.match(dom, /Connection timed out/)
  const access = await proxy.waitForLog(l => l.msg === 'access' && l.path === '/checkout')
  t.equal(access.status, 522)
  t.equal(access.client.protocol, 'HTTP/2', 'the browser chose h2 by ALPN')
  t.match(access.client.tls_protocol, 'TLSv1.3')
  t.match(dom, access.ray_id, 'the page shows the ray id the log has')
})
