#!/usr/bin/env node
// `npm run soak`: minutes of mixed healthy / 521 / 522 / 524 traffic at a moderate rate
// through a real proxy process, then the verdict: no lost response, one access line per
// request, and RSS and open file descriptors flat after warm-up.
//
//   npm run soak                        10 minutes at 200 req/s
//   npm run soak -- --minutes 0.5       a quick check
//   npm run soak -- --rate 100 --concurrency 128
//
// The lab origins run in this process (the 522 one in a child of its own); the proxy is
// `node dist/cli.js` (run `npm run build` first), its JSON log written to a file that is
// read at the end. Everything listens on 127.0.0.1 and everything is ended on exit.
// Exit code: 0 when every check passed, 1 when one failed, 2 for a usage error.

import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, openSync, closeSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { setTimeout as sleep } from 'node:timers/promises'
import { Agent, request } from 'undici'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const CLI = path.join(ROOT, 'dist', 'cli.js')

const USAGE = `Usage: npm run soak -- [options]

  --minutes <n>       how long to send traffic (default 10; 0.2 for a quick check)
  --rate <n>          requests per second (default 200)
  --concurrency <n>   most requests in flight at once (default 256)
  --keep              keep the work directory (proxy log and config) and print its path
  --help              this text
`

let flags
try {
  flags = parseArgs({
    options: {
      minutes: { type: 'string', default: '10' },
      rate: { type: 'string', default: '200' },
      concurrency: { type: 'string', default: '256' },
      keep: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' }
    },
    strict: true
  }).values
} catch (err) {
  process.stderr.write(`soak: ${err.message.split('\n')[0]}\n\n${USAGE}`)
  process.exit(2)
}
if (flags.help) { process.stdout.write(USAGE); process.exit(0) }
const MINUTES = Number(flags.minutes)
const RATE = Number(flags.rate)
const CONCURRENCY = Number(flags.concurrency)
for (const [name, v] of [['--minutes', MINUTES], ['--rate', RATE], ['--concurrency', CONCURRENCY]]) {
  if (!(v > 0) || !Number.isFinite(v)) { process.stderr.write(`soak: ${name} must be a positive number\n\n${USAGE}`); process.exit(2) }
}
if (!existsSync(CLI)) { process.stderr.write(`soak: ${CLI} is missing: run \`npm run build\` first\n`); process.exit(2) }

const { healthyOrigin } = await import(path.join(ROOT, 'dist', 'lab', 'healthy-origin.js'))
const { refusedOrigin, synDropOrigin, silentOrigin } = await import(path.join(ROOT, 'dist', 'lab', 'faults.js'))

const DURATION_MS = MINUTES * 60_000
const SAMPLE_MS = 5000
/** Samples before this are warm-up: JIT, pools and buffers settling. */
const WARMUP_MS = Math.max(10_000, DURATION_MS * 0.2)
/** Traffic mix: path, expected status, weight. */
const MIX = [
  { path: '/ok', status: 200, weight: 70 },
  { path: '/521', status: 521, weight: 10 },
  { path: '/522', status: 522, weight: 10 },
  { path: '/524', status: 524, weight: 10 }
]

const log = (line) => process.stdout.write(`${line}\n`)

// ---- cleanup: every process and origin we start is ended, whatever happens ----------
const cleanups = []
let cleaning = null
function cleanup () {
  cleaning ??= (async () => {
    for (const fn of cleanups.reverse()) {
      try { await fn() } catch {}
    }
  })()
  return cleaning
}
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.once(sig, () => { log(`soak: ${sig}, cleaning up`); cleanup().finally(() => process.exit(130)) })
}

const work = mkdtempSync(path.join(os.tmpdir(), 'highproxy-soak-'))
if (!flags.keep) cleanups.push(() => rmSync(work, { recursive: true, force: true }))

// ---- origins --------------------------------------------------------------------------
const origins = {
  healthy: await healthyOrigin(),
  refused: await refusedOrigin(),
  synDrop: await synDropOrigin(),
  silent: await silentOrigin()
}
for (const o of Object.values(origins)) cleanups.push(() => o.close())

// ---- the proxy --------------------------------------------------------------------------
const configFile = path.join(work, 'highproxy.yaml')
writeFileSync(configFile, `# written by bench/soak.mjs
listen: { host: 127.0.0.1, port: 0 }
routes:
  - { name: ok, path: /ok, origin: "${origins.healthy.url}" }
  - { name: refused-521, path: /521, origin: "${origins.refused.url}" }
  - { name: syn-drop-522, path: /522, origin: "${origins.synDrop.url}", connect_timeout: 1s }
  - { name: silent-524, path: /524, origin: "${origins.silent.url}", response_timeout: 1s }
`)
const logFile = path.join(work, 'proxy.log')
const errFile = path.join(work, 'proxy.err')
const outFd = openSync(logFile, 'w')
const errFd = openSync(errFile, 'w')
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('HIGHPROXY_')))
const proxy = spawn(process.execPath, [CLI, '--config', configFile, '--log-format', 'json', '--admin-port', '0'],
  { cwd: ROOT, env, stdio: ['ignore', outFd, errFd] })
closeSync(outFd)
closeSync(errFd)
const proxyExit = new Promise(resolve => proxy.once('exit', (code, signal) => resolve({ code, signal })))
let proxyRunning = true
proxyExit.then(() => { proxyRunning = false })
cleanups.push(async () => {
  if (!proxyRunning) return
  proxy.kill('SIGTERM')
  const timer = setTimeout(() => proxy.kill('SIGKILL'), 5000)
  await proxyExit
  clearTimeout(timer)
})

const readLog = () => readFileSync(logFile, 'utf8').split('\n').filter(l => l !== '')

async function proxyBase () {
  const until = Date.now() + 15_000
  while (Date.now() < until) {
    if (!proxyRunning) break
    for (const line of readLog()) {
      try {
        const rec = JSON.parse(line)
        if (rec.msg === 'highproxy listening') return rec.listen
      } catch {}
    }
    await sleep(50)
  }
  throw new Error(`the proxy did not start: ${readFileSync(errFile, 'utf8').slice(-2000) || 'no output'}`)
}

// ---- sampling ---------------------------------------------------------------------------
function rssKiB (pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return m === null ? NaN : Number(m[1])
}
const fdCount = (pid) => readdirSync(`/proc/${pid}/fd`).length
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s.length === 0 ? NaN : s[Math.floor((s.length - 1) / 2)] }

// ---- traffic ------------------------------------------------------------------------------
const byStatus = new Map()
const byRoute = new Map(MIX.map(m => [m.path, { sent: 0, expected: 0, other: new Map() }]))
let sent = 0
let answered = 0
let lost = 0
const lostSamples = []
let inFlight = 0
let skipped = 0
const totalWeight = MIX.reduce((a, m) => a + m.weight, 0)
let pick = 0
/** Deterministic interleaving of the mix (no randomness: runs compare). */
function nextRoute () {
  pick = (pick + 1) % totalWeight
  let at = (pick * 37) % totalWeight
  for (const m of MIX) { if (at < m.weight) return m; at -= m.weight }
  return MIX[0]
}

let main = null
try {
  const base = await proxyBase()
  log(`soak: proxy pid ${proxy.pid} on ${base}; ${RATE} req/s for ${MINUTES} min, at most ${CONCURRENCY} in flight`)
  log(`soak: origins: healthy ${origins.healthy.url}, refused ${origins.refused.url}, syn-drop ${origins.synDrop.url}, silent ${origins.silent.url}`)
  // Keep-alive shorter than the proxy's (client_keep_alive 5 s), so this client never
  // reuses a connection the proxy is closing: a lost response is the proxy's doing.
  const client = new Agent({ keepAliveTimeout: 1000, keepAliveMaxTimeout: 2000, connections: CONCURRENCY, pipelining: 1 })
  cleanups.push(() => client.destroy())

  const one = async (route) => {
    inFlight++
    sent++
    route.counts.sent++
    try {
      const res = await request(`${base}${route.path}`, { dispatcher: client, headersTimeout: 15_000, bodyTimeout: 15_000 })
      await res.body.dump()
      answered++
      byStatus.set(res.statusCode, (byStatus.get(res.statusCode) ?? 0) + 1)
      if (res.statusCode === route.status) route.counts.expected++
      else route.counts.other.set(res.statusCode, (route.counts.other.get(res.statusCode) ?? 0) + 1)
    } catch (err) {
      lost++
      if (lostSamples.length < 5) lostSamples.push(`${route.path}: ${err.code ?? ''} ${err.message}`)
    } finally {
      inFlight--
    }
  }
  for (const m of MIX) m.counts = byRoute.get(m.path)

  const samples = []
  /** RSS and fds now: the median of five reads 100 ms apart (fds move with every request). */
  const measure = async () => {
    const rss = []
    const fds = []
    for (let i = 0; i < 5; i++) {
      try { rss.push(rssKiB(proxy.pid)); fds.push(fdCount(proxy.pid)) } catch {}
      await sleep(100)
    }
    return { rssKiB: median(rss), fds: median(fds) }
  }
  // Idle, before any traffic: what the proxy holds on its own.
  const idleBefore = await measure()
  log(`soak: idle before traffic: RSS ${(idleBefore.rssKiB / 1024).toFixed(1)} MiB, fds ${idleBefore.fds}`)
  const t0 = Date.now()
  const sampleNow = async () => {
    const s = { at: Date.now() - t0, ...(await measure()), inFlight }
    samples.push(s)
    log(`soak: t=${(s.at / 1000).toFixed(0).padStart(4)} s  sent ${String(sent).padStart(7)}  in flight ${String(inFlight).padStart(4)}  ` +
      `RSS ${(s.rssKiB / 1024).toFixed(1).padStart(6)} MiB  fds ${String(s.fds).padStart(4)}`)
  }
  let sampling = Promise.resolve()
  const sampler = setInterval(() => { sampling = sampleNow() }, SAMPLE_MS)
  const pending = new Set()
  while (Date.now() - t0 < DURATION_MS) {
    if (!proxyRunning) break
    const due = Math.floor(((Date.now() - t0) / 1000) * RATE) - sent - skipped
    for (let i = 0; i < due; i++) {
      if (inFlight >= CONCURRENCY) { skipped++; continue }
      const p = one(nextRoute())
      pending.add(p)
      p.finally(() => pending.delete(p))
    }
    await sleep(10)
  }
  const trafficMs = Date.now() - t0
  clearInterval(sampler)
  await sampling
  // The last sample under load, like the others: "end" compares with "warm" in the same state.
  if (samples.length === 0 || trafficMs - samples[samples.length - 1].at > 2000) await sampleNow()
  await Promise.allSettled([...pending])
  const elapsed = Date.now() - t0
  // Idle again once keep-alive connections expired (client 2 s, proxy to origins 4 s):
  // every socket and timer of the run must be gone.
  await sleep(6000)
  const idleAfter = await measure()

  // Stop the proxy gracefully so its log is complete, then count.
  const stopAt = Date.now()
  proxy.kill('SIGTERM')
  const killer = setTimeout(() => proxy.kill('SIGKILL'), 10_000)
  const exit = await proxyExit
  clearTimeout(killer)
  const lines = readLog()
  let access = 0
  let unparsable = 0
  const accessByStatus = new Map()
  for (const line of lines) {
    try {
      const rec = JSON.parse(line)
      if (rec.msg === 'access') { access++; accessByStatus.set(rec.status, (accessByStatus.get(rec.status) ?? 0) + 1) }
    } catch { unparsable++ }
  }

  // ---- report -----------------------------------------------------------------------------
  const fmt = (m) => [...m].sort((a, b) => a[0] - b[0]).map(([k, v]) => `${k}: ${v}`).join(', ') || 'none'
  const after = samples.filter(s => s.at >= WARMUP_MS)
  const warm = after.slice(0, 3)
  const end = samples.slice(-3)
  const rssWarm = median(warm.map(s => s.rssKiB))
  const rssEnd = median(end.map(s => s.rssKiB))
  const fdWarm = median(warm.map(s => s.fds))
  const fdEnd = median(end.map(s => s.fds))
  const peakRss = Math.max(...samples.map(s => s.rssKiB))
  const within = (a, b) => Number.isFinite(a) && Number.isFinite(b) && Math.abs(b - a) <= 0.1 * a
  const pct = (a, b) => `${b >= a ? '+' : ''}${(((b - a) / a) * 100).toFixed(1)}%`

  log('')
  log(`soak report (${(trafficMs / 1000).toFixed(1)} s of traffic, ${(elapsed / 1000).toFixed(1)} s until the last answer; proxy stopped in ${Date.now() - stopAt} ms, exit ${exit.code ?? exit.signal})`)
  log(`  requests sent        ${sent} (${(sent / (trafficMs / 1000)).toFixed(1)} req/s; ${skipped} not sent: ${CONCURRENCY} already in flight)`)
  log(`  responses by status  ${fmt(byStatus)}`)
  for (const m of MIX) {
    log(`    ${m.path.padEnd(5)} sent ${String(m.counts.sent).padStart(7)}  answered ${m.status}: ${m.counts.expected}` +
      (m.counts.other.size > 0 ? `  other: ${fmt(m.counts.other)}` : ''))
  }
  log(`  lost (no response)   ${lost}${lostSamples.length > 0 ? `  e.g. ${lostSamples.join(' | ')}` : ''}`)
  log(`  access lines         ${access} for ${sent} requests (by status: ${fmt(accessByStatus)}); ${unparsable} log lines not JSON`)
  log(`  samples              ${samples.length} every ${SAMPLE_MS / 1000} s; warm-up ${(WARMUP_MS / 1000).toFixed(0)} s; warm = median of the first 3 after it, end = median of the last 3`)
  log(`  RSS                  warm ${(rssWarm / 1024).toFixed(1)} MiB → end ${(rssEnd / 1024).toFixed(1)} MiB (${pct(rssWarm, rssEnd)}); peak ${(peakRss / 1024).toFixed(1)} MiB`)
  log(`  open fds             warm ${fdWarm} → end ${fdEnd} (${pct(fdWarm, fdEnd)})`)
  log(`  idle (no traffic)    before: RSS ${(idleBefore.rssKiB / 1024).toFixed(1)} MiB, ${idleBefore.fds} fds; 6 s after the last answer: RSS ${(idleAfter.rssKiB / 1024).toFixed(1)} MiB, ${idleAfter.fds} fds`)

  const checks = [
    ['the proxy ran to the end', exit.code === 0 || exit.signal === 'SIGTERM'],
    ['no lost response', lost === 0],
    ['every request answered', answered === sent],
    ['each route answered with its status', MIX.every(m => m.counts.expected === m.counts.sent)],
    ['one access line per request', access === sent],
    ['every log line is JSON', unparsable === 0],
    ['enough samples after warm-up', warm.length >= 1 && end.length >= 1],
    ['RSS flat after warm-up (within 10%)', within(rssWarm, rssEnd)],
    ['open fds flat after warm-up (within 10%)', within(fdWarm, fdEnd)],
    ['every connection released once idle (fds back to the idle count, within 10% or 2)', idleAfter.fds <= Math.max(idleBefore.fds * 1.1, idleBefore.fds + 2)]
  ]
  log('')
  for (const [name, ok] of checks) log(`  ${ok ? 'PASS' : 'FAIL'}  ${name}`)
  const failed = checks.filter(([, ok]) => !ok).length
  log('')
  log(failed === 0 ? 'soak: all checks passed' : `soak: ${failed} check(s) failed`)
  if (flags.keep) log(`soak: work directory kept: ${work}`)
  main = failed === 0 ? 0 : 1
} catch (err) {
  process.stderr.write(`soak: ${err.stack ?? err}\n`)
  main = 1
} finally {
  await cleanup()
}
process.exit(main)
