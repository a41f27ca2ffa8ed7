// The 522 storm's client, in its own process so that the healthy-route load generator
// does not delay its clock.
//
// It opens `concurrency` keep-alive connections to the proxy and proves each one was
// accepted with a request to the healthy route (a 200 from the origin). Only then does
// it send one request to the dead route on every connection at once, and re-send on the
// same connection as each answer arrives, until told to stop. So each request's clock
// starts when it is written on a connection the proxy already holds: the lateness seen
// here is the proxy's (its timer, its event loop, its write), not the kernel's accept
// queue. Raw sockets and a minimal parser: the first byte of each answer is stamped
// with no HTTP library in between.
//
// Started with fork(); argv[2] is JSON { port, path, concurrency, timeoutMs, maxOpening, graceMs, maxRequests, resend }.
// Messages out: { type: 'pending', ms } once every connection has its dead-route request
//               written, { type: 'result', ... } at the end. In: { type: 'stop' }.

import net from 'node:net'

const { port, path, concurrency, timeoutMs, maxOpening = 200, graceMs = 5000, maxRequests = concurrency * 50, resend = true } = JSON.parse(process.argv[2])
const request = p => Buffer.from(`GET ${p} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAccept: application/json\r\n\r\n`, 'latin1')
const DEAD = request(path)
const WARM = request('/')
const HEADER_END = Buffer.from('\r\n\r\n')

const lateness = []      // ms past the timeout, for each 522 (negative = early)
const statuses = {}      // dead-route answers by status
const lostReasons = {}
let sent = 0
let answered = 0
let lost = 0
let reopened = 0
let warmFailures = 0
let badAnswers = 0
let waveDone = 0
let ready = 0
let opening = 0
let stopping = false
let announced = false
let expired = false
let finished = false
const conns = new Set()
const t0Run = performance.now()

function lose (reason) {
  lost++
  lostReasons[reason] = (lostReasons[reason] ?? 0) + 1
}

/**
 * One complete HTTP/1.1 answer at the start of `buf`: { status, length, closing },
 * null while incomplete, { error } for what this client does not read.
 */
function parseAnswer (buf) {
  const end = buf.indexOf(HEADER_END)
  if (end === -1) return null
  const head = buf.toString('latin1', 0, end)
  const status = head.slice(9, 12)
  const closing = /\r\nconnection:\s*close/i.test(head)
  const cl = /\r\ncontent-length:\s*(\d+)/i.exec(head)
  if (cl !== null) {
    const length = end + 4 + Number(cl[1])
    return buf.length < length ? null : { status, length, closing }
  }
  if (!/\r\ntransfer-encoding:\s*chunked/i.test(head)) return { error: 'answer with neither content-length nor chunked encoding' }
  let at = end + 4
  for (;;) {
    const eol = buf.indexOf('\r\n', at, 'latin1')
    if (eol === -1) return null
    const size = parseInt(buf.toString('latin1', at, eol), 16)
    if (!Number.isFinite(size)) return { error: 'bad chunk size' }
    if (size === 0) {
      // No trailers expected: the last chunk is followed by one empty line.
      return buf.length < eol + 4 ? null : { status, length: eol + 4, closing }
    }
    at = eol + 2 + size + 2
    if (buf.length < at) return null
  }
}

/** One connection: warm-up request first, then dead-route requests one after another. */
function connect () {
  opening++
  const c = { socket: null, buf: null, t0: 0, t1: 0, warm: true, inflight: false }
  conns.add(c)
  const socket = c.socket = net.connect({ host: '127.0.0.1', port, noDelay: true })
  socket.once('connect', () => { c.inflight = true; socket.write(WARM) })
  socket.on('data', chunk => {
    if (c.buf === null || c.buf.length === 0) { c.t1 = performance.now(); c.buf = chunk } else c.buf = Buffer.concat([c.buf, chunk])
    for (;;) {
      const answer = parseAnswer(c.buf)
      if (answer === null) return
      if (answer.error !== undefined) { badAnswers++; socket.destroy(new Error(answer.error)); return }
      c.buf = c.buf.subarray(answer.length)
      onAnswer(c, answer.status, answer.closing)
      if (c.buf.length > 0) c.t1 = performance.now()
      else return
    }
  })
  socket.on('error', () => {})
  socket.on('close', () => {
    conns.delete(c)
    if (c.warm) opening--
    if (c.inflight && !c.warm) lose(expired ? `no answer within ${timeoutMs + graceMs} ms` : 'connection closed without an answer')
    if (c.inflight && c.warm) warmFailures++
    c.inflight = false
    if (!resend && announced) {
      if (!c.done && ++waveDone === concurrency) { stopping = true; finish() }
      return
    }
    if (!stopping) { reopened++; connect() } else maybeFinish()
  })
}

function send (c) {
  if (stopping || c.socket.destroyed || sent >= maxRequests) return
  c.inflight = true
  sent++
  c.socket.write(DEAD)
  c.t0 = performance.now()
}

function onAnswer (c, status, closing) {
  c.inflight = false
  if (c.warm) {
    if (status !== '200') { c.socket.destroy(); return }
    c.warm = false
    opening--
    ready++
    if (!announced) {
      if (ready === concurrency) {
        // Every connection is held by the proxy: fire the whole wave at once.
        for (const other of conns) if (!other.warm) send(other)
        announced = true
        process.send({ type: 'pending', ms: performance.now() - t0Run })
      } else if (opening < maxOpening && conns.size < concurrency) connect()
    } else if (stopping) maybeFinish()
    else send(c)
    return
  }
  const ms = c.t1 - c.t0
  answered++
  statuses[status] = (statuses[status] ?? 0) + 1
  if (status === '522') lateness.push(ms - timeoutMs)
  if (!resend) {
    // One wave: the result goes out as soon as every request has its answer.
    c.done = true
    if (++waveDone === concurrency) { stopping = true; finish() }
    return
  }
  if (closing) { c.socket.end(); return } // 'close' opens a new one
  if (stopping) maybeFinish()
  else send(c)
}

function maybeFinish () {
  for (const c of conns) if (c.inflight) return
  finish()
}

function finish () {
  if (finished) return
  finished = true
  for (const c of conns) c.socket.destroy()
  process.send({ type: 'result', sent, answered, lost, lostReasons, statuses, lateness, reopened, warmFailures, badAnswers, runMs: performance.now() - t0Run },
    () => process.exit(0))
}

process.on('message', msg => {
  if (msg?.type !== 'stop') return
  stopping = true
  maybeFinish()
  // Whatever is still pending past its timeout plus grace is lost.
  setTimeout(() => {
    expired = true
    for (const c of conns) c.socket.destroy()
    setTimeout(finish, 200)
  }, timeoutMs + graceMs).unref()
})
process.on('disconnect', () => process.exit(0))

for (let i = 0; i < Math.min(maxOpening, concurrency); i++) connect()
