// The log lines' serializer (log/log.ts): one JSON.stringify per line, the same bytes as
// pino's own serializer, and pino's own path for what only pino does.

import { tracingChannel } from 'node:diagnostics_channel'
import t from 'tap'
import pino from 'pino'
import { createLogger } from '../../src/log/log.js'

/** A logger of ours and one of plain pino with the same options, each writing to an array. */
function pair (): { ours: pino.Logger, theirs: pino.Logger, oursOut: string[], theirsOut: string[] } {
  const oursOut: string[] = []
  const theirsOut: string[] = []
  const ours = createLogger('info', 'json', { write: (s: string) => { oursOut.push(s); return true } } as unknown as NodeJS.WritableStream)
  const theirs = pino({ level: 'info', base: null, timestamp: pino.stdTimeFunctions.isoTime, formatters: { level: (label: string) => ({ level: label }) } },
    { write: (s: string) => { theirsOut.push(s) } })
  return { ours, theirs, oursOut, theirsOut }
}

/** The same line but for its time (the two loggers may write a millisecond apart). */
const timeless = (line: string | undefined): string => String(line).replace(/"time":"[^"]*"/, '"time":"T"')

const failure = {
  msg: 'origin failure',
  edge_status: 522,
  ray_id: '3fa297919ed2ccc3',
  origin: { url: 'http://127.0.0.1:9', address: '127.0.0.1', port: 9 },
  error: { code: 'HPX_ERR_CONNECT_TIMEOUT', message: 'no TCP handshake within 2000 ms: waited behind 64 unanswered connects', cause: null },
  timings: { dns_ms: null, connect_ms: 2000.4, tls_ms: null, ttfb_ms: null, total_ms: 2001 },
  attempt: 1,
  dialled: [{ address: '127.0.0.1', port: 9, family: 4, code: 'ETIMEDOUT', ms: 2000 }],
  truncated: false,
  client: { protocol: 'HTTP/1.1', tls_protocol: null, tls_cipher: null }
}

t.test('a record is written as pino writes it, byte for byte', async t => {
  const { ours, theirs, oursOut, theirsOut } = pair()
  const records: Array<Record<string, unknown>> = [
    failure,
    { msg: 'access', method: 'GET', host: 'shop.example', path: '/a b?"q"=\\', status: 200, duration_ms: 1.5, route: null },
    // What JSON has no room for: NaN and Infinity are null, undefined and functions are left out.
    { msg: 'odd', nan: NaN, inf: -Infinity, gone: undefined, fn: () => 1, nested: { a: [1, null, 'x\n\t\u0001é€'] } },
    {}
  ]
  for (const r of records) {
    ours.warn(r)
    theirs.warn(r)
    ours.child({ component: 'admin' }).info(r)
    theirs.child({ component: 'admin' }).info(r)
  }
  t.equal(oursOut.length, records.length * 2)
  for (let i = 0; i < oursOut.length; i++) t.equal(timeless(oursOut[i]), timeless(theirsOut[i]), `line ${i}`)
  t.match(oursOut[0], /^\{"level":"warn","time":"[^"]+","msg":"origin failure","edge_status":522,/)
  t.match(oursOut[1], /^\{"level":"info","time":"[^"]+","component":"admin","msg":"origin failure",/)
  t.ok(oursOut.every(line => line.endsWith('}\n') && JSON.parse(line) !== null), 'every line is one JSON object and a newline')
})

t.test('the logger and its children serialize with JSON.stringify, not pino\'s key-by-key walk', async t => {
  const { ours, theirs } = pair()
  const slot = (l: pino.Logger): unknown => (l as unknown as Record<symbol, unknown>)[pino.symbols.asJsonSym]
  t.not(slot(ours), slot(theirs), 'replaced on our logger')
  t.equal(slot(ours.child({ component: 'admin' })), slot(ours), 'children inherit it')
})

t.test('what only pino does goes through pino: a message argument, an err, BigInt nanoseconds, a child\'s redaction or serializers', async t => {
  const { ours, theirs, oursOut, theirsOut } = pair()
  const err = new Error('boom')
  const logpush = { msg: 'access', RayID: 'r', EdgeStartTimestamp: 1796000000123456789n, EdgeEndTimestamp: 1796000000223456789n }
  for (const l of [ours, theirs]) {
    l.info({ routes: ['a'] }, 'highproxy listening')
    l.error({ msg: 'failed', err })
    l.error(err)
    l.info(logpush)
  }
  // A child with redaction or serializers of its own.
  for (const l of [ours, theirs]) {
    l.child({}, { redact: ['secret'] }).info({ msg: 'redacted', secret: 'hunter2', kept: 1 })
    l.child({}, { serializers: { user: (u: { name: string }) => u.name } }).info({ msg: 'serialized', user: { name: 'ada', password: 'x' } })
  }
  t.equal(oursOut.length, 6)
  for (let i = 0; i < 6; i++) t.equal(timeless(oursOut[i]), timeless(theirsOut[i]), `line ${i}`)
  t.match(oursOut[4], /"secret":"\[Redacted\]","kept":1/)
  t.match(oursOut[5], /"user":"ada"\}\n$/)
  t.match(oursOut[0], /"routes":\["a"\],"msg":"highproxy listening"\}\n$/)
  t.match(oursOut[1], /"err":\{"type":"Error","message":"boom","stack":"Error: boom/)
  t.match(oursOut[3], /"EdgeStartTimestamp":1796000000123456789,"EdgeEndTimestamp":1796000000223456789\}\n$/)
})

t.test('a subscriber to pino\'s diagnostics channel still sees every line', async t => {
  const { ours, oursOut } = pair()
  const seen: unknown[] = []
  const channel = tracingChannel('pino_asJson')
  const handlers = { start: (ctx: unknown) => { seen.push(ctx) }, end () {}, asyncStart () {}, asyncEnd () {}, error () {} }
  channel.subscribe(handlers)
  try {
    ours.warn(failure)
  } finally {
    channel.unsubscribe(handlers)
  }
  t.equal(seen.length, 1)
  t.equal(oursOut.length, 1)
  t.match(oursOut[0], /"msg":"origin failure"/)
})
