// Hostile origins, as raw TCP servers on loopback: smuggling-style responses (both
// Content-Length and Transfer-Encoding, an invalid Content-Length), a body that trickles,
// a body that never ends sent to a client that reads slowly, keep-alive sockets closed at
// the wrong moment, and response headers that would disclose the origin.

import net from 'node:net'
import t from 'tap'
import { accessFor, failureFor, get, rayOf, startProxy } from '../helpers.js'
import { scriptedOrigin } from '../origins.js'

const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))

const ok = (body = 'fine'): string => `HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: ${body.length}\r\nconnection: keep-alive\r\n\r\n${body}`

t.test('smuggling-style responses → 520, and the connection that carried one is never reused', async t => {
  const origin = await scriptedOrigin((req, socket) => {
    if (req.url === '/cl-te') {
      // Both framings: a front end trusting one and a back end the other would desync.
      socket.write('HTTP/1.1 200 OK\r\ncontent-length: 40\r\ntransfer-encoding: chunked\r\nconnection: keep-alive\r\n\r\n' +
        '0\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 8\r\n\r\nsmuggled')
    } else if (req.url === '/bad-cl') {
      socket.write('HTTP/1.1 200 OK\r\ncontent-length: abc\r\nconnection: keep-alive\r\n\r\nhello')
    } else if (req.url === '/two-cl') {
      socket.write('HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-length: 13\r\nconnection: keep-alive\r\n\r\nhello')
    } else {
      socket.write(ok(`fine ${req.conn}`))
    }
  })
  t.teardown(() => origin.close())
  const proxy = await startProxy({ origin: origin.url, timeouts: { response: '2s' } })
  t.teardown(() => proxy.close())

  // Warm a pooled connection, so "a new connection" below means the pool let go of one.
  const warm = await get(`${proxy.url}/warm`)
  t.equal(warm.status, 200)
  for (const path of ['/cl-te', '/bad-cl', '/two-cl']) {
    const before = origin.connections()
    const bad = await get(`${proxy.url}${path}`, { headers: { accept: 'application/json' } })
    t.equal(bad.status, 520, `${path}: 520 (got ${bad.status})`)
    t.notOk(bad.body.includes('smuggled'), `${path}: nothing of the bad response reached the client`)
    t.notOk(bad.body.includes(`:${origin.port}`), `${path}: the error page does not name the origin's address`)
    const failure = await proxy.waitForLog(failureFor(rayOf(bad)))
    t.equal(failure.cause, 'invalid', `${path}: logged as an invalid response (${String(failure.error?.code)})`)
    const badConn = origin.requests.at(-1)?.conn
    const next = await get(`${proxy.url}/after${path}`)
    t.equal(next.status, 200, `${path}: the next request is served`)
    t.equal(next.body, `fine ${origin.requests.at(-1)?.conn ?? '?'}`)
    t.not(origin.requests.at(-1)?.conn, badConn, `${path}: the next request did not go over the connection that carried the bad response`)
    t.ok(origin.connections() > before, `${path}: it went over a new connection (${before} → ${origin.connections()})`)
    t.notOk(origin.requests.some(r => r.url === '/smuggled'), `${path}: no smuggled request`)
  }
})

t.test('an origin that trickles its body slower than body_idle: the client connection is cut, the failure logged as truncated', async t => {
  const origin = await scriptedOrigin((_req, socket) => {
    // The head and a first chunk at once, so the status is on the wire; then a byte every 600 ms.
    socket.write('HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 100\r\n\r\nfirst')
    let sent = 5
    const timer = setInterval(() => {
      if (socket.destroyed || sent === 100) { clearInterval(timer); return }
      socket.write('x')
      sent++
    }, 600)
    socket.once('close', () => clearInterval(timer))
  })
  t.teardown(() => origin.close())
  const proxy = await startProxy({ origin: origin.url, timeouts: { body_idle: '300ms', response: '2s' } })
  t.teardown(() => proxy.close())

  const t0 = performance.now()
  const outcome = await new Promise<{ head: string, bodyBytes: number, ended: 'clean' | 'cut' }>(resolve => {
    const socket = net.connect({ host: '127.0.0.1', port: proxy.port }, () =>
      socket.write('GET /trickle HTTP/1.1\r\nhost: a.test\r\nconnection: close\r\n\r\n'))
    let text = ''
    socket.on('data', d => { text += d.toString('latin1') })
    socket.on('error', () => {})
    socket.on('close', () => {
      const end = text.indexOf('\r\n\r\n')
      resolve({ head: text.slice(0, Math.max(0, end)), bodyBytes: end === -1 ? 0 : text.length - end - 4, ended: 'cut' })
    })
    setTimeout(() => socket.destroy(), 4000).unref()
  })
  const ms = performance.now() - t0
  t.comment(`the client got ${outcome.head.length} bytes of head and ${outcome.bodyBytes} of body; closed after ${ms.toFixed(0)} ms`)
  t.match(outcome.head, /^HTTP\/1\.1 200/, 'the status was already sent')
  t.match(outcome.head, /content-length: 100/i, 'with the declared length')
  t.ok(outcome.bodyBytes < 100, `the client got a short body (${outcome.bodyBytes} of 100) and a closed connection`)
  t.ok(ms < 3000, `cut off after ${ms.toFixed(0)} ms, not after the 60 s trickle`)
  const failure = await proxy.waitForLog(l => l.msg === 'origin failure', 1000).catch(() => ({} as Record<string, any>))
  t.equal(failure.truncated, true, 'failure line: truncated')
  t.equal(failure.phase, 'body', 'failure line: phase body')
  t.comment(`failure: ${String(failure.edge_status)} ${String(failure.error?.code)}: ${String(failure.why)}`)
  await sleep(100)
  t.equal(origin.open(), 0, 'the origin connection was closed too')
})

t.test('an origin that sends its head, then resets before the first body byte: the client is told (520), not left with nothing', async t => {
  const origin = await scriptedOrigin((_req, socket) => {
    socket.write('HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 100\r\n\r\n')
    setTimeout(() => socket.resetAndDestroy(), 100)
  })
  t.teardown(() => origin.close())
  const proxy = await startProxy({ origin: origin.url, timeouts: { response: '2s' } })
  t.teardown(() => proxy.close())
  const text = await new Promise<string>(resolve => {
    const socket = net.connect({ host: '127.0.0.1', port: proxy.port }, () =>
      socket.write('GET /head-then-reset HTTP/1.1\r\nhost: a.test\r\nconnection: close\r\n\r\n'))
    let out = ''
    socket.on('data', d => { out += d.toString('latin1') })
    socket.on('error', () => {})
    socket.on('close', () => resolve(out))
    setTimeout(() => socket.destroy(), 3000).unref()
  })
  const access = await proxy.waitForLog(l => l.msg === 'access' && l.path === '/head-then-reset')
  t.comment(`the client got ${JSON.stringify(text.slice(0, 40))}; the access line says ${String(access.status)}`)
  // No body byte had left the proxy, and Node had not flushed the head either: an edge
  // status can still be sent.
  t.match(text, /^HTTP\/1\.1 520 /, 'the client gets a 520 (nothing of the 200 was on the wire)')
  t.equal(access.status, Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0), 'the access line has the status the client really got')
})

t.test('an endless origin body to a slow reader: backpressure keeps memory bounded', async t => {
  const CHUNK = Buffer.alloc(256 * 1024, 120)
  let written = 0
  const origin = await scriptedOrigin((_req, socket) => {
    socket.write('HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ntransfer-encoding: chunked\r\n\r\n')
    const frame = Buffer.concat([Buffer.from(`${CHUNK.length.toString(16)}\r\n`), CHUNK, Buffer.from('\r\n')])
    // As fast as the socket takes it: the origin itself honours backpressure, so any growth
    // is the proxy's (it runs in this process).
    const pump = (): void => {
      while (!socket.destroyed) {
        written += frame.length
        if (!socket.write(frame)) { socket.once('drain', pump); return }
      }
    }
    pump()
  })
  t.teardown(() => origin.close())
  const proxy = await startProxy({ origin: origin.url, timeouts: { body_idle: '5s' } })
  t.teardown(() => proxy.close())

  const open = (): Promise<net.Socket> => new Promise(resolve => {
    const socket = net.connect({ host: '127.0.0.1', port: proxy.port }, () => {
      socket.write('GET /forever HTTP/1.1\r\nhost: a.test\r\n\r\n')
      resolve(socket)
    })
    socket.on('error', () => {})
  })

  // Control: a fast reader, for 500 ms, shows how much the origin can push through.
  const fast = await open()
  let fastBytes = 0
  fast.on('data', (d: Buffer) => { fastBytes += d.length })
  await sleep(500)
  fast.destroy()
  const perSecond = fastBytes * 2
  t.ok(fastBytes > 1024 * 1024, `the stream flows to a fast reader (${(perSecond / 2 ** 20).toFixed(0)} MiB/s)`)
  await sleep(200)

  // The slow reader: 16 KiB every 50 ms (320 KiB/s).
  const rssBefore = process.memoryUsage().rss
  const writtenBefore = written
  const slow = await open()
  slow.pause()
  let slowBytes = 0
  let peak = rssBefore
  const reader = setInterval(() => {
    const chunk = slow.read(16 * 1024) as Buffer | null
    if (chunk !== null) slowBytes += chunk.length
    peak = Math.max(peak, process.memoryUsage().rss)
  }, 50)
  await sleep(2000)
  clearInterval(reader)
  peak = Math.max(peak, process.memoryUsage().rss)
  const pushed = written - writtenBefore
  const growth = peak - rssBefore
  t.comment(`slow reader: read ${(slowBytes / 2 ** 10).toFixed(0)} KiB; origin wrote ${(pushed / 2 ** 20).toFixed(1)} MiB; ` +
    `unbounded it could have sent ~${(perSecond * 2 / 2 ** 20).toFixed(0)} MiB; RSS growth ${(growth / 2 ** 20).toFixed(1)} MiB`)
  t.ok(slowBytes > 0, 'the slow reader does get data')
  t.ok(pushed < 64 * 2 ** 20, `the origin was held back: it wrote ${(pushed / 2 ** 20).toFixed(1)} MiB in 2 s`)
  t.ok(growth < 64 * 2 ** 20, `RSS grew ${(growth / 2 ** 20).toFixed(1)} MiB (< 64 MiB)`)

  // The client leaves: the endless origin request is abandoned too.
  slow.destroy()
  const until = performance.now() + 2000
  while (origin.open() > 0 && performance.now() < until) await sleep(50)
  t.equal(origin.open(), 0, 'the origin connections were closed when the clients left')
})

t.test('an origin that closes keep-alive sockets at the wrong moment', async t => {
  t.test('Connection: keep-alive, then FIN right after the answer: every sequential GET succeeds', async t => {
    const origin = await scriptedOrigin((req, socket) => { socket.end(ok(`fine ${req.conn}`)) })
    t.teardown(() => origin.close())
    const proxy = await startProxy({ origin: origin.url, timeouts: { response: '2s' } })
    t.teardown(() => proxy.close())
    const statuses: number[] = []
    for (let i = 0; i < 20; i++) statuses.push((await get(`${proxy.url}/seq/${i}`)).status)
    t.same(statuses, Array(20).fill(200), `all 200 (got ${JSON.stringify(statuses)})`)
    t.equal(origin.requests.length, 20, 'each request reached the origin exactly once')
    t.equal(new Set(origin.requests.map(r => r.conn)).size, 20, 'each on a fresh connection: no write to a closed socket')
  })

  t.test('FIN with no answer when the next request arrives on a kept-alive socket (its idle timeout fired)', async t => {
    // Each connection answers its first request, and closes without a byte on the second:
    // what an origin whose keep-alive timeout fires as the request arrives does.
    const origin = await scriptedOrigin((req, socket) => {
      if (origin.requests.filter(r => r.conn === req.conn).length === 1) socket.write(ok(`fine ${req.conn}`))
      else socket.end()
    })
    t.teardown(() => origin.close())
    const proxy = await startProxy({ origin: origin.url, timeouts: { response: '2s' } })
    t.teardown(() => proxy.close())
    const results: Array<{ method: string, status: number }> = []
    // Pairs on one connection each: the second request of each pair meets the close
    // (once a GET, then twice a POST).
    const methods = ['GET', 'GET', 'GET', 'POST', 'GET', 'POST']
    for (let i = 0; i < methods.length; i++) {
      const method = methods[i] as string
      const res = await get(`${proxy.url}/race/${i}`, { method, body: method === 'POST' ? 'once' : undefined })
      results.push({ method, status: res.status })
    }
    t.comment(`statuses: ${results.map(r => `${r.method} ${r.status}`).join(', ')}; origin saw ${origin.requests.map(r => `${r.method} ${r.url}@${r.conn}`).join(', ')}`)
    for (const r of results) {
      t.ok(r.status === 200 || r.status === 520 || r.status === 502, `${r.method}: 200 (retried on a fresh socket) or 520/502, never a hang or 500 (${r.status})`)
    }
    // Request bytes were written to the dead socket: a POST must never be sent twice.
    for (let i = 0; i < methods.length; i++) {
      if (methods[i] !== 'POST') continue
      const times = origin.requests.filter(r => r.url === `/race/${i}`).length
      t.equal(times, 1, `POST /race/${i} reached the origin once: never replayed after its bytes were written (status ${String(results[i]?.status)})`)
    }
    t.equal((await get(`${proxy.url}/after`)).status, 200, 'the proxy keeps serving')
  })
})

t.test('response headers never disclose the origin', async t => {
  const origin = await scriptedOrigin((req, socket) => {
    const self = `http://127.0.0.1:${origin.port}`
    const headers = req.url === '/redirect'
      ? `location: ${self}/next?a=1\r\ncontent-location: ${self}/here\r\n`
      : req.url === '/relative'
        ? 'location: /next\r\n'
        : 'location: https://elsewhere.example/x\r\n'
    socket.write(`HTTP/1.1 302 Found\r\n${headers}server: Apache/2.4 (internal-host-7)\r\nx-powered-by: PHP/5.4 internal-host-7\r\ncontent-length: 0\r\n\r\n`)
  })
  t.teardown(() => origin.close())
  const proxy = await startProxy({ origin: origin.url })
  t.teardown(() => proxy.close())

  const res = await get(`${proxy.url}/redirect`, { headers: { host: 'shop.test' } })
  t.equal(res.status, 302)
  t.equal(res.headers.location, 'http://shop.test/next?a=1', `Location is rewritten to the client's host (got ${String(res.headers.location)})`)
  t.equal(res.headers['content-location'], 'http://shop.test/here', `Content-Location too (got ${String(res.headers['content-location'])})`)
  t.equal(res.headers.server, 'highproxy', `Server is the proxy's own (got ${String(res.headers.server)})`)
  const leaks = Object.entries(res.headers).filter(([, v]) => String(v).includes(`127.0.0.1:${origin.port}`) || String(v).includes(`:${origin.port}/`))
  t.same(leaks, [], 'no response header names the origin address')
  const server = Object.entries(res.headers).filter(([n]) => n.toLowerCase() === 'server')
  t.equal(server.length, 1, 'exactly one Server header')

  const relative = await get(`${proxy.url}/relative`, { headers: { host: 'shop.test' } })
  t.equal(relative.headers.location, '/next', 'a relative Location is left alone')
  const elsewhere = await get(`${proxy.url}/elsewhere`, { headers: { host: 'shop.test' } })
  t.equal(elsewhere.headers.location, 'https://elsewhere.example/x', 'a Location to another site is left alone')
  t.equal(elsewhere.headers.server, 'highproxy')
  const access = await proxy.waitForLog(accessFor(rayOf(res)))
  t.equal(access.status, 302)
})

t.test('a status line with a control byte, DEL, NUL or a non-Latin-1 character: 520 invalid, and the connection lives on', async t => {
  const reasons: Record<string, Buffer> = {
    control: Buffer.from('O\u0001K', 'latin1'),
    del: Buffer.from('O\u007fK', 'latin1'),
    nul: Buffer.from('O\u0000K', 'latin1'),
    emoji: Buffer.from('OK \u{1F600}', 'utf8')
  }
  const origin = await scriptedOrigin((req, socket) => {
    const reason = reasons[req.url.slice(1)]
    if (reason === undefined) { socket.write(ok('fine')); return }
    socket.write(Buffer.concat([Buffer.from('HTTP/1.1 200 '), reason, Buffer.from('\r\ncontent-length: 2\r\n\r\nok')]))
  })
  const proxy = await startProxy({ origin: origin.url })
  t.teardown(async () => { await proxy.close(); await origin.close() })
  for (const name of Object.keys(reasons)) {
    // Two requests pipelined on one client connection: the bad answer, then a good one.
    const answers = await new Promise<string>(resolve => {
      let text = ''
      const socket = net.connect({ host: '127.0.0.1', port: proxy.port }, () =>
        socket.write(`GET /${name} HTTP/1.1\r\nhost: bad.test\r\naccept: application/json\r\n\r\nGET /fine HTTP/1.1\r\nhost: bad.test\r\nconnection: close\r\n\r\n`))
      socket.on('data', d => { text += d.toString('latin1') })
      socket.on('close', () => resolve(text))
    })
    const statuses = [...answers.matchAll(/HTTP\/1\.1 (\d{3})/g)].map(m => m[1])
    t.same(statuses, ['520', '200'], `${name}: 520, then the pipelined request still gets its answer`)
    const headEnd = answers.indexOf('\r\n\r\n')
    const length = Number(/content-length: (\d+)/i.exec(answers.slice(0, headEnd))?.[1])
    const body = JSON.parse(answers.slice(headEnd + 4, headEnd + 4 + length)) as { error_name?: string }
    t.equal(body.error_name, 'unknown_error', `${name}: the 520 page`)
    const ray = /cf-ray: ([0-9a-f]{16})/.exec(answers)?.[1] ?? ''
    const failure = await proxy.waitForLog(failureFor(ray))
    t.match(failure, { edge_status: 520, cause: 'invalid', classified: true }, `${name}: logged as an invalid response`)
    t.equal((await proxy.waitForLog(accessFor(ray))).status, 520, `${name}: and the access line says 520`)
  }
})
