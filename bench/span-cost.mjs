// What a span costs, without the network: the edge's tracing hooks for one request
// (server span, one attempt's client span, the origin's traceparent, the log fields, the
// end), run many times in one process with the SDK exporting to a local OTLP receiver,
// CPU time measured with process.cpuUsage(). CPU time of one process is steadier on a
// shared machine than req/s or a proxy's CPU per request under load, and it isolates
// tracing's own share. Imports the built dist/.
//   node bench/span-cost.mjs [--requests 200000]
import http from 'node:http'
import { parseArgs } from 'node:util'
import pino from 'pino'
import { startTracing } from '../dist/tracing.js'
import { tracedRequest } from './lib/traced-request.mjs'

const { values } = parseArgs({ options: { requests: { type: 'string', default: '200000' } } })
const N = Number(values.requests)

// A receiver that accepts every export (its own server in this process: its CPU is
// counted, which makes the figures an upper bound).
const sink = http.createServer((req, res) => { req.resume(); req.on('end', () => res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end()) })
await new Promise(resolve => sink.listen(0, '127.0.0.1', resolve))
const endpoint = `http://127.0.0.1:${sink.address().port}`

const request = (tracing) => tracedRequest(tracing, 'shop.example', true)

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
