// `highproxy probe <url>`: what would the proxy answer for this URL, and why?
// Uses the proxy's own dial() and classify(), so its verdict is the proxy's verdict.

import { performance } from 'node:perf_hooks'
import { Client } from 'undici'
import type { Config } from './config/schema.js'
import { dialErrorIn, type DialError, type Phase } from './status/errors.js'
import { CATALOG } from './status/catalog.js'
import { classify, type Classification } from './status/classify.js'
import { dial, originTarget, type DialInfo, type Dialled } from './origin/dial.js'
import { roundMs, since } from './log/time.js'
import { typedUndiciError } from './origin/connection.js'

export interface ProbeReport {
  url: string
  dns: { addresses: string[], ms: number | null }
  tcp: { address: string | null, port: number, ms: number | null, attempts: DialInfo['attempts'] }
  tls: (NonNullable<DialInfo['tls']> & { ms: number | null }) | null
  http: { status: number, ttfb_ms: number } | null
  total_ms: number
  /** What the proxy would answer: the origin's status, or an edge status. */
  verdict: { status: number, edge: boolean, name: string | null, phase: Phase | null, code: string | null, sentence: string }
  healthy: boolean
}

const seconds = (ms: number): string => ms >= 1000 ? `${Math.round(ms / 100) / 10} s` : `${ms} ms`

function sentence (c: Classification, phase: Phase, err: DialError | null, url: URL, config: Config): string {
  const at = err?.address == null ? url.host : `${err.address.includes(':') ? `[${err.address}]` : err.address}:${err.port}`
  const lead: Record<Phase, string> = {
    queue: `every connection to ${at} was busy`,
    request: `connected to ${at}, then the origin stopped reading the request (${c.code ?? 'error'})`,
    dns: `DNS lookup of ${url.hostname} failed (${c.code ?? 'error'})`,
    connect: c.status === 522
      ? `SYN sent to ${at} and no answer in ${seconds(config.connectTimeoutMs)}`
      : `TCP connect to ${at} failed (${c.code ?? 'error'})`,
    tls: `TLS handshake with ${at} failed (${c.code ?? 'error'})`,
    response: c.status === 524
      ? `connected to ${at} and sent the request, no response headers in ${seconds(config.responseTimeoutMs)}`
      : `connected to ${at} and sent the request, then the origin failed (${c.code ?? 'error'})`,
    body: `the response body from ${at} broke off (${c.code ?? 'error'})`
  }
  // For a 522 and a 524 the lead already says what happened, with the address and the
  // time: only the table's explanation after it is added, not its restatement.
  const restated = (phase === 'connect' && c.status === 522) || (phase === 'response' && c.status === 524)
  const why = restated ? c.why.split(': ').slice(1).join(': ') : c.why
  return why === '' ? `${lead[phase]} → ${c.status}` : `${lead[phase]}: ${why} → ${c.status}`
}

export async function probe (rawUrl: string, config: Config): Promise<ProbeReport> {
  const url = new URL(rawUrl)
  const target = originTarget(url)
  const pool = config.edge.pools.find(p => p.origins.some(o => o.origin === url.origin))
  const start = performance.now()
  const elapsed = (): number => since(start)
  const tlsConfig = pool?.tls ?? config.tls
  let dialled: Dialled
  const report: ProbeReport = {
    url: url.href,
    dns: { addresses: [], ms: null },
    tcp: { address: null, port: target.port, ms: null, attempts: [] },
    tls: null,
    http: null,
    total_ms: 0,
    verdict: { status: 0, edge: false, name: null, phase: null, code: null, sentence: '' },
    healthy: false
  }
  const failed = (err: unknown, phase: Phase): ProbeReport => {
    const dialErr = dialErrorIn(err)
    const c = classify(err, phase)
    report.total_ms = elapsed()
    report.verdict = { status: c.status, edge: true, name: CATALOG.get(c.status)?.name ?? null, phase, code: c.code, sentence: sentence(c, phase, dialErr, url, config) }
    return report
  }
  try {
    dialled = await dial(target, { connectTimeoutMs: pool?.connectTimeoutMs ?? config.connectTimeoutMs, tlsTimeoutMs: config.edge.tlsTimeoutMs, tls: tlsConfig })
  } catch (err) {
    const dialErr = dialErrorIn(err)
    if (dialErr !== null) {
      report.dns = { addresses: dialErr.attempts.map(a => a.address), ms: dialErr.timings.dns_ms }
      report.tcp = { address: dialErr.address, port: dialErr.port, ms: dialErr.timings.connect_ms, attempts: dialErr.attempts }
    }
    return failed(err, dialErr?.phase ?? 'connect')
  }
  const { socket, info } = dialled
  report.dns = { addresses: info.attempts.map(a => a.address), ms: info.timings.dns_ms }
  report.tcp = { address: info.address, port: info.port, ms: info.timings.connect_ms, attempts: info.attempts }
  if (info.tls !== null) report.tls = { ...info.tls, ms: info.timings.tls_ms }

  // The same HTTP client the proxy uses, over the socket we just dialled.
  const client = new Client(url.origin, {
    // undici expects the connector to answer asynchronously, as a real dial does.
    connect: (_opts, callback) => { process.nextTick(callback, null, socket) },
    headersTimeout: config.responseTimeoutMs,
    maxHeaderSize: config.edge.maxResponseHeaderBytes,
    // As the proxy dials (origin/connection.ts): HTTP/1.1, whatever undici's default.
    allowH2: false
  })
  const sent = performance.now()
  try {
    const res = await client.request({ method: 'GET', path: `${url.pathname}${url.search}`, headers: { 'user-agent': 'highproxy-probe' } })
    const ttfb = roundMs(performance.now() - sent)
    report.http = { status: res.statusCode, ttfb_ms: ttfb }
    try {
      await res.body.dump()
    } catch (err) {
      return failed(typedUndiciError(err as Error), 'body')
    }
    report.total_ms = elapsed()
    report.healthy = res.statusCode < 500
    report.verdict = {
      status: res.statusCode,
      edge: false,
      name: null,
      phase: null,
      code: null,
      sentence: `${url.host} answered ${res.statusCode} in ${ttfb} ms: the proxy passes it through → ${res.statusCode}`
    }
    return report
  } catch (err) {
    return failed(typedUndiciError(err as Error), 'response')
  } finally {
    await client.destroy()
  }
}

const show = (ms: number | null): string => ms === null ? '—' : `${ms} ms`

export function formatReport (r: ProbeReport): string {
  const attempts = r.tcp.attempts.map(a => `${a.address} ${a.code ?? 'connected'} after ${a.ms} ms`).join('; ')
  const lines = [
    `probe ${r.url}`,
    `  dns    ${r.dns.addresses.join(', ') || '—'}  (${show(r.dns.ms)})`,
    `  tcp    ${r.tcp.address ?? '—'}:${r.tcp.port}  (${show(r.tcp.ms)})${attempts === '' ? '' : `  [${attempts}]`}`,
    `  tls    ${r.tls === null ? '—' : `${r.tls.protocol ?? '?'} ${r.tls.cipher ?? '?'}, cert CN=${r.tls.subject ?? '?'} valid to ${r.tls.validTo ?? '?'}  (${show(r.tls.ms)})`}`,
    `  http   ${r.http === null ? '—' : `${r.http.status}, first byte after ${r.http.ttfb_ms} ms`}`,
    `  total  ${r.total_ms} ms`,
    '',
    r.verdict.sentence
  ]
  return lines.join('\n') + '\n'
}

export async function runProbe (args: string[], flags: Record<string, unknown>, config: Config): Promise<void> {
  const [url] = args
  if (url === undefined || !/^https?:\/\//.test(url)) {
    process.stderr.write('highproxy: probe needs an http:// or https:// URL\n')
    process.exit(2)
  }
  const report = await probe(url, config)
  process.stdout.write(flags.json === true ? JSON.stringify(report) + '\n' : formatReport(report))
  process.exitCode = report.healthy ? 0 : 1
}
