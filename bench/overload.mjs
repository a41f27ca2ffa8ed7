// Overload check (issue 6): 10,000 concurrent client connections held on a slow route
// while a healthy route is asked to answer. Reports the proxy's peak RSS, the healthy
// route's latency under the pile-up, and what the connections past the limit get.
//
//   node bench/overload.mjs [--connections 10000] [--limit 20000]
// Loopback only; bounded in time; stops every process it started.

import { spawn } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { healthyOrigin } from '../dist/lab/healthy-origin.js'

const { values } = parseArgs({ options: { connections: { type: 'string', default: '10000' }, limit: { type: 'string', default: '20000' } } })
const N = Number(values.connections)
const LIMIT = Number(values.limit)
const rss = pid => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024

const origin = await healthyOrigin()
const file = join(tmpdir(), `highproxy-overload-${process.pid}.yaml`)
writeFileSync(file, `routes:\n  - path: /slow\n    origin: ${origin.url}\n  - path: /\n    origin: ${origin.url}\nlimits: { max_connections: ${LIMIT} }\nadmin: { enabled: false }\nlog: { level: warn }\n`)
const port = 20000 + Math.floor(Math.random() * 10000)
const proxy = spawn('bash', ['-c', `ulimit -n $(ulimit -Hn) && exec node dist/cli.js --config ${file} --port ${port} --log-format json`], { stdio: ['ignore', 'ignore', 'inherit'] })
await new Promise(r => setTimeout(r, 1500))
const before = rss(proxy.pid)

const sockets = []
const statuses = {}
let peak = before
const sampler = setInterval(() => { peak = Math.max(peak, rss(proxy.pid)) }, 100)
const open = () => new Promise(resolve => {
  // Many visitors from many loopback addresses, as connections.max_per_client counts them.
  const s = net.connect({ host: '127.0.0.1', port, localAddress: `127.0.0.${2 + (sockets.length % 250)}` }, () => { s.write(`GET /slow?ms=30000 HTTP/1.1\r\nhost: load.test\r\n\r\n`); resolve() })
  s.on('data', d => { const st = String(d).split(' ')[1]; statuses[st] = (statuses[st] ?? 0) + 1 })
  s.on('error', () => { statuses.error = (statuses.error ?? 0) + 1; resolve() })
  sockets.push(s)
})
const t0 = performance.now()
for (let i = 0; i < N; i += 500) await Promise.all(Array.from({ length: Math.min(500, N - i) }, open))
const opened = performance.now() - t0
await new Promise(r => setTimeout(r, 500))
const healthy = []
for (let i = 0; i < 20; i++) {
  const s0 = performance.now()
  const res = await fetch(`http://127.0.0.1:${port}/echo`)
  await res.text()
  healthy.push({ status: res.status, ms: performance.now() - s0 })
}
const during = rss(proxy.pid)
clearInterval(sampler)
for (const s of sockets) s.destroy()
proxy.kill('SIGKILL')
await origin.close()
healthy.sort((a, b) => a.ms - b.ms)
console.log(JSON.stringify({
  connections: N,
  opened_ms: Math.round(opened),
  rss_mib: { before: +before.toFixed(1), with_connections: +during.toFixed(1), peak: +peak.toFixed(1) },
  rss_per_connection_kib: +(((during - before) * 1024) / N).toFixed(2),
  healthy_route: { statuses: [...new Set(healthy.map(h => h.status))], median_ms: +healthy[10].ms.toFixed(1), max_ms: +healthy[19].ms.toFixed(1) },
  early_answers_on_held_connections: statuses
}, null, 2))
process.exit(0)
