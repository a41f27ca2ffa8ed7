// Pebble and the proxy together, for the ACME tests (test/e2e/acme*.test.ts): one
// Pebble per test (test/pebble.ts), an origin that names the path it saw, the proxy as a
// child process on the ports Pebble validates, and its config file.

import { mkdirSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import type { Test } from 'tap'
import { start, type Running } from './cli-process.js'
import { get, type LogLine } from './helpers.js'
import { freePort, startPebble, type Pebble } from './pebble.js'
import { handshake } from './tls-support.js'

export const DOMAIN = 'shop.hpx.test'

/** An origin that answers with the path it saw, until the test file ends. */
export async function startOrigin (t: Test): Promise<string> {
  const origin = http.createServer((req, res) => { res.end(`origin saw ${req.url ?? ''}`) })
  await new Promise<void>(resolve => origin.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>(resolve => origin.close(() => resolve())))
  return `http://127.0.0.1:${(origin.address() as AddressInfo).port}`
}

export interface Setup { originUrl: string,  dir: string, pebble: Pebble, httpPort: number, tlsPort: number, root: string, storage: string }

export async function setup (t: Test, originUrl: string, opts: { nonceReject?: number, validateHttpAt?: number, name?: string, base?: string, eab?: Record<string, string> } = {}): Promise<Setup> {
  const dir = join(opts.base ?? t.testdir({}), opts.name ?? 'ca')
  mkdirSync(dir)
  const [httpPort, tlsPort] = [await freePort(), await freePort()]
  const pebble = await startPebble(dir, { httpPort: opts.validateHttpAt ?? httpPort, tlsPort, nonceReject: opts.nonceReject, eab: opts.eab })
  t.teardown(() => pebble.close())
  const root = join(dir, 'pebble-root.pem')
  writeFileSync(root, await pebble.root())
  return { originUrl, dir, pebble, httpPort, tlsPort, root, storage: join(dir, 'acme') }
}

/** The proxy's config file: ACME for `domains` against this Pebble, on the ports it validates. */
export function configFile (s: Setup, acme: Record<string, unknown>, name = 'config.yaml'): string {
  const file = join(s.dir, name)
  writeFileSync(file, JSON.stringify({
    origin: s.originUrl,
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
export function proxy (t: Test, s: Setup, args: string[]): Running {
  const p = start(['--port', String(s.tlsPort), ...args])
  t.teardown(async () => {
    if (p.child.exitCode === null && p.child.signalCode === null) {
      p.child.kill('SIGTERM')
      await p.exited
    }
  })
  return p
}

export const msg = (m: string) => (l: LogLine): boolean => l.msg === m
export const https = (s: Setup, extra: string[] = []): string[] =>
  ['--cacert', s.root, '--resolve', `${DOMAIN}:${s.tlsPort}:127.0.0.1`, ...extra, `https://${DOMAIN}:${s.tlsPort}/hello`]

export const fingerprintOf = async (s: Setup): Promise<string> =>
  (await handshake(s.tlsPort, { servername: DOMAIN, ca: await s.pebble.root(), ALPNProtocols: ['h2'] })).fingerprint

export const metric = async (p: Running, name: string): Promise<string[]> => {
  const listening = await p.waitFor(msg('highproxy listening'), 30_000)
  const text = (await get(`${String(listening.admin)}/metrics`)).body
  return text.split('\n').filter(l => l.startsWith(name))
}
