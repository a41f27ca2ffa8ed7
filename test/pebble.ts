// Let's Encrypt's test CA on loopback, for the ACME tests: Debian's `pebble` and its DNS
// companion `pebble-challtestsrv` (answering 127.0.0.1 for every name), each bound to
// 127.0.0.1 on ports picked now. Pebble validates http-01 on `httpPort` and tls-alpn-01
// on `tlsPort`: the proxy's own ports, so they are chosen before the proxy starts. Its
// ACME API is HTTPS with a certificate made here (the proxy trusts it by directory_ca);
// the roots it issues from are read from its management API.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { Agent, request } from 'undici'
import { selfSignedCertificate } from '../src/lab/certificates.js'

export const hasPebble = spawnSync('sh', ['-c', 'command -v pebble && command -v pebble-challtestsrv']).status === 0
export const noPebble = hasPebble ? false : 'pebble is not installed (Debian: apt-get install pebble; .ci/run does)'

/** A port free now on 127.0.0.1 (TCP; the DNS server binds UDP on it too). */
export async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as { port: number }).port
  await new Promise<void>(resolve => server.close(() => resolve()))
  return port
}

export interface PebbleOptions {
  /** The proxy's plain-HTTP (redirect) port, where http-01 is validated. */
  httpPort: number
  /** The proxy's TLS port, where tls-alpn-01 is validated. */
  tlsPort: number
  /** Percent of good nonces refused (PEBBLE_WFE_NONCEREJECT); default 0. */
  nonceReject?: number
  /** Pebble's extra environment. */
  env?: Record<string, string>
  /** externalAccountMACKeys: EAB required when given. */
  eab?: Record<string, string>
}

export interface Pebble {
  directory: string
  /** PEM file of the certificate of Pebble's own API (directory_ca). */
  apiCa: string
  /** PEM of the root that issues the proxy's certificates. */
  root: () => Promise<string>
  /** Pebble's log lines so far. */
  logs: string[]
  /** Orders Pebble created (its "order ... created" log lines... counted from new-order requests). */
  orders: () => number
  close: () => Promise<void>
}

/**
 * The Go programs run under a shell that kills them when its stdin closes: that pipe's
 * only writer is this process, so a test file killed at its timeout leaves no CA behind.
 */
const TETHER = '"$@" & p=$!; read _; kill $p 2>/dev/null; wait $p'

function run (command: string, args: string[], env: Record<string, string>, logs: string[]): ChildProcess {
  const child = spawn('sh', ['-c', TETHER, 'sh', command, ...args], { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] })
  const keep = (d: Buffer): void => { logs.push(...d.toString().split('\n').filter(l => l !== '')) }
  child.stdout?.on('data', keep)
  child.stderr?.on('data', keep)
  return child
}

async function until (check: () => boolean | Promise<boolean>, what: string, ms = 15_000): Promise<void> {
  const end = Date.now() + ms
  while (Date.now() < end) {
    if (await check()) return
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  throw new Error(`${what} not seen within ${ms} ms`)
}

export async function startPebble (dir: string, opts: PebbleOptions): Promise<Pebble> {
  const api = await selfSignedCertificate()
  const certFile = join(dir, 'pebble-api.pem')
  const keyFile = join(dir, 'pebble-api.key')
  writeFileSync(certFile, api.cert)
  writeFileSync(keyFile, api.key)
  const [acmePort, managementPort, dnsPort, challMgmtPort] = [await freePort(), await freePort(), await freePort(), await freePort()]
  const configFile = join(dir, 'pebble-config.json')
  writeFileSync(configFile, JSON.stringify({
    pebble: {
      listenAddress: `127.0.0.1:${acmePort}`,
      managementListenAddress: `127.0.0.1:${managementPort}`,
      certificate: certFile,
      privateKey: keyFile,
      httpPort: opts.httpPort,
      tlsPort: opts.tlsPort,
      ocspResponderURL: '',
      externalAccountBindingRequired: opts.eab !== undefined,
      ...(opts.eab === undefined ? {} : { externalAccountMACKeys: opts.eab })
    }
  }))
  const dnsLogs: string[] = []
  const dns = run('pebble-challtestsrv', [
    '-dns01', `127.0.0.1:${dnsPort}`, '-http01', '', '-https01', '', '-tlsalpn01', '',
    '-management', `127.0.0.1:${challMgmtPort}`, '-defaultIPv4', '127.0.0.1', '-defaultIPv6', ''
  ], {}, dnsLogs)
  const logs: string[] = []
  const pebble = run('pebble', ['-config', configFile, '-dnsserver', `127.0.0.1:${dnsPort}`], {
    PEBBLE_VA_NOSLEEP: '1',
    PEBBLE_WFE_NONCEREJECT: String(opts.nonceReject ?? 0),
    PEBBLE_AUTHZREUSE: '0',
    ...opts.env
  }, logs)
  const stop = async (): Promise<void> => {
    for (const child of [pebble, dns]) {
      if (child.exitCode !== null || child.signalCode !== null) continue
      const gone = new Promise(resolve => child.once('exit', resolve))
      child.stdin?.end()
      await gone
    }
  }
  const agent = new Agent({ connect: { ca: api.cert } })
  try {
    await until(() => logs.some(l => l.includes('ACME directory available')), 'pebble\'s "ACME directory available"')
    await until(() => dnsLogs.some(l => /dns/i.test(l)), 'pebble-challtestsrv\'s DNS server')
  } catch (err) {
    await stop()
    throw new Error(`${(err as Error).message}\npebble: ${logs.join('\n')}\nchalltestsrv: ${dnsLogs.join('\n')}`)
  }
  return {
    directory: `https://127.0.0.1:${acmePort}/dir`,
    apiCa: certFile,
    logs,
    root: async () => {
      // Pebble logs its listeners before they all accept: a refused first try is retried.
      for (let i = 0; ; i++) {
        try {
          const res = await request(`https://127.0.0.1:${managementPort}/roots/0`, { dispatcher: agent })
          return await res.body.text()
        } catch (err) {
          if (i >= 50 || (err as NodeJS.ErrnoException).code !== 'ECONNREFUSED') throw err
          await new Promise(resolve => setTimeout(resolve, 100))
        }
      }
    },
    orders: () => logs.filter(l => /POST \/order-plz/.test(l)).length,
    close: async () => { await agent.close(); await stop() }
  }
}
