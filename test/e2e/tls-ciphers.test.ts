// The TLS front door offers Mozilla's "intermediate" profile by default: TLS 1.3, and
// TLS 1.2 with forward-secret AEAD suites only. Node's own default list also offered the
// TLS 1.2 CBC suites scanners flag (LUCKY13). Each suite is offered alone, by a real
// client: OpenSSL's s_client, and Node's TLS client for the whole list.

import { execFile } from 'node:child_process'
import tls from 'node:tls'
import t from 'tap'
import { INTERMEDIATE_CIPHERS } from '../../src/config/schema.js'
import { resolve, validate } from '../../src/config/load.js'
import { healthyOrigin } from '../../src/lab/healthy-origin.js'
import { startProxy } from '../helpers.js'
import { makePki } from '../tls-support.js'

const pki = await makePki()
t.teardown(() => pki.remove())
const main = await pki.issue('main', ['localhost'])
const origin = await healthyOrigin()
t.teardown(() => origin.close())

/** The suite negotiated when a client offers only `cipher` over TLS 1.2; null: refused. */
function tls12With (port: number, cipher: string): Promise<string | null> {
  return new Promise(resolve => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca: pki.ca.cert, ciphers: cipher, maxVersion: 'TLSv1.2' }, () => {
      const name = socket.getCipher().name
      socket.end()
      resolve(name)
    })
    socket.on('error', () => resolve(null))
  })
}

/** OpenSSL's s_client offering one TLS 1.2 suite: true when the handshake completed. */
function sClient (port: number, cipher: string): Promise<{ ok: boolean, out: string }> {
  return new Promise(resolve => {
    const child = execFile('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', 'localhost', '-tls1_2', '-cipher', cipher],
      { timeout: 10_000 }, (err, stdout, stderr) => resolve({ ok: err === null && /Cipher is (?!\(NONE\))/.test(stdout), out: stdout + stderr }))
    child.stdin?.end()
  })
}

// The test certificates have EC keys (src/lab/certificates.ts): the ECDSA suites are the ones that apply.
const CBC = ['ECDHE-ECDSA-AES128-SHA', 'ECDHE-ECDSA-AES256-SHA', 'ECDHE-ECDSA-AES128-SHA256', 'ECDHE-ECDSA-AES256-SHA384']
const AEAD = ['ECDHE-ECDSA-AES128-GCM-SHA256', 'ECDHE-ECDSA-AES256-GCM-SHA384', 'ECDHE-ECDSA-CHACHA20-POLY1305']

t.test('default: TLS 1.2 AEAD suites with forward secrecy only, and TLS 1.3', async t => {
  const proxy = await startProxy({ origin: origin.url, listen: { tls: { cert: main.certFile, key: main.keyFile } } })
  t.teardown(() => proxy.close())
  t.equal(proxy.config.front?.ciphers, INTERMEDIATE_CIPHERS)
  for (const cipher of AEAD) t.equal(await tls12With(proxy.port, cipher), cipher, `${cipher} is offered`)
  for (const cipher of CBC) t.equal(await tls12With(proxy.port, cipher), null, `${cipher} is refused`)

  const cbc = await sClient(proxy.port, 'ECDHE-ECDSA-AES128-SHA')
  t.notOk(cbc.ok, 'openssl s_client -tls1_2 -cipher ECDHE-ECDSA-AES128-SHA: no handshake')
  const gcm = await sClient(proxy.port, 'ECDHE-ECDSA-AES128-GCM-SHA256')
  t.ok(gcm.ok, 'openssl s_client -tls1_2 -cipher ECDHE-ECDSA-AES128-GCM-SHA256: handshake')

  for (const suite of ['TLS_AES_128_GCM_SHA256', 'TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256']) {
    const name = await new Promise<string | null>(resolve => {
      const socket = tls.connect({ host: '127.0.0.1', port: proxy.port, servername: 'localhost', ca: pki.ca.cert, ciphers: suite, minVersion: 'TLSv1.3' }, () => {
        const got = socket.getCipher().name
        socket.end()
        resolve(got)
      })
      socket.on('error', () => resolve(null))
    })
    t.equal(name, suite, `TLS 1.3 ${suite}`)
  }
})

t.test('listen.tls.ciphers changes the list; a list OpenSSL matches nothing in is a config error', async t => {
  const proxy = await startProxy({ origin: origin.url, listen: { tls: { cert: main.certFile, key: main.keyFile, ciphers: 'ECDHE-ECDSA-AES128-SHA:TLS_AES_128_GCM_SHA256' } } })
  t.teardown(() => proxy.close())
  t.equal(await tls12With(proxy.port, 'ECDHE-ECDSA-AES128-SHA'), 'ECDHE-ECDSA-AES128-SHA', 'the CBC suite asked for is offered')
  t.equal(await tls12With(proxy.port, 'ECDHE-ECDSA-AES128-GCM-SHA256'), null, 'and only what was asked for')

  t.throws(() => resolve(validate({ origin: origin.url, listen: { tls: { cert: main.certFile, key: main.keyFile, ciphers: 'NOT-A-CIPHER' } } }), false),
    { code: 'HPX_ERR_CONFIG', key: 'listen.tls.ciphers', message: /listen\.tls\.ciphers.*NOT-A-CIPHER/ })
})
