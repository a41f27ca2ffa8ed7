// `highproxy probe <url>`: dial one origin phase by phase and say what the proxy would
// answer. Checked against the real faults, through the function and through the CLI.

import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import { resolve, validate } from '../../src/config/load.js'
import type { Config } from '../../src/config/schema.js'
import { selfSignedCertificate } from '../../src/lab/certificates.js'
import { refusedOrigin, resetOrigin, silentOrigin, synDropOrigin } from '../../src/lab/faults.js'
import { plainOnTlsOrigin, tlsOrigin } from '../../src/lab/tls-faults.js'
import { healthyOrigin } from '../../src/lab/healthy-origin.js'
import { probe, type ProbeReport } from '../../src/probe.js'
import { timed, oneOfTwo, shown, type Timed } from '../timing.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const CLI = join(ROOT, 'dist', 'cli.js')
const TIMEOUTS = { connect: '400ms', response: '500ms' }
const configOf = (raw: Record<string, unknown> = {}): Config =>
  resolve(validate({ timeouts: TIMEOUTS, ...raw }), false)
/** See 530-dns.test.ts: a 64-octet label fails in getaddrinfo without any DNS packet sent. */
const UNRESOLVABLE = `http://${'nx'.repeat(32)}.invalid/`

const portOf = (url: string): number => Number(new URL(url).port)


// Regression guard: probe() hands undici's Client its already-dialled socket through a
// connector. Called back synchronously (`connect: (_opts, callback) => callback(null,
// socket)`, as before 34501c8), undici 7 re-enters its resume loop from inside connect(),
// the re-entrant resume returns early and the request is never written: every probe that
// got as far as HTTP (healthy, 520, 524, TLS with a trusted CA) hung for ever, and
// `highproxy probe` never exited. Should that come back, these probes fail at a deadline
// instead of hanging the run.
const PROBE_DEADLINE_MS = 2000
async function probeWithin (url: string, config: Config, deadlineMs = PROBE_DEADLINE_MS): Promise<ProbeReport | Error> {
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<Error>(resolve => {
    timer = setTimeout(() => resolve(new Error(`probe() did not finish within ${deadlineMs} ms`)), deadlineMs)
  })
  try {
    return await Promise.race([probe(url, config), deadline])
  } finally {
    clearTimeout(timer)
  }
}
/** Asserts the probe finished (see the regression guard above); narrows the result. */
function finished (t: Test, r: ProbeReport | Error): r is ProbeReport {
  t.notOk(r instanceof Error, `probe finished (a hang here: the connector must call back asynchronously): ${r instanceof Error ? r.message : 'ok'}`)
  return !(r instanceof Error)
}

t.test('probe: a healthy origin', async t => {
  const origin = await healthyOrigin()
  t.teardown(() => origin.close())
  const r = await probeWithin(`${origin.url}/echo`, configOf())
  if (!finished(t, r)) return
  t.equal(r.healthy, true)
  t.equal(r.http?.status, 200)
  t.type(r.http?.ttfb_ms, 'number')
  t.equal(r.tcp.address, '127.0.0.1')
  t.equal(r.tcp.port, portOf(origin.url))
  t.same(r.tcp.attempts.map(a => a.code), [null], 'one address, connected')
  t.equal(r.tls, null)
  t.equal(r.verdict.status, 200)
  t.equal(r.verdict.edge, false)
  t.match(r.verdict.sentence, /answered 200/)
})

t.test('probe: refused → 521', async t => {
  const origin = await refusedOrigin()
  const once = (): Promise<Timed<ProbeReport & { ms: number }>> =>
    timed(async () => { const r = await probe(origin.url, configOf()); return Object.assign(r, { ms: r.total_ms }) })
  const r = await once()
  t.equal(r.healthy, false)
  t.equal(r.verdict.status, 521)
  t.equal(r.verdict.edge, true)
  t.equal(r.verdict.name, 'web_server_down')
  t.equal(r.verdict.phase, 'connect')
  t.equal(r.verdict.code, 'ECONNREFUSED')
  t.match(r.verdict.sentence, `127.0.0.1:${portOf(origin.url)}`, 'the sentence names the address dialled')
  t.match(r.verdict.sentence, /→ 521$/)
  t.equal(r.http, null)
  const atOnce = (x: { ms: number, late: number }): boolean => x.ms < 300 + x.late
  const tries = await oneOfTwo(r, once, atOnce)
  t.ok(tries.some(atOnce), `refused at once: ${shown(tries)}`)
})

// One SYN-dropping origin for the file (its child process takes a while to start).
const dead = await synDropOrigin()
t.teardown(() => dead.close())

t.test('probe: SYN dropped → 522 after the connect timeout', async t => {
  const origin = dead
  const once = (): Promise<Timed<ProbeReport & { ms: number }>> =>
    timed(async () => { const r = await probe(origin.url, configOf()); return Object.assign(r, { ms: r.total_ms }) })
  const r = await once()
  t.equal(r.verdict.status, 522)
  t.equal(r.verdict.name, 'connection_timeout')
  t.equal(r.verdict.phase, 'connect')
  t.ok(r.verdict.sentence.startsWith(`SYN sent to 127.0.0.1:${portOf(origin.url)} and no answer in 400 ms`), r.verdict.sentence)
  t.match(r.verdict.sentence, /→ 522$/)
  t.equal(r.verdict.sentence.split('SYN sent').length, 2, 'says "SYN sent" once, not again in the explanation')
  t.equal(r.verdict.sentence.split('no answer').length, 2, 'says "no answer" once')
  t.same(r.tcp.attempts.map(a => a.code), ['ETIMEDOUT'])
  const onTime = (x: Timed<ProbeReport & { ms: number }>): boolean =>
    x.ms <= 550 + x.late && x.tcp.ms !== null && x.tcp.ms <= 500 + x.late
  const tries = await oneOfTwo(r, once, onTime)
  t.ok(tries.every(x => x.ms >= 400 && (x.tcp.ms ?? 0) >= 400), `never before the 400 ms connect timeout: ${shown(tries)}`)
  t.ok(tries.some(onTime), `total within 150 ms, tcp within 100 ms after the timeout: ${shown(tries)} (tcp ${tries.map(x => String(x.tcp.ms)).join(', ')} ms)`)
})

t.test('probe: reset after the request → 520', async t => {
  const origin = await resetOrigin()
  t.teardown(() => origin.close())
  const r = await probeWithin(origin.url, configOf())
  if (!finished(t, r)) return
  t.equal(r.verdict.status, 520)
  t.equal(r.verdict.phase, 'response')
  t.equal(r.tcp.address, '127.0.0.1', 'TCP connected first')
})

t.test('probe: silent origin → 524', async t => {
  const origin = await silentOrigin()
  t.teardown(() => origin.close())
  // 500 ms response timeout on undici's coarse clock: up to ~1.5 s, so a longer deadline.
  const r = await probeWithin(origin.url, configOf(), 2500)
  if (!finished(t, r)) return
  t.equal(r.verdict.status, 524)
  t.equal(r.verdict.name, 'timeout')
  t.equal(r.verdict.phase, 'response')
  t.equal(r.http, null)
  t.match(r.verdict.sentence, `connected to 127.0.0.1:${portOf(origin.url)} and sent the request, no response headers in 500 ms`)
  t.equal(r.verdict.sentence.split('sent the request').length, 2, 'says it once')
  // undici's headersTimeout runs on a coarse (499 ms) clock: bounded loosely.
  t.ok(r.total_ms >= 490 && r.total_ms < 2000, `total ${r.total_ms} ms`)
})

t.test('probe: plain HTTP on an https URL → 525', async t => {
  const origin = await plainOnTlsOrigin()
  t.teardown(() => origin.close())
  const r = await probe(origin.url, configOf())
  t.equal(r.verdict.status, 525)
  t.equal(r.verdict.name, 'ssl_handshake_failed')
  t.equal(r.verdict.phase, 'tls')
  t.match(r.verdict.sentence, `TLS handshake with 127.0.0.1:${portOf(origin.url)} failed`)
})

t.test('probe: TLS origins → 526 untrusted, healthy when its CA is configured', async t => {
  const certificate = await selfSignedCertificate()
  const dir = await mkdtemp(join(tmpdir(), 'highproxy-probe-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const caFile = join(dir, 'ca.pem')
  await writeFile(caFile, certificate.cert)
  const origin = await tlsOrigin(certificate)
  t.teardown(() => origin.close())

  const bad = await probe(origin.url, configOf())
  t.equal(bad.verdict.status, 526)
  t.equal(bad.verdict.name, 'invalid_ssl_certificate')
  t.equal(bad.verdict.code, 'DEPTH_ZERO_SELF_SIGNED_CERT')
  t.equal(bad.healthy, false)

  const good = await probeWithin(origin.url, configOf({ routes: [{ origin: origin.url, tls: { ca_file: caFile } }] }))
  if (finished(t, good)) {
    t.equal(good.healthy, true, 'the route\'s tls.ca_file is trusted')
    t.equal(good.http?.status, 200)
    t.equal(good.tls?.subject, 'localhost')
    t.type(good.tls?.protocol, 'string')
    t.type(good.tls?.ms, 'number')
  }

  // Regression: the top-level tls used to be ignored for routes (the TLS schema's
  // `default: {}`, see 526-certificate.test.ts; fixed by a2ee3da), so this gave 526.
  const viaShortcut = await probeWithin(origin.url, configOf({ origin: origin.url, tls: { ca_file: caFile } }))
  t.equal(viaShortcut instanceof Error ? viaShortcut.message : viaShortcut.verdict.status, 200, 'top-level tls.ca_file trusted for the origin shortcut')
  // Regression: for a URL that is no route's origin, probe() used to fall back to
  // `{ verify: config.tlsVerify, ca: undefined }`, dropping the top-level tls.ca_file and
  // servername (fixed by 34501c8: `pool?.tls ?? config.tls`).
  const noRoute = await probeWithin(origin.url, configOf({ tls: { ca_file: caFile } }))
  t.equal(noRoute instanceof Error ? noRoute.message : noRoute.verdict.status, 200, 'top-level tls.ca_file trusted for a URL with no route')
})

t.test('probe: a name that does not resolve → 530', async t => {
  const r = await probe(UNRESOLVABLE, configOf())
  t.equal(r.verdict.status, 530)
  t.equal(r.verdict.name, 'origin_dns_error')
  t.equal(r.verdict.phase, 'dns')
  t.equal(r.verdict.code, 'ENOTFOUND')
  t.match(r.verdict.sentence, /^DNS lookup of \S+\.invalid failed \(ENOTFOUND\)/)
  t.same(r.tcp.attempts, [])
})

interface Run { code: number | null, stdout: string, stderr: string }

function cli (args: string[], killAfterMs = 15_000): Promise<Run> {
  // Only our own settings: nothing from the caller's HIGHPROXY_* environment.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('HIGHPROXY_')))
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] })
    const timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs)
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (c: Buffer) => { stdout += c.toString() })
    child.stderr.on('data', (c: Buffer) => { stderr += c.toString() })
    child.once('error', reject)
    child.once('close', code => { clearTimeout(timer); resolve({ code, stdout, stderr }) })
  })
}

t.test('CLI: highproxy probe', async t => {
  t.ok(existsSync(CLI), 'dist/cli.js exists (run `npm run build` first)')
  if (!existsSync(CLI)) return

  const refused = await refusedOrigin()
  const origin = await healthyOrigin()
  t.teardown(() => origin.close())
  // Three processes at once: each spends most of its time starting Node.
  const [bad, ok, slow] = await Promise.all([
    cli(['probe', refused.url, '--json', '--connect-timeout', '400ms']),
    cli(['probe', `${origin.url}/echo`, '--connect-timeout', '400ms'], 10_000),
    cli(['probe', dead.url, '--json', '--connect-timeout', '400ms'])
  ])

  t.equal(bad.code, 1, `exit 1 when the origin is not healthy (stderr: ${bad.stderr.trim()})`)
  const report = JSON.parse(bad.stdout) as ProbeReport
  t.equal(report.verdict.status, 521)
  t.equal(report.verdict.name, 'web_server_down')
  t.equal(report.healthy, false)
  t.match(report.verdict.sentence, `127.0.0.1:${portOf(refused.url)}`)

  // A hung healthy probe (see the regression guard above) is killed after 10 s: code null.
  t.equal(ok.code, 0, `exit 0 for a healthy origin (stderr: ${ok.stderr.trim()})`)
  if (ok.code === 0) {
    t.match(ok.stdout, /^\s*tcp\s+127\.0\.0\.1:\d+/m, 'a tcp line')
    t.match(ok.stdout, /^\s*http\s+200/m, 'an http line with the status')
    t.match(ok.stdout, /answered 200/)
    t.throws(() => JSON.parse(ok.stdout), 'without --json the report is for humans')
  }

  t.equal(slow.code, 1)
  const slowReport = JSON.parse(slow.stdout) as ProbeReport
  t.equal(slowReport.verdict.status, 522)
  t.ok(slowReport.verdict.sentence.startsWith(`SYN sent to 127.0.0.1:${portOf(dead.url)} and no answer in 400 ms`), slowReport.verdict.sentence)
})
