// The TLS section: what terminating TLS and speaking HTTP/2 cost, highproxy beside the
// Node floor and nginx configured the same way (one worker, the same certificate,
// keep-alive upstream), with h2load (nghttp2-client) as the load generator for every
// row, plain ones included, so the client side is the same program throughout.
//
// Rows, each in interleaved rounds, CPU per request of the proxy's own processes:
//   plain h1        HTTP/1.1 keep-alive, no TLS: the baseline TLS is added to
//   TLS h1          HTTP/1.1 keep-alive over TLS
//   h2              HTTP/2, 10 connections × 10 streams multiplexed on each
//   new TLS conn    one request per connection, each a full handshake (no resumption)

import { execFile } from 'node:child_process'
import { cpuWindow } from './cpu.mjs'
import { HOST } from './procs.mjs'
import { benchCertificate, highproxyHelp, startHighproxy, startNginxProxy, startNodeServer, which } from './servers.mjs'

export const TLS_MODES = [
  { key: 'plain', label: 'plain HTTP/1.1 keep-alive', tls: false },
  { key: 'h1', label: 'HTTP/1.1 over TLS, keep-alive', tls: true },
  { key: 'h2', label: 'HTTP/2, 10 conns × 10 streams', tls: true },
  { key: 'handshake', label: 'new TLS connection per request', tls: true }
]

/**
 * h2load's arguments for one mode: timed runs of `seconds`, or with `seconds` null (the
 * dry run) a few requests only — h2load's timed mode can hang when its duration ends
 * while TLS handshakes are still under way.
 */
export function h2loadArgs (mode, port, seconds, handshakes) {
  const scheme = mode.tls ? 'https' : 'http'
  const url = `${scheme}://${HOST}:${port}/`
  const span = seconds === null ? ['-n', '4'] : ['-D', `${Math.round(seconds * 1000)}ms`] // whole units only
  switch (mode.key) {
    case 'plain':
    case 'h1': return ['--h1', '-c', seconds === null ? '2' : '50', ...span, url]
    case 'h2': return ['-c', seconds === null ? '1' : '10', '-m', seconds === null ? '2' : '10', ...span, url]
    // One request per client, clients created at a steady pace (500/s): every request is a new connection.
    case 'handshake': return ['--h1', '-c', String(handshakes), '-n', String(handshakes), '-r', String(Math.min(25, handshakes)), '--rate-period', '50ms', url]
  }
  throw new Error(`unknown mode ${mode.key}`)
}

/** Runs h2load; resolves { requests, succeeded, failed, rps }. */
export function h2load (bin, args) {
  return new Promise((resolve, reject) => {
    execFile(bin, args, { encoding: 'utf8', timeout: 120_000, maxBuffer: 4 << 20 }, (err, stdout, stderr) => {
      const text = `${stdout}\n${stderr}`
      const reqs = /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored/.exec(text)
      const fin = /finished in ([\d.]+)(?:ms|s), ([\d.]+) req\/s/.exec(text)
      if (reqs === null || fin === null) { reject(new Error(`h2load ${args.join(' ')}: ${err?.message ?? ''} ${text.slice(-400)}`)); return }
      resolve({ requests: Number(reqs[4]), failed: Number(reqs[5]) + Number(reqs[6]), rps: Number(fin[2]) })
    })
  })
}

const median = xs => {
  const v = xs.filter(x => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b)
  if (v.length === 0) return null
  return v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2
}

/**
 * The section: highproxy (and nginx when installed) each started twice, plain and with
 * TLS, from the same origin. `extra`: arguments every highproxy start gets.
 */
export async function tlsSection ({ origin, tmp, rounds, seconds, handshakes, log, dryRun, extra }) {
  const h2loadBin = which('h2load')
  if (h2loadBin === null) return { available: false, note: 'h2load (Debian nghttp2-client) is not installed: TLS section skipped' }
  if (!/--tls-cert\b/.test(await highproxyHelp())) return { available: false, note: '`highproxy --help` lists no --tls-cert flag: TLS section skipped' }
  const tls = benchCertificate(tmp)
  const args = ['--origin', origin.url]
  const proxies = [{
    name: 'highproxy',
    plain: await startHighproxy('highproxy (TLS section, plain)', args, { extra }),
    tls: await startHighproxy('highproxy (TLS)', args, { extra, tls })
  }]
  // The Node floor (bench/servers/node-floor.mjs, access lines on as highproxy's): what
  // Node's own TLS and HTTP/2 cost before any proxy of ours.
  proxies.push({
    name: 'node floor',
    plain: await startNodeServer('node floor (TLS section, plain)', 'node-floor.mjs', origin.url, ['--log']),
    tls: await startNodeServer('node floor (TLS)', 'node-floor.mjs', origin.url, ['--log'], { tls })
  })
  const nginx = which('nginx')
  if (nginx !== null) {
    proxies.push({ name: 'nginx', plain: await startNginxProxy(nginx, origin.port, tmp), tls: await startNginxProxy(nginx, origin.port, tmp, { tls }) })
  }
  const cells = new Map()
  const runOne = async (p, mode, secs, count) => {
    const target = mode.tls ? p.tls : p.plain
    const window = cpuWindow([target.proc.pid])
    const res = await h2load(h2loadBin, h2loadArgs(mode, target.port, secs, count))
    const [cpu] = window()
    return { ...res, cpuUs: res.requests > 0 ? cpu / res.requests : null }
  }
  try {
    if (dryRun) {
      for (const p of proxies) for (const mode of TLS_MODES) await runOne(p, mode, null, 4)
      return { available: true, dryRun: true, rows: [] }
    }
    // Warm each target and mode once (JIT, pools, session caches) before anything counts.
    for (const p of proxies) for (const mode of TLS_MODES) await runOne(p, mode, Math.min(2, seconds), Math.min(500, handshakes))
    for (let r = 0; r < rounds; r++) {
      for (const mode of TLS_MODES) {
        for (const p of proxies) {
          const m = await runOne(p, mode, seconds, handshakes)
          const key = `${p.name}/${mode.key}`
          cells.set(key, [...(cells.get(key) ?? []), m])
          log(`  tls round ${r + 1}/${rounds} ${p.name} ${mode.key}: ${Math.round(m.rps)} req/s, ${m.cpuUs?.toFixed(1)} µs CPU/req${m.failed ? `, ${m.failed} failed` : ''}`)
        }
      }
    }
  } finally {
    for (const p of proxies) { await p.plain.proc.stop(); await p.tls.proc.stop() }
  }
  const rows = []
  for (const p of proxies) {
    for (const mode of TLS_MODES) {
      const ms = cells.get(`${p.name}/${mode.key}`) ?? []
      rows.push({ proxy: p.name, mode: mode.key, label: mode.label, rps: median(ms.map(m => m.rps)), cpuUs: median(ms.map(m => m.cpuUs)), failed: ms.reduce((n, m) => n + m.failed, 0), rounds: ms })
    }
  }
  return { available: true, rows, handshakes }
}

/** The issue's three TLS targets from the rows (null where a row is missing). */
export function tlsTargets (tls) {
  const cpu = (proxy, mode) => tls?.rows?.find(r => r.proxy === proxy && r.mode === mode)?.cpuUs ?? null
  const added = proxy => cpu(proxy, 'h1') !== null && cpu(proxy, 'plain') !== null ? cpu(proxy, 'h1') - cpu(proxy, 'plain') : null
  return {
    addedHighproxy: added('highproxy'),
    addedNginx: added('nginx'),
    h2: cpu('highproxy', 'h2'),
    h1: cpu('highproxy', 'h1'),
    handshakeHighproxy: cpu('highproxy', 'handshake'),
    handshakeNginx: cpu('nginx', 'handshake'),
    handshakeFloor: cpu('node floor', 'handshake')
  }
}
