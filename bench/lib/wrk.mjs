// Throughput with wrk (`wrk -t1 -c50`) when it is installed. It is one C thread that
// leaves more of the 2 cores to the target than autocannon in the harness process, so
// saturation rows say more about the proxy than about the generator.
//
// wrk's -d takes whole seconds only: it is started with a longer -d and sent SIGINT
// after `seconds`, which makes it stop and report as at the end of its duration
// (its runtime is measured, so req/s stays right). A Lua done() hook prints the exact
// counts and µs percentiles as one JSON line.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { HOST, start } from './procs.mjs'

const SCRIPT = `done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"p50":%.1f,"p99":%.1f,"p999":%.1f,"mean":%.1f}\\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9), latency.mean))
end
`

let scriptFile = null
function script () {
  if (scriptFile === null) {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'highproxy-bench-wrk-'))
    scriptFile = path.join(dir, 'done.lua')
    writeFileSync(scriptFile, SCRIPT)
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }))
  }
  return scriptFile
}

/**
 * `wrk` at `bin` against port/path for `seconds` with `connections` connections.
 * Resolves the shape of load(): { rps, p50, p99, p999, mean (ms), requests, statuses,
 * errors, timeouts, non2xx, seconds }. `statuses` is { '2xx-3xx': n, '4xx-5xx': n }:
 * wrk counts answers ≥ 400 without telling them apart.
 */
export async function wrk (bin, { port, path: urlPath = '/', headers = {}, connections = 50, seconds }) {
  const args = ['-t1', `-c${connections}`, `-d${Math.ceil(seconds) + 5}s`, '--timeout', '10s', '-s', script()]
  for (const [k, v] of Object.entries(headers)) args.push('-H', `${k}: ${v}`)
  args.push(`http://${HOST}:${port}${urlPath}`)
  const proc = start('wrk', bin, args, { stdout: 'pipe', listed: false })
  let out = ''
  proc.child.stdout.on('data', c => { out += c.toString() })
  const timer = setTimeout(() => proc.child.kill('SIGINT'), seconds * 1000)
  const { code, signal } = await proc.exited
  clearTimeout(timer)
  const line = /^WRKJSON (.*)$/m.exec(out)
  if (line === null) throw new Error(`wrk ended (${code ?? signal}) without a result:\n${out.slice(-1000)}${proc.stderr}`)
  const r = JSON.parse(line[1])
  const secs = r.duration_us / 1e6
  const ms = us => us / 1000
  return {
    rps: r.requests / secs,
    p50: ms(r.p50),
    p99: ms(r.p99),
    p999: ms(r.p999),
    mean: ms(r.mean),
    requests: r.requests,
    statuses: { '2xx-3xx': r.requests - r.status, '4xx-5xx': r.status },
    errors: r.connect + r.read + r.write,
    timeouts: r.timeout,
    non2xx: r.status,
    seconds: secs
  }
}
