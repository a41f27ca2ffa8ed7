// Certificates obtained and renewed by highproxy itself, against a real ACME server:
// Debian's Pebble on loopback (test/pebble.ts), its validations pointed at the proxy's
// own ports, its DNS answering 127.0.0.1 for the test names. Each test is one proxy run
// (the CLI as a child process) with its own Pebble, so each starts from an empty CA.

import { statSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { start, type Running } from '../cli-process.js'
import { get, type LogLine } from '../helpers.js'
import { freePort, noPebble, startPebble, type Pebble } from '../pebble.js'
import { curl, handshake } from '../tls-support.js'

const DOMAIN = 'shop.hpx.test'

const origin = http.createServer((req, res) => { res.end(`origin saw ${req.url ?? ''}`) })
await new Promise<void>(resolve => origin.listen(0, '127.0.0.1', resolve))
t.teardown(() => new Promise<void>(resolve => origin.close(() => resolve())))
const originUrl = `http://127.0.0.1:${(origin.address() as AddressInfo).port}`

interface Setup { dir: string, pebble: Pebble, httpPort: number, tlsPort: number, root: string, storage: string }

async function setup (t: Tap.Test, opts: { nonceReject?: number } = {}): Promise<Setup> {
  const dir = t.testdir({})
  const [httpPort, tlsPort] = [await freePort(), await freePort()]
  const pebble = await startPebble(dir, { httpPort, tlsPort, ...opts })
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
function proxy (t: Tap.Test, s: Setup, args: string[]): Running {
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
