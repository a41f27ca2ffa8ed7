// Always online, as an operator sees it: the built CLI in front of a plain origin on
// loopback, with stale_if_error on. Healthy answer → origin killed (its port refuses,
// 521) → stale answers with their headers and log lines → the same port dropping SYNs
// (522, at the connect timeout) → origin back. Prints a transcript; leaves nothing running.
//
//   npm run build && node bench/always-online.mjs

import { spawn } from 'node:child_process'
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs'
import http from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { synDropOrigin } from '../dist/lab/faults.js'

const PAGE = '<h1>Shop</h1>'

function startOrigin (port = 0) {
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html', 'cache-control': 'max-age=30', 'content-length': Buffer.byteLength(PAGE) })
    res.end(PAGE)
  })
  return new Promise(resolve => server.listen({ host: '127.0.0.1', port }, () => resolve({
    port: server.address().port,
    close: () => new Promise(done => { server.close(() => done()); server.closeAllConnections() })
  })))
}

function startProxy (config) {
  const dir = mkdtempSync(join(tmpdir(), 'always-online-'))
  const file = join(dir, 'config.yaml')
  writeFileSync(file, config)
  const child = spawn(process.execPath, [new URL('../dist/cli.js', import.meta.url).pathname, '--config', file, '--port', '0', '--admin-port', '0', '--log-format', 'json'], { stdio: ['ignore', 'pipe', 'inherit'] })
  const lines = []
  let buffer = ''
  let ready
  const started = new Promise(resolve => { ready = resolve })
  child.stdout.on('data', d => {
    buffer += d
    let nl
    while ((nl = buffer.indexOf('\n')) !== -1) {
      const line = buffer.slice(0, nl)
      buffer = buffer.slice(nl + 1)
      const parsed = JSON.parse(line)
      lines.push({ line, parsed })
      if (parsed.msg === 'highproxy listening') ready(parsed)
    }
  })
  return started.then(l => ({
    listen: l.listen,
    admin: l.admin,
    linesFor: ray => lines.filter(x => x.parsed.ray_id === ray).map(x => x.line),
    stop: () => new Promise(resolve => { child.once('exit', resolve); child.kill('SIGTERM'); rmSync(dir, { recursive: true, force: true }) })
  }))
}

const SHOWN = ['age', 'cache-status', 'proxy-status', 'cache-control', 'content-type', 'cf-ray']

async function visit (proxy, what) {
  const start = performance.now()
  // fetch() may not set Host: node:http may.
  const res = await new Promise((resolve, reject) => {
    http.get(`${proxy.listen}/checkout`, { headers: { host: 'shop.example', accept: 'text/html' }, agent: false }, r => {
      let body = ''
      r.setEncoding('utf8')
      r.on('data', d => { body += d })
      r.on('end', () => resolve({ status: r.statusCode, statusText: r.statusMessage, headers: r.headers, body }))
    }).on('error', reject)
  })
  const body = res.body
  const ms = performance.now() - start
  console.log(`\n## ${what}\n$ curl -si -H 'Host: shop.example' ${proxy.listen}/checkout   (${ms.toFixed(0)} ms)`)
  console.log(`HTTP/1.1 ${res.status} ${res.statusText}`)
  for (const name of SHOWN) if (res.headers[name] !== undefined) console.log(`${name}: ${res.headers[name]}`)
  console.log(`\n${body.length > 120 ? `${body.slice(0, 120)}… (${body.length} bytes)` : body}`)
  const ray = String(res.headers['cf-ray']).slice(0, 16)
  // The access line is written when the response is over: wait for it.
  for (let i = 0; i < 40 && !proxy.linesFor(ray).some(l => l.includes('"msg":"access"')); i++) await new Promise(resolve => setTimeout(resolve, 25))
  console.log('\nlog:')
  for (const line of proxy.linesFor(ray)) console.log(line)
}

const origin = await startOrigin()
const proxy = await startProxy(`timeouts: { connect: 1s }
routes:
  - name: shop
    host: shop.example
    origin: http://127.0.0.1:${origin.port}
    stale_if_error: { max_age: 60m }
`)
try {
  await visit(proxy, 'healthy')
  await origin.close()
  console.log(`\n# origin killed: port ${origin.port} now refuses`)
  await visit(proxy, 'origin refusing (521), answered from the copy')
  console.log(`\n$ curl -s ${proxy.admin}/cache\n${await (await fetch(`${proxy.admin}/cache`)).text()}`)
  const dropping = await synDropOrigin('127.0.0.1', origin.port)
  console.log(`\n# port ${origin.port} now drops SYNs (accept queue full)`)
  await visit(proxy, 'origin dropping SYNs (522 at the 1 s connect timeout), answered from the copy')
  const metrics = (await (await fetch(`${proxy.admin}/metrics`)).text()).split('\n').filter(l => /^highproxy_(stale_served|origin_failures)_total\{/.test(l))
  console.log(`\n$ curl -s ${proxy.admin}/metrics | grep -E '^highproxy_(stale_served|origin_failures)_total'\n${metrics.join('\n')}`)
  await dropping.close()
  const back = await startOrigin(origin.port)
  console.log(`\n# origin back on port ${origin.port}`)
  await visit(proxy, 'origin back')
  await back.close()
} finally {
  await proxy.stop()
}
