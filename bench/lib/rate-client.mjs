// The fixed-rate load generator, in its own process (so the harness's work does not
// delay its clock). Requests are spread evenly over time, 1/rate apart, each on an idle
// keep-alive connection of the pool. autocannon's `overallRate` is not that: it lets
// each connection send as fast as it can until its per-second quota is used up, so every
// second starts with a saturating burst, and its p99 is that burst's queueing.
//
// Timers tick at about 1 ms, so requests go out in small groups (2 per tick at 2,000/s):
// the same for every target. Latency is from writing the request to its last byte read.
// A request due while every connection is busy waits for the next free one; it is
// counted as "queued", which only happens when the target stalls.
//
// Started with fork(); argv[2] is JSON { port, path, headers, connections, rate, seconds, keepTimes }.
// Out: { type: 'ready' } once every connection is open; after { type: 'go' }:
// { type: 'result', requests, ms[], at[] (epoch ms, with keepTimes), statuses, errors, queued, seconds }.

import net from 'node:net'
import { parseAnswer } from './http-answer.mjs'

const { port, path, headers = {}, connections, rate, seconds, keepTimes = false } = JSON.parse(process.argv[2])
const REQUEST = Buffer.from(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`, 'latin1')
const epoch = () => performance.timeOrigin + performance.now()

const ms = []
const at = []
const statuses = {}
let errors = 0
let queued = 0
let inflight = 0
let stopped = false
const idle = []
let waiting = 0 // requests that were due while every connection was busy
let ready = 0

function send (c) {
  c.t0 = performance.now()
  c.busy = true
  inflight++
  c.socket.write(REQUEST)
}

function free (c) {
  if (waiting > 0) { waiting--; send(c) }
  else idle.push(c)
}

function open () {
  const c = { socket: null, buf: null, t0: 0, busy: false }
  const socket = c.socket = net.connect({ host: '127.0.0.1', port, noDelay: true })
  socket.once('connect', () => { idle.push(c); if (++ready === connections) process.send({ type: 'ready' }) })
  socket.on('data', chunk => {
    c.buf = c.buf === null ? chunk : Buffer.concat([c.buf, chunk])
    const a = parseAnswer(c.buf)
    if (a === null || a.length === -1) return
    const t1 = performance.now()
    c.buf = a.error === undefined && c.buf.length > a.length ? c.buf.subarray(a.length) : null
    c.busy = false
    inflight--
    if (a.error !== undefined) { errors++; socket.destroy(); return }
    ms.push(t1 - c.t0)
    if (keepTimes) at.push(epoch())
    statuses[a.status] = (statuses[a.status] ?? 0) + 1
    if (stopped) { if (inflight === 0) finish() } else free(c)
  })
  socket.on('error', () => {})
  socket.on('close', () => {
    const i = idle.indexOf(c)
    if (i !== -1) idle.splice(i, 1)
    if (c.busy) { c.busy = false; inflight--; errors++ }
    // A connection the target closed is replaced, so the pool keeps its size.
    if (!stopped) open()
    else if (inflight === 0) finish()
  })
}

let t0 = 0
let finished = false
function finish () {
  if (finished) return
  finished = true
  process.send({ type: 'result', requests: ms.length, ms, at, statuses, errors, queued, seconds: (performance.now() - t0) / 1000 },
    () => process.exit(0))
}

function run () {
  t0 = performance.now()
  const interval = 1000 / rate
  const end = t0 + seconds * 1000
  let next = t0
  const tick = () => {
    const now = performance.now()
    for (; next <= now && next < end; next += interval) {
      const c = idle.pop()
      if (c === undefined) { waiting++; queued++ } else send(c)
    }
    if (next < end) { setTimeout(tick, Math.max(0, next - performance.now())); return }
    stopped = true
    waiting = 0 // due inside the run but never sent: not requests
    if (inflight === 0) finish()
    // Answers still missing after 2 s are errors; the result goes out anyway.
    setTimeout(() => { errors += inflight; finish() }, 2000).unref()
  }
  tick()
}

process.on('message', m => { if (m?.type === 'go') run() })
process.on('disconnect', () => process.exit(0))
for (let i = 0; i < connections; i++) open()
