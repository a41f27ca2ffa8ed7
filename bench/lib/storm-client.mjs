// The 522 storm's client, in its own process so that the harness's load generator does
// not delay its clock (and its clock does not delay the harness).
//
// A storm is `concurrency` clients arriving at once, each on a new TCP connection: on
// 'go' it calls connect() `concurrency` times in one synchronous loop and writes each
// request at once (Node sends it as soon as the handshake completes). So the proxy has
// to accept, parse, route and dial all of them together, as an edge does when a page's
// visitors all hit a drowning origin.
//
// Client view, per request: t0 when connect() issued its SYN; the answer's first byte; lateness
// = first byte − t0 − the connect timeout (negative = early). The handshake time
// (connect() to 'connect') is kept too: above ~1 s it is a SYN the proxy's full accept
// queue dropped and the client sent again. Each connection is closed (FIN) once its
// whole answer is read, as a browser giving up on the page would.
//
// Started with fork(); argv[2] is JSON { port, path, concurrency, timeoutMs, graceMs }.
// Out: { type: 'ready' }, then after 'go': { type: 'fired', at } once every connect() is
// issued, { type: 'connected', at } once every handshake completed, and
// { type: 'result', ... } when every request has its answer or was given up on
// (timeout + grace). Times `at` are epoch ms (performance.timeOrigin + now()).

import net from 'node:net'
import { parseAnswer } from './http-answer.mjs'

const { port, path, concurrency, timeoutMs, graceMs = 5000 } = JSON.parse(process.argv[2])
const REQUEST = Buffer.from(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAccept: application/json\r\n\r\n`, 'latin1')
const epoch = () => performance.timeOrigin + performance.now()

const answers = []       // [status, lateness ms, handshake ms] per answered request
const lostReasons = {}
let lost = 0
let badAnswers = 0
let connected = 0
let settled = 0
let lastAnswerAt = null
let firedAt = null
let finished = false
const open = new Set()

function settle () {
  if (++settled === concurrency) finish()
}

function lose (reason) {
  lost++
  lostReasons[reason] = (lostReasons[reason] ?? 0) + 1
  settle()
}

let clients = 0

function client () {
  const c = { t0: performance.now(), tc: 0, t1: 0, buf: null, done: false, reason: null }
  // Many visitors, not one: each from its own loopback address in turn (127.0.0.2–251), so
  // a proxy's per-client limits (highproxy's connections.max_per_client) see a crowd.
  const socket = net.connect({ host: '127.0.0.1', port, noDelay: true, localAddress: `127.0.0.${2 + (clients++ % 250)}` })
  // For an IP address, net.connect() issues the connect syscall in a nextTick it has just
  // queued: this one runs right after it, so t0 is when the SYN left, not when this loop
  // (about 0.1 ms per socket) got to it.
  process.nextTick(() => { c.t0 = performance.now() })
  open.add(socket)
  socket.write(REQUEST)
  socket.once('connect', () => {
    c.tc = performance.now()
    if (++connected === concurrency) process.send({ type: 'connected', at: epoch() })
  })
  const answered = status => {
    c.done = true
    lastAnswerAt = epoch()
    answers.push([status, c.t1 - c.t0 - timeoutMs, c.tc === 0 ? null : c.tc - c.t0])
    settle()
  }
  socket.on('data', chunk => {
    if (c.done) return
    if (c.buf === null) { c.t1 = performance.now(); c.buf = chunk } else c.buf = Buffer.concat([c.buf, chunk])
    const a = parseAnswer(c.buf)
    if (a === null || (a.length === -1)) return
    if (a.error !== undefined) { badAnswers++; c.reason = a.error; socket.destroy(); return }
    answered(a.status)
    socket.end()
  })
  socket.on('error', err => { c.reason ??= err.code ?? err.message })
  socket.on('close', () => {
    open.delete(socket)
    if (c.done) return
    // An answer read to the close (neither length nor chunked) still counts.
    const a = c.buf === null ? null : parseAnswer(c.buf)
    if (a?.length === -1) { answered(a.status); return }
    lose(c.reason ?? (c.buf === null ? 'closed without an answer' : 'closed mid-answer'))
  })
}

function finish () {
  if (finished) return
  finished = true
  for (const s of open) s.destroy()
  process.send({ type: 'result', sent: concurrency, answered: answers.length, answers, lost, lostReasons, badAnswers, connected, firedAt, lastAnswerAt },
    () => process.exit(0))
}

process.on('message', msg => {
  if (msg?.type !== 'go' || firedAt !== null) return
  firedAt = epoch()
  for (let i = 0; i < concurrency; i++) client()
  process.send({ type: 'fired', at: epoch() })
  // Whatever has no answer by the timeout plus grace is lost.
  setTimeout(() => {
    for (const s of open) s.destroy(new Error(`no answer within ${timeoutMs + graceMs} ms`))
  }, timeoutMs + graceMs).unref()
})
process.on('disconnect', () => process.exit(0))
process.send({ type: 'ready' })
