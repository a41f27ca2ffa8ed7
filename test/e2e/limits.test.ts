// Client-side limits, attacked over raw sockets: header count and size (431), URL length
// (414), body size globally and per route (413, declared or streamed), slowloris timeouts,
// connection caps (429/503 with Retry-After), and what reflected values can do to the
// error pages and the log.
//
// test/helpers.ts's startProxy() hands buildServer() only the edge config, so the
// client limits of the config (header bytes, timeouts, connection caps) would be the
// defaults there: this file starts its proxies with the config's client limits, the way
// the CLI is meant to, and one test checks that the CLI really does.

import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { Writable } from 'node:stream'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { resolve, validate } from '../../src/config/load.js'
import { refusedOrigin } from '../../src/lab/faults.js'
import { createLogger } from '../../src/log/log.js'
import { buildServer } from '../../src/listen/server.js'
import { parseAnswer, raw, type Answer } from '../raw-client.js'

type LogLine = Record<string, any>

interface Proxy {
  port: number
  /** Everything the logger wrote, as written. */
  text: () => string
  /** The lines, parsed (a line that is not JSON throws). */
  logs: () => LogLine[]
  close: () => Promise<void>
}

/** A proxy built from a config-file-shaped object, client limits included. */
async function start (raw: Record<string, unknown>): Promise<Proxy> {
  const config = resolve(validate(raw), false)
  let text = ''
  const sink = new Writable({ write (chunk: Buffer, _enc, cb) { text += chunk.toString(); cb() } })
  const app = await buildServer(config.edge, createLogger('info', 'json', sink), config.client)
  await app.listen({ host: '127.0.0.1', port: 0 })
  return {
    port: (app.server.address() as net.AddressInfo).port,
    text: () => text,
    logs: () => text.split('\n').filter(l => l !== '').map(l => JSON.parse(l) as LogLine),
    close: () => app.close()
  }
}

const accessLines = (p: Proxy): LogLine[] => p.logs().filter(l => l.msg === 'access')
const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))

/** Access lines after the first `before`, once no new one came for 200 ms. */
async function newAccess (p: Proxy, before: number): Promise<LogLine[]> {
  let count = accessLines(p).length
  for (let quiet = 0; quiet < 4;) {
    await sleep(50)
    const now = accessLines(p).length
    if (now === count) quiet += now > before ? 2 : 1
    else { count = now; quiet = 0 }
  }
  return accessLines(p).slice(before)
}

/** Milliseconds this process's event loop was late since the call (a loaded box, not the proxy). */
function stallWatch (): () => number {
  const h = monitorEventLoopDelay({ resolution: 10 })
  h.enable()
  return () => { h.disable(); return h.count === 0 ? 0 : Math.max(0, h.count * (h.mean / 1e6 - 10)) }
}

interface Origin {
  url: string
  /** Bytes received on all connections (head and body). */
  bytes: () => number
  /** Requests whose body arrived whole, with the body size. */
  complete: Array<{ url: string, bodyBytes: number }>
  /** Requests whose headers arrived. */
  started: () => number
  /** Body bytes received by requests that never completed. */
  partialBody: () => number
  close: () => Promise<void>
}

/** An http origin that counts every byte it receives and answers 200 with the body size. */
async function countingOrigin (): Promise<Origin> {
  let bytes = 0
  let started = 0
  let partial = 0
  const complete: Origin['complete'] = []
  const sockets = new Set<net.Socket>()
  const server = http.createServer((req, res) => {
    started++
    let n = 0
    req.on('data', (c: Buffer) => { n += c.length; partial += c.length })
    req.on('end', () => {
      partial -= n
      complete.push({ url: req.url ?? '', bodyBytes: n })
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ bodyBytes: n }))
    })
    req.on('error', () => {})
  })
  server.on('connection', (s: net.Socket) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
    s.on('data', (d: Buffer) => { bytes += d.length })
  })
  await new Promise<void>(resolve => server.listen({ host: '127.0.0.1', port: 0 }, resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    bytes: () => bytes,
    complete,
    started: () => started,
    partialBody: () => partial,
    close: () => new Promise(resolve => { for (const s of sockets) s.destroy(); server.close(() => resolve()) })
  }
}

const GET = (path: string, extra = ''): string => `GET ${path} HTTP/1.1\r\nhost: a.test\r\n${extra}connection: close\r\n\r\n`

t.test('431 / 414 / 413: refused before the origin sees a byte, each with its access line', async t => {
  const origin = await countingOrigin()
  t.teardown(() => origin.close())
  const proxy = await start({
    routes: [{ origin: origin.url }],
    limits: { max_header_count: 20, max_request_header_size: 2048, max_url_length: 256, max_body_size: 1024 }
  })
  t.teardown(() => proxy.close())

  const many = Array.from({ length: 25 }, (_, i) => `x-h${i}: ${i}\r\n`).join('')
  const cases: Array<[string, string, number]> = [
    ['25 headers > max_header_count 20', GET('/many', many), 431],
    ['3000 bytes of headers > max_request_header_size 2048', GET('/big', `x-big: ${'b'.repeat(3000)}\r\n`), 431],
    ['a 300-byte URL > max_url_length 256', GET(`/${'u'.repeat(300)}`), 414],
    ['Content-Length 5000 > max_body_size 1024 (no body sent yet)', 'POST /cl HTTP/1.1\r\nhost: a.test\r\ncontent-length: 5000\r\n\r\n', 413]
  ]
  for (const [name, data, status] of cases) {
    const before = accessLines(proxy).length
    const answer = await raw(proxy.port, data)
    t.equal(answer.status, status, `${name}: ${status} (got ${String(answer.status)})`)
    t.equal(origin.bytes(), 0, `${name}: the origin received nothing`)
    const lines = await newAccess(proxy, before)
    t.same(lines.map(l => l.status), [status], `${name}: one access line with ${status} (got ${JSON.stringify(lines.map(l => l.status))})`)
  }

  // Just under each limit: served.
  const under = Array.from({ length: 15 }, (_, i) => `x-h${i}: ${i}\r\n`).join('')
  t.equal((await raw(proxy.port, GET('/ok', under))).status, 200, '17 headers pass')
  t.equal((await raw(proxy.port, GET(`/${'u'.repeat(200)}`))).status, 200, 'a 201-byte URL passes')
  const body = 'x'.repeat(1024)
  const post = await raw(proxy.port, `POST /body HTTP/1.1\r\nhost: a.test\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`)
  t.equal(post.status, 200, 'a body of exactly max_body_size passes')
  t.equal(JSON.parse(post.body).bodyBytes, 1024)
})

t.test('a chunked body that grows past max_body_size while streaming', async t => {
  const origin = await countingOrigin()
  t.teardown(() => origin.close())
  const proxy = await start({ routes: [{ origin: origin.url }], limits: { max_body_size: 1024 } })
  t.teardown(() => proxy.close())

  const before = accessLines(proxy).length
  const answer = await new Promise<Answer & { chunksSent: number }>(resolve => {
    const socket = net.connect({ host: '127.0.0.1', port: proxy.port })
    let out = ''
    let sent = 0
    let closed = false
    let timer: NodeJS.Timeout | undefined
    const tick = (): void => {
      if (socket.destroyed || sent === 32) return
      sent++
      socket.write(`100\r\n${'c'.repeat(256)}\r\n`)
      timer = setTimeout(tick, 25)
    }
    socket.on('connect', () => {
      socket.write('POST /chunked HTTP/1.1\r\nhost: a.test\r\ntransfer-encoding: chunked\r\n\r\n')
      tick()
    })
    socket.on('data', d => { out += d.toString() })
    socket.on('end', () => { closed = true })
    socket.on('error', () => {})
    socket.on('close', () => { clearTimeout(timer); resolve({ ...parseAnswer(out, closed), chunksSent: sent }) })
    setTimeout(() => socket.destroy(), 5000).unref()
  })
  // What this implementation does: the body is forwarded as it comes, counted, and cut at
  // the first chunk past the limit; the client gets a 413 page and the connection is closed.
  t.equal(answer.status, 413, `the client gets 413 (got ${String(answer.status)})`)
  t.ok(answer.closed, 'and the connection is closed (the rest of the body is not read)')
  t.ok(answer.chunksSent < 32, `the client was stopped before sending it all (${answer.chunksSent} of 32 chunks of 256 bytes)`)
  t.equal(origin.complete.length, 0, 'the origin never got a complete request')
  t.ok(origin.partialBody() <= 1024, `the origin got at most max_body_size bytes of it (${origin.partialBody()})`)
  const lines = await newAccess(proxy, before)
  t.same(lines.map(l => l.status), [413], 'one access line with 413')
  t.equal(proxy.logs().filter(l => l.msg === 'origin failure').length, 0, 'not logged as an origin failure')
  t.equal((await raw(proxy.port, GET('/after'))).status, 200, 'the proxy serves the next request')
})

t.test('max_body_size per route overrides the global limit', async t => {
  const origin = await countingOrigin()
  t.teardown(() => origin.close())
  const proxy = await start({
    routes: [
      { path: '/small', origin: origin.url, max_body_size: 100 },
      { path: '/large', origin: origin.url, max_body_size: 8192 },
      { path: '/unlimited', origin: origin.url, max_body_size: 0 },
      { path: '/', origin: origin.url }
    ],
    limits: { max_body_size: 1024 }
  })
  t.teardown(() => proxy.close())
  const post = (path: string, size: number, chunked = false): Promise<Answer> => raw(proxy.port, chunked
    ? `POST ${path} HTTP/1.1\r\nhost: a.test\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n${size.toString(16)}\r\n${'p'.repeat(size)}\r\n0\r\n\r\n`
    : `POST ${path} HTTP/1.1\r\nhost: a.test\r\ncontent-length: ${size}\r\nconnection: close\r\n\r\n${'p'.repeat(size)}`)
  t.equal((await post('/small', 200)).status, 413, '/small (100): 200 bytes → 413')
  t.equal((await post('/small', 200, true)).status, 413, '/small (100): 200 chunked bytes → 413')
  t.equal((await post('/small', 100)).status, 200, '/small (100): 100 bytes → 200')
  t.equal((await post('/large', 5000)).status, 200, '/large (8192): 5000 bytes → 200 although the global limit is 1024')
  t.equal((await post('/large', 5000, true)).status, 200, '/large (8192): 5000 chunked bytes → 200')
  t.equal((await post('/large', 9000)).status, 413, '/large (8192): 9000 bytes → 413')
  t.equal((await post('/unlimited', 20000)).status, 200, '/unlimited (0 = no limit): 20000 bytes → 200')
  t.equal((await post('/other', 2000)).status, 413, 'other paths: the global 1024 → 413')
  t.equal((await post('/other', 2000, true)).status, 413, 'other paths: 2000 chunked bytes → 413')
  t.same(origin.complete.map(c => `${c.url}:${c.bodyBytes}`).sort(),
    ['/large:5000', '/large:5000', '/small:100', '/unlimited:20000'], 'only the allowed bodies reached the origin whole')
})

t.test('slowloris: headers, body and idle keep-alive are all cut off', async t => {
  const origin = await countingOrigin()
  t.teardown(() => origin.close())
  const proxy = await start({
    routes: [{ origin: origin.url }],
    timeouts: { client_headers: '1s', client_request: '2s', client_keep_alive: '1s' }
  })
  t.teardown(() => proxy.close())
  const stall = stallWatch()

  /** Opens a connection, runs `feed` on it, and says when and how it ended. */
  const watch = (feed: (s: net.Socket) => void): Promise<{ ms: number, text: string, stillFeeding: boolean }> =>
    new Promise(resolve => {
      const t0 = performance.now()
      const socket = net.connect({ host: '127.0.0.1', port: proxy.port }, () => feed(socket))
      let text = ''
      socket.on('data', d => { text += d.toString() })
      socket.on('error', () => {})
      socket.on('close', () => resolve({ ms: performance.now() - t0, text, stillFeeding: true }))
      setTimeout(() => socket.destroy(), 8000).unref()
    })
  const trickle = (socket: net.Socket, bytes: string, everyMs: number): void => {
    let i = 0
    const timer = setInterval(() => {
      if (socket.destroyed || i >= bytes.length) { clearInterval(timer); return }
      socket.write(bytes[i++] as string)
    }, everyMs)
    socket.once('close', () => clearInterval(timer))
  }

  const head = `GET /slow HTTP/1.1\r\nhost: a.test\r\nx-pad: ${'p'.repeat(200)}\r\n\r\n`
  const [headers, body, idle] = await Promise.all([
    // One header byte every 200 ms: 40+ s to finish, client_headers is 1 s.
    watch(s => trickle(s, head, 200)),
    // Headers at once, then one body byte every 200 ms: client_request is 2 s.
    watch(s => { s.write('POST /slow-body HTTP/1.1\r\nhost: a.test\r\ncontent-length: 100\r\n\r\n'); trickle(s, 'b'.repeat(100), 200) }),
    // A complete request, then nothing: client_keep_alive is 1 s.
    watch(s => s.write('GET /idle HTTP/1.1\r\nhost: a.test\r\n\r\n'))
  ])
  const late = stall()
  t.comment(`cut after: headers ${headers.ms.toFixed(0)} ms, body ${body.ms.toFixed(0)} ms, idle ${idle.ms.toFixed(0)} ms (loop stall ${late.toFixed(0)} ms)`)

  t.ok(headers.ms >= 900, `the header trickler was allowed its 1 s (${headers.ms.toFixed(0)} ms)`)
  t.ok(headers.ms < 3000 + late, `the header trickler was cut off within ~3 s (${headers.ms.toFixed(0)} ms)`)
  t.ok(headers.text === '' || headers.text.startsWith('HTTP/1.1 408'), `and got 408 or a closed connection (${JSON.stringify(headers.text.slice(0, 12))})`)

  t.ok(body.ms >= 1900, `the body trickler was allowed its 2 s (${body.ms.toFixed(0)} ms)`)
  t.ok(body.ms < 4000 + late, `the body trickler was cut off within ~4 s (${body.ms.toFixed(0)} ms)`)
  t.ok(!/^HTTP\/1\.1 2/.test(body.text), `and got no 2xx (${JSON.stringify(body.text.slice(0, 12))})`)
  t.equal(origin.complete.filter(c => c.url === '/slow-body').length, 0, 'the trickled body never completed at the origin')

  t.match(idle.text, /^HTTP\/1\.1 200/, 'the idle keep-alive connection got its answer')
  t.ok(idle.ms >= 900 && idle.ms < 3000 + late, `then was closed after client_keep_alive 1 s (${idle.ms.toFixed(0)} ms)`)
  t.equal((await raw(proxy.port, GET('/after'))).status, 200, 'the proxy still serves')
})

/** Opens `n` idle connections and waits until each is established. */
async function hold (port: number, n: number): Promise<net.Socket[]> {
  return Promise.all(Array.from({ length: n }, () => new Promise<net.Socket>((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => resolve(s))
    s.on('error', reject)
  })))
}

/** Retries a request until it is served (the server sees closed connections a little later). */
async function servedWithin (port: number, ms: number): Promise<Answer> {
  const until = performance.now() + ms
  for (;;) {
    const a = await raw(port, GET('/again'))
    if (a.status === 200 || performance.now() > until) return a
    await sleep(50)
  }
}

t.test('max_connections_per_ip: 2 → the third concurrent connection gets 429 with Retry-After', async t => {
  const origin = await countingOrigin()
  t.teardown(() => origin.close())
  const proxy = await start({ routes: [{ origin: origin.url }], limits: { max_connections_per_ip: 2 } })
  t.teardown(() => proxy.close())
  const held = await hold(proxy.port, 2)
  await sleep(50)
  const third = await raw(proxy.port, GET('/third'), 1000)
  t.equal(third.status, 429, `429 (got ${String(third.status)})`)
  t.match(third.headers['retry-after'], /^\d+$/, `with Retry-After (${String(third.headers['retry-after'])})`)
  t.ok(third.closed, 'and the connection is closed')
  t.equal(origin.started(), 0, 'nothing was forwarded')
  // The two held connections are served normally.
  held[0]?.write(GET('/held'))
  const heldAnswer = await new Promise<string>(resolve => {
    let out = ''
    held[0]?.on('data', d => { out += d.toString() })
    held[0]?.on('close', () => resolve(out))
  })
  t.match(heldAnswer, /^HTTP\/1\.1 200/, 'a held connection is served')
  for (const s of held) s.destroy()
  t.equal((await servedWithin(proxy.port, 2000)).status, 200, 'once they close, new connections are served')
})

t.test('max_connections: 3 → the 4th connection gets 503 with Retry-After, and service resumes', async t => {
  const origin = await countingOrigin()
  t.teardown(() => origin.close())
  const proxy = await start({ routes: [{ origin: origin.url }], limits: { max_connections: 3 } })
  t.teardown(() => proxy.close())
  const held = await hold(proxy.port, 3)
  await sleep(50)
  const fourth = await raw(proxy.port, GET('/fourth'), 1000)
  t.equal(fourth.status, 503, `503 (got ${String(fourth.status)})`)
  t.match(fourth.headers['retry-after'], /^\d+$/, `with Retry-After (${String(fourth.headers['retry-after'])})`)
  t.ok(fourth.closed, 'and the connection is closed')
  t.equal(origin.started(), 0, 'nothing was forwarded')
  for (const s of held) s.destroy()
  const again = await servedWithin(proxy.port, 2000)
  t.equal(again.status, 200, 'after the held connections close, the proxy serves normally')
  // And it did not count the refused connection as open: three more fit again.
  const next = await hold(proxy.port, 2)
  t.equal((await raw(proxy.port, GET('/third-of-three'))).status, 200, 'two held + one new: served')
  for (const s of next) s.destroy()
})

t.test('reflected values: escaped in the error pages, never a forged log line', async t => {
  const refused = await refusedOrigin()
  const proxy = await start({ routes: [{ host: '*', path: '/down', origin: refused.url }, { host: 'a.test', origin: refused.url }] })
  t.teardown(() => proxy.close())
  const evilHost = '"><script>alert(1)</script>'
  const ask = (path: string, accept: string): Promise<Answer> =>
    raw(proxy.port, `GET ${path} HTTP/1.1\r\nhost: ${evilHost}\r\naccept: ${accept}\r\nconnection: close\r\n\r\n`)

  // Not a valid Host, so refused before routing (400), on every path; its page still shows it.
  for (const [path, status] of [['/down', 400], ['/nowhere', 400]] as const) {
    const html = await ask(path, 'text/html')
    t.equal(html.status, status, `${path}: ${status}`)
    t.match(html.headers['content-type'], /^text\/html/)
    t.notOk(html.body.includes('<script>'), `${path} HTML: no live <script>`)
    t.notOk(html.body.includes('"><script'), `${path} HTML: the quote cannot close an attribute`)
    t.ok(html.body.includes('&quot;&gt;&lt;script'), `${path} HTML: the quote is escaped too`)
    t.ok(html.body.includes('&lt;script&gt;alert(1)&lt;/script&gt;'), `${path} HTML: the host is shown, escaped`)
    const md = await ask(path, 'text/markdown')
    t.match(md.headers['content-type'], /^text\/markdown/)
    t.notOk(md.body.includes('<script>'), `${path} Markdown: no raw <script>`)
    const json = await ask(path, 'application/json')
    t.notOk(json.body.includes('<script>'), `${path} JSON: < and > are escaped`)
    t.equal(JSON.parse(json.body).zone, evilHost, `${path} JSON: and it still decodes to the host as sent`)
  }

  // Log forging: an encoded CRLF in the path, raw U+2028/U+2029 (as UTF-8) in the path
  // and in headers that are logged, and a fake JSON line. One line per request, each JSON.
  const forged = '{"msg":"access","status":200,"path":"/forged"}'
  const requests = [
    `GET /down/%0d%0a${encodeURIComponent(forged)} HTTP/1.1\r\nhost: a.test\r\nconnection: close\r\n\r\n`,
    `GET /down/%0a%0d%0A HTTP/1.1\r\nhost: a.test\r\nconnection: close\r\n\r\n`,
    `GET /down/\u2028x\u2029 HTTP/1.1\r\nhost: a.test\r\nconnection: close\r\n\r\n`,
    `GET /down HTTP/1.1\r\nhost: a\u2028${forged}\r\nconnection: close\r\n\r\n`,
    `GET /down HTTP/1.1\r\nhost: a.test\r\nuser-agent: x\u2028${forged}\u2029\r\nx-forwarded-for: 1.2.3.4\u2028\r\nconnection: close\r\n\r\n`,
    `GET /down/\\u000a HTTP/1.1\r\nhost: a.test\\n${forged}\r\nconnection: close\r\n\r\n`
  ]
  const before = accessLines(proxy).length
  const statuses: Array<number | null> = []
  for (const r of requests) statuses.push((await raw(proxy.port, Buffer.from(r, 'utf8'))).status)
  t.comment(`statuses: ${JSON.stringify(statuses)}`)
  const access = await newAccess(proxy, before)
  t.ok(access.length <= requests.length, `no extra access line (${access.length} for ${requests.length} requests)`)
  t.equal(access.length, requests.length, `one access line per request (${access.length} for ${requests.length}; statuses ${JSON.stringify(statuses)})`)
  t.notOk(access.some(l => l.path === '/forged'), 'no forged access line')
  // Split the way a log shipper or a JS reader might: on every line terminator.
  const pieces = proxy.text().split(/\r\n|\r|\n|\u2028|\u2029|\u0085/).filter(l => l !== '')
  const bad = pieces.filter(p => { try { JSON.parse(p); return false } catch { return true } })
  t.same(bad, [], 'every piece of the log, split on any line terminator, is a whole JSON record')
})

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const CLI = join(ROOT, 'dist', 'cli.js')

t.test('the CLI applies the client limits of its config file', { skip: existsSync(CLI) ? false : 'dist/cli.js is missing: run `npm run build`' }, async t => {
  const origin = await countingOrigin()
  t.teardown(() => origin.close())
  const dir = mkdtempSync(join(tmpdir(), 'hpx-limits-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const config = join(dir, 'config.yaml')
  writeFileSync(config, [
    `origin: ${origin.url}`,
    'listen: { host: 127.0.0.1, port: 0 }',
    'admin: { enabled: false }',
    'limits: { max_request_header_size: 2048, max_connections_per_ip: 1 }',
    ''
  ].join('\n'))
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('HIGHPROXY_') && k !== 'NODE_OPTIONS'))
  const child = spawn(process.execPath, [CLI, '--config', config, '--log-format', 'json'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => { child.kill('SIGKILL') })
  const port = await new Promise<number>((resolve, reject) => {
    let out = ''
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString()
      const m = /"listen":"http:\/\/127\.0\.0\.1:(\d+)"/.exec(out)
      if (m !== null) resolve(Number(m[1]))
    })
    child.once('exit', code => reject(new Error(`the CLI exited (${String(code)})`)))
    setTimeout(() => reject(new Error('the CLI did not start in 10 s')), 10_000).unref()
  })
  const big = await raw(port, GET('/big', `x-big: ${'b'.repeat(3000)}\r\n`))
  t.equal(big.status, 431, `limits.max_request_header_size: 2048 → 3000 bytes of headers get 431 (got ${String(big.status)})`)
  // A served round trip on the held connection proves the proxy has counted it, and that
  // the 431 connection before it is gone from the count (the server sees closes a little
  // after the client does).
  const held: net.Socket[] = []
  for (let i = 0; i < 40 && held.length === 0; i++) {
    const [s] = await hold(port, 1)
    const first = await new Promise<string>(resolve => {
      s?.once('data', (d: Buffer) => resolve(d.toString()))
      s?.write('GET /held HTTP/1.1\r\nhost: a.test\r\n\r\n')
    })
    if (first.startsWith('HTTP/1.1 200') && s !== undefined) held.push(s)
    else { s?.destroy(); await sleep(50) }
  }
  const second = await raw(port, GET('/second'), 1000)
  t.equal(second.status, 429, `limits.max_connections_per_ip: 1 → a second connection gets 429 (got ${String(second.status)})`)
  for (const s of held) s.destroy()
})
