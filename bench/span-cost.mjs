// What a span costs, without the network: the edge's tracing hooks for one request
// (server span, one attempt's client span, the origin's traceparent, the log fields, the
// end), run many times in one process with the SDK exporting to a local OTLP receiver,
// CPU time measured with process.cpuUsage(). CPU time of one process is steadier on a
// shared machine than req/s or a proxy's CPU per request under load, and it isolates
// tracing's own share. Imports the built dist/.
//   node bench/span-cost.mjs [--requests 200000]
import http from 'node:http'
import { parseArgs } from 'node:util'
import { performance } from 'node:perf_hooks'
import pino from 'pino'
import { startTracing } from '../dist/tracing.js'

const { values } = parseArgs({ options: { requests: { type: 'string', default: '200000' } } })
const N = Number(values.requests)

// A receiver that accepts every export (its own server in this process: its CPU is
// counted, which makes the figures an upper bound).
const sink = http.createServer((req, res) => { req.resume(); req.on('end', () => res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end()) })
await new Promise(resolve => sink.listen(0, '127.0.0.1', resolve))
const endpoint = `http://127.0.0.1:${sink.address().port}`

const url = new URL('http://127.0.0.1:9000')
const member = { url, origin: url.origin, pool: 'web' }
const info = { timings: { dns_ms: null, connect_ms: 0.4, tls_ms: null }, address: '127.0.0.1', port: 9000, localAddress: '127.0.0.1', localPort: 40000 }

function request (tracing) {
  const start = performance.now()
  const exchange = {
    start, method: 'GET', host: 'shop.example', path: '/checkout', ray: '0123456789abcdef', req: { httpVersion: '1.1' },
    headers: { host: 'shop.example', 'user-agent': 'bench/1', accept: '*/*' },
    client: { ip: '127.0.0.1', peer: '127.0.0.1', scheme: 'http', http2: false },
    route: { config: { name: 'shop' } }, pool: { config: { name: 'web' } }, edgeStatus: null, failure: null, refused: null,
    upgrade: null, truncated: false, aborted: false, attempt: null
  }
  // Tracing off runs the same request with its one null check per hook, as the edge does.
  const trace = tracing === null ? null : tracing.begin(exchange)
  const attempt = { member, number: 1, error: null, phase: 'body', connection: { info }, fresh: true, ttfbMs: 0.8, originStatus: 200, ok: true }
  exchange.attempt = attempt
  if (trace !== null) trace.attemptStarted(attempt)
  const headers = ['host', 'shop.example']
  if (trace !== null) trace.inject(headers)
  if (trace !== null) trace.attemptEnded(attempt)
  const record = {}
  if (trace !== null) {
    const ids = trace.fields()
    record.trace_id = ids.trace_id
    record.span_id = ids.span_id
    record.trace_flags = ids.trace_flags
    trace.end(200)
  }
  return record
}

async function measure (label, ratio) {
  const log = pino({ level: 'silent' })
  const t = ratio === null ? null : startTracing({ url: `${endpoint}/v1/traces`, protocol: 'http/protobuf', headers: {}, serviceName: 'bench', resourceAttributes: {}, sampler: 'traceidratio', samplerArg: ratio, maxQueueSize: 2048, trustIncoming: true }, log, 'bench')
  const run = async n => {
    // 100 requests per 10 ms (at most 10,000 req/s, what one highproxy process serves on
    // loopback): the exporter keeps up as it would in production.
    for (let i = 0; i < n; i += 100) {
      for (let j = 0; j < 100; j++) request(t === null ? null : t.edge)
      await new Promise(resolve => setTimeout(resolve, 10))
    }
    await t?.flush()
  }
  await run(Math.min(N, 20000)) // warm-up: JIT and the exporter's first connection
  const before = process.cpuUsage()
  await run(N)
  const used = process.cpuUsage(before)
  const us = (used.user + used.system) / N
  const counts = t?.counts()
  await t?.shutdown()
  console.log(`${label.padEnd(22)} ${us.toFixed(2).padStart(6)} µs CPU per request${counts === undefined ? '' : `  (spans exported ${counts.exported}, dropped ${counts.droppedQueueFull} queue full, ${counts.droppedExportFailed} export failed)`}`)
  return us
}

const none = await measure('tracing off', null)
const all = await measure('tracing 100%', 1)
const one = await measure('tracing 1%', 0.01)
console.log(`added by tracing: 100% ${(all - none).toFixed(2)} µs, 1% ${(one - none).toFixed(2)} µs per request`)
sink.close()
