// The Toxiproxy section: what a `highproxy toxiproxy` proxy with no toxic costs, against
// the floor of a TCP proxy in Node (bench/servers/tcp-pipe.mjs: accept, dial, pipe) and
// against no proxy at all, in the same run, on the same TCP echo upstream.
//
// Two workloads, each in interleaved rounds:
//   64 KiB echo   4 persistent connections, each writing 64 KiB and waiting for it back
//   1 MiB         2 at a time: a new connection, 1 MiB written and read back, closed
// Readings: MiB echoed per second, the proxy process's CPU per MiB echoed (each MiB
// crosses the proxy twice: up and back), and the round trip's median and p99 with the
// direct round trip of the same round subtracted (the latency the proxy adds). With
// TOXIPROXY_SERVER naming a Toxiproxy server binary, Shopify's Toxiproxy is a row too.

import net from 'node:net'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { cpuWindow } from './cpu.mjs'
import { HOST, freePort, start } from './procs.mjs'
import { CLI } from './servers.mjs'

const SERVERS = fileURLToPath(new URL('../servers/', import.meta.url))
const MiB = 2 ** 20

export const TOXIPROXY_CASES = [
  { key: 'echo64k', label: '64 KiB echo, 4 connections', bytes: 64 * 1024, connections: 4, fresh: false },
  { key: 'transfer1m', label: '1 MiB each way, new connection each, 2 at a time', bytes: MiB, connections: 2, fresh: true }
]

const median = xs => {
  const v = xs.filter(x => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b)
  if (v.length === 0) return null
  return v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2
}
const quantile = (xs, q) => {
  const v = [...xs].sort((a, b) => a - b)
  return v.length === 0 ? null : v[Math.min(v.length - 1, Math.floor(q * v.length))]
}

/** Resolves when a TCP connect to `port` succeeds (the child is listening). */
async function waitTcp (proc, port, deadlineMs = 15_000) {
  const until = Date.now() + deadlineMs
  for (;;) {
    const ok = await new Promise(resolve => {
      const s = net.connect({ host: HOST, port }, () => { s.destroy(); resolve(true) })
      s.on('error', () => resolve(false))
    })
    if (ok) return
    if (!proc.running) throw new Error(`${proc.name} exited: ${proc.stderr.slice(-400)}`)
    if (Date.now() > until) throw new Error(`${proc.name}: not listening on ${port}`)
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}

/** One socket: write `bytes`, wait until as many came back; resolves the round trip in ms. */
function echoOnce (socket, payload) {
  return new Promise((resolve, reject) => {
    let got = 0
    const t0 = performance.now()
    const onData = d => {
      got += d.length
      if (got >= payload.length) { socket.off('data', onData); socket.off('error', reject); resolve(performance.now() - t0) }
    }
    socket.on('data', onData)
    socket.once('error', reject)
    socket.write(payload)
  })
}

const connect = port => new Promise((resolve, reject) => {
  const s = net.connect({ host: HOST, port, noDelay: true }, () => resolve(s))
  s.once('error', reject)
})

/** Runs a case against `port` for `seconds` (or once each with `once`): round trips and bytes echoed. */
export async function runCase (port, c, seconds, once = false) {
  const payload = Buffer.alloc(c.bytes, 'x')
  const times = []
  let bytes = 0
  const until = performance.now() + seconds * 1000
  await Promise.all(Array.from({ length: c.connections }, async () => {
    let socket = c.fresh ? null : await connect(port)
    do {
      if (c.fresh) socket = await connect(port)
      const t0 = performance.now()
      await echoOnce(socket, payload)
      times.push(performance.now() - t0)
      bytes += c.bytes
      if (c.fresh) socket.destroy()
    } while (!once && performance.now() < until)
    if (!c.fresh) socket.destroy()
  }))
  return { times, bytes }
}

export async function toxiproxySection ({ rounds, seconds, log, dryRun }) {
  const echoPort = await freePort()
  const echo = start('tcp echo', process.execPath, [path.join(SERVERS, 'tcp-echo.mjs'), String(echoPort)])
  const pipePort = await freePort()
  const pipe = start('node net+pipe', process.execPath, [path.join(SERVERS, 'tcp-pipe.mjs'), String(pipePort), String(echoPort)])
  const apiPort = await freePort()
  const toxi = start('highproxy toxiproxy', process.execPath, [CLI, 'toxiproxy', '--host', HOST, '--port', String(apiPort)])
  // Shopify's own Toxiproxy as one more row, when a server binary is given (docs/toxiproxy.md
  // says how to build one): "at Toxiproxy's speed or better" measured, not assumed.
  const refBin = process.env.TOXIPROXY_SERVER || null
  const refPort = refBin === null ? null : await freePort()
  const ref = refBin === null ? null : start('Toxiproxy (Go)', refBin, ['-host', HOST, '-port', String(refPort)])
  const proxyOn = async (api) => {
    const port = await freePort()
    const res = await fetch(`http://${HOST}:${api}/proxies`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'bench', listen: `${HOST}:${port}`, upstream: `${HOST}:${echoPort}` })
    })
    if (res.status !== 201) throw new Error(`POST /proxies answered ${res.status}: ${await res.text()}`)
    return port
  }
  try {
    await Promise.all([waitTcp(echo, echoPort), waitTcp(pipe, pipePort), waitTcp(toxi, apiPort), ...(ref === null ? [] : [waitTcp(ref, refPort)])])
    const targets = [
      { name: 'direct (echo upstream)', kind: 'direct', port: echoPort, proc: null },
      { name: 'node net + pipe', kind: 'floor', port: pipePort, proc: pipe },
      { name: 'highproxy toxiproxy, no toxic', kind: 'toxiproxy', port: await proxyOn(apiPort), proc: toxi },
      ...(ref === null ? [] : [{ name: 'Toxiproxy (Go), no toxic', kind: 'reference', port: await proxyOn(refPort), proc: ref }])
    ]
    // Every target echoes the same bytes before it is measured.
    for (const t of targets) for (const c of TOXIPROXY_CASES) await runCase(t.port, c, 0, true)
    log(`toxiproxy: ${targets.map(t => `${t.name} on ${t.port}`).join(', ')}${ref === null ? ' (set TOXIPROXY_SERVER for a Toxiproxy row)' : ''}`)
    const cases = []
    for (const c of TOXIPROXY_CASES) {
      const perTarget = targets.map(() => [])
      if (!dryRun) {
        for (const t of targets) await runCase(t.port, c, Math.min(1, seconds)) // warm-up
        for (let r = 0; r < rounds; r++) {
          for (const [i, t] of targets.entries()) {
            const window = t.proc === null ? null : cpuWindow([t.proc.pid])
            const t0 = performance.now()
            const m = await runCase(t.port, c, seconds)
            const elapsed = (performance.now() - t0) / 1000
            const cpuUs = window === null ? null : window()[0]
            const mib = m.bytes / MiB
            perTarget[i].push({ mibPerS: mib / elapsed, cpuUsPerMiB: cpuUs === null ? null : cpuUs / mib, p50: median(m.times), p99: quantile(m.times, 0.99), exchanges: m.times.length })
            const last = perTarget[i].at(-1)
            log(`  ${c.key} round ${r + 1}/${rounds} ${t.name}: ${last.mibPerS.toFixed(0)} MiB/s, ${last.cpuUsPerMiB?.toFixed(0) ?? '—'} µs CPU/MiB, p50 ${last.p50?.toFixed(2)} ms`)
          }
        }
      }
      const direct = perTarget[0]
      const floor = perTarget[1]
      const rows = targets.map((t, i) => {
        const rs = perTarget[i]
        const col = k => rs.map(x => x[k])
        return {
          target: t.name,
          kind: t.kind,
          mibPerS: median(col('mibPerS')),
          cpuUsPerMiB: median(col('cpuUsPerMiB')),
          p50: median(col('p50')),
          p99: median(col('p99')),
          // Paired round by round with the floor's, and the latency with the direct round trip's.
          xPipe: t.kind === 'toxiproxy' || t.kind === 'reference' ? median(rs.map((x, r) => x.cpuUsPerMiB == null || !floor[r]?.cpuUsPerMiB ? null : x.cpuUsPerMiB / floor[r].cpuUsPerMiB)) : null,
          p50Added: t.kind === 'direct' ? null : median(rs.map((x, r) => direct[r] == null ? null : x.p50 - direct[r].p50)),
          p99Added: t.kind === 'direct' ? null : median(rs.map((x, r) => direct[r] == null ? null : x.p99 - direct[r].p99)),
          rounds: rs
        }
      })
      cases.push({ case: c.key, label: c.label, rows })
    }
    return { available: true, rounds, seconds, cases }
  } finally {
    await Promise.all([toxi.stop(), pipe.stop(), echo.stop(), ref?.stop()])
  }
}

const DASH = '—'
const n = (v, d = 0) => v == null || !Number.isFinite(v) ? DASH : v.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d })
const signed = v => v == null || !Number.isFinite(v) ? DASH : `${v >= 0 ? '+' : ''}${v.toFixed(3)}`

export function toxiproxyTable (s) {
  return {
    title: `7. Toxiproxy-compatible API: a proxy with no toxic vs a bare Node net + pipe proxy, TCP echo upstream (median of ${s.rounds} interleaved rounds of ${s.seconds} s; × pipe = CPU/MiB over the pipe's, paired by round; added = round trip minus the direct one of the same round)`,
    header: ['case', 'target', 'MiB/s', 'CPU µs/MiB', '× pipe', 'p50 ms', 'p99 ms', 'p50 added ms', 'p99 added ms'],
    rows: s.cases.flatMap(c => c.rows.map(r => [c.label, r.target, n(r.mibPerS), n(r.cpuUsPerMiB), r.xPipe == null ? DASH : `${r.xPipe.toFixed(2)}×`,
      n(r.p50, 3), n(r.p99, 3), signed(r.p50Added), signed(r.p99Added)]))
  }
}

/** The issue's target: ≤ 1.2× the pipe's CPU per MiB, in each case. */
export function toxiproxyTargets (s, add) {
  for (const c of s.cases) {
    const r = c.rows.find(x => x.kind === 'toxiproxy')
    if (r === undefined || r.rounds.length === 0) continue
    add(`toxiproxy (issue 27), ${c.label}: CPU per MiB ≤ 1.2× a bare net + pipe`, `${r.xPipe == null ? DASH : `${r.xPipe.toFixed(2)}×`} (${n(r.cpuUsPerMiB)} µs/MiB)`, r.xPipe == null ? null : r.xPipe <= 1.2)
  }
}
