// The lab's faults and knobs seen by real clients (node:net, node:tls, undici), no proxy
// in between: each one misbehaves the way its description says, and only that way.

import net from 'node:net'
import tls from 'node:tls'
import t from 'tap'
import { Client, errors, request } from 'undici'
import { startLab } from '../../src/lab/index.js'
import { client } from '../helpers.js'

const lab = await startLab({
  faults: {
    '520-reset': { delayMs: 150 },
    '520-headers': { bytes: 8 * 1024 },
    '521-after': { requests: 2 },
    '524': { silentMs: 150 },
    '526-expired': true,
    '526-name': true,
    'slow': { delayMs: 200 },
    'trickle': { bytes: 8, everyMs: 50, chunks: 6 },
    'keepalive-cut': { requests: 2 }
  }
})
t.teardown(() => lab.close())

const target = (url: string): { host: string, port: number } => ({ host: new URL(url).hostname, port: Number(new URL(url).port) })

/** One request written by hand; what came back and how the connection ended. */
function exchange (url: string): Promise<{ received: string, ending: string, ms: number }> {
  return new Promise(resolve => {
    const start = performance.now()
    let received = ''
    const socket = net.connect(target(url), () => socket.write('GET / HTTP/1.1\r\nHost: lab\r\n\r\n'))
    const done = (ending: string): void => { socket.destroy(); resolve({ received, ending, ms: performance.now() - start }) }
    socket.on('data', (c: Buffer) => { received += c.toString() })
    socket.once('end', () => done('FIN'))
    socket.once('error', (err: NodeJS.ErrnoException) => done(err.code ?? 'error'))
    socket.setTimeout(3000, () => done('TIMEOUT'))
  })
}

function connectCode (url: string): Promise<string> {
  return new Promise(resolve => {
    const socket = net.connect(target(url))
    socket.setTimeout(2000, () => { socket.destroy(); resolve('TIMEOUT') })
    socket.once('connect', () => { socket.destroy(); resolve('CONNECTED') })
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'ERROR'))
  })
}

function handshake (url: string, opts: tls.ConnectionOptions = {}): Promise<string> {
  return new Promise(resolve => {
    const socket = tls.connect({ ...target(url), ...opts }, () => { socket.destroy(); resolve('OK') })
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'ERROR'))
  })
}

// Both were given 150 ms: 520-reset's delayMs, 524's silentMs.
for (const [key, ending, what] of [['520-reset', 'ECONNRESET', 'reset (RST)'], ['524', 'FIN', 'closed (FIN)']] as const) {
  t.test(`${key}: not a byte, then the connection is ${what} after the delay`, async t => {
    const r = await exchange(lab.urls[key])
    t.equal(r.ending, ending)
    t.equal(r.received, '')
    t.ok(r.ms >= 149, `${what} after ${r.ms.toFixed(0)} ms`)
  })
}

t.test('520-headers with bytes: headers of that size (a client with room for them gets the 200)', async t => {
  const res = await request(lab.urls['520-headers'], { dispatcher: client })
  await res.body.dump()
  t.equal(res.statusCode, 200)
  const size = Object.entries(res.headers).reduce((n, [k, v]) => n + k.length + String(v).length, 0)
  t.ok(size >= 7 * 1024 && size < 9 * 1024, `${size} bytes of headers`)
  t.match(lab.origins['520-headers'].description, '8 KiB')
})

t.test('slow: a 200, and not before delayMs', async t => {
  const start = performance.now()
  const res = await request(lab.urls.slow, { dispatcher: client, signal: AbortSignal.timeout(3000) })
  const ms = performance.now() - start
  t.equal(res.statusCode, 200)
  t.equal(await res.body.text(), 'answered after 200 ms\n')
  t.ok(ms >= 199, `headers after ${ms.toFixed(0)} ms`)
})

t.test('trickle: headers at once, then bytes every everyMs, Content-Length announced', async t => {
  const start = performance.now()
  const res = await request(lab.urls.trickle, { dispatcher: client, signal: AbortSignal.timeout(3000) })
  t.equal(res.headers['content-length'], '48')
  let bytes = 0
  let pieces = 0
  for await (const chunk of res.body) { bytes += (chunk as Buffer).length; pieces++ }
  const ms = performance.now() - start
  t.equal(bytes, 48)
  t.ok(pieces >= 2, `the body came in ${pieces} pieces`)
  t.ok(ms >= 249, `the last of 6 pieces 50 ms apart after ${ms.toFixed(0)} ms`)
})

t.test('keepalive-cut: N answers on a connection, then the next request on it finds it closed', async t => {
  const one = new Client(lab.urls['keepalive-cut'], { pipelining: 1 })
  t.teardown(() => one.destroy())
  const get = async (): Promise<string> => {
    const res = await one.request({ path: '/', method: 'GET' })
    return res.body.text()
  }
  t.equal(await get(), 'request 1 of 2 on this connection\n')
  t.equal(await get(), 'request 2 of 2 on this connection\n', 'the same connection, kept alive')
  await t.rejects(get(), errors.SocketError, 'the third request on it: closed without an answer')
  t.equal(await get(), 'request 1 of 2 on this connection\n', 'a new connection is served again')
})

t.test('521-after: N answers, then new connections are refused', async t => {
  const url = lab.urls['521-after']
  t.equal(await connectCode(url), 'CONNECTED', 'listening before')
  for (const n of [1, 2]) {
    const res = await request(url, { dispatcher: client })
    t.equal(await res.body.text(), `answer ${n} of 2, then this origin stops listening\n`)
    if (n === 2) t.equal(res.headers.connection, 'close', 'the last answer says the connection ends')
  }
  t.equal(await connectCode(url), 'ECONNREFUSED', 'refused after the second answer')
  await t.rejects(request(url, { dispatcher: client }), { code: 'ECONNREFUSED' })
})

t.test('526-expired: only the expiry is wrong (its CA trusted)', async t => {
  const { ca } = lab.origins['526-expired']
  t.type(ca, 'string')
  t.equal(await handshake(lab.urls['526-expired'], { ca }), 'CERT_HAS_EXPIRED')
})

t.test('526-name: only the name is wrong (its CA trusted)', async t => {
  const { ca } = lab.origins['526-name']
  t.equal(ca, lab.origins['526-expired'].ca, 'one lab CA issues both')
  t.equal(await handshake(lab.urls['526-name'], { ca }), 'ERR_TLS_CERT_ALTNAME_INVALID')
  t.equal(await handshake(lab.urls['526-name'], { ca, servername: 'wrong-host.example' }), 'OK',
    'valid for the name it is for')
  t.match(lab.origins['526-name'].description, 'wrong-host.example')
})
