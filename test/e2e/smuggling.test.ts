// Request smuggling and routing tricks, with raw sockets on both sides: the client writes
// exact bytes, and the origin is a raw TCP server that records every byte it receives, so
// "the origin never saw a second request" is checked on the wire, not through a parser
// that might agree with the proxy's.

import net from 'node:net'
import t from 'tap'
import { startProxy, type LogLine, type TestProxy } from '../helpers.js'

interface SeenRequest { method: string, url: string, headers: Array<[string, string]>, body: Buffer }

interface RecordingOrigin {
  url: string
  /** Every byte received, all connections concatenated in arrival order. */
  bytes: () => Buffer
  /** Requests the origin's own (strict, minimal) parser framed. */
  requests: SeenRequest[]
  connections: () => number
  reset: () => void
  close: () => Promise<void>
}

/** `HTTP/1.1\r\n` occurrences: every request line ends so, whatever framing it hid in. */
const requestLines = (bytes: Buffer): number => bytes.toString('latin1').split('HTTP/1.1\r\n').length - 1

/**
 * A raw origin: frames requests by Content-Length or chunked, answers each with a small
 * keep-alive 200 naming the request, and records the bytes. Anything it cannot frame
 * is recorded and answered with nothing (the connection stays as it is).
 */
async function recordingOrigin (): Promise<RecordingOrigin> {
  const chunks: Buffer[] = []
  const requests: SeenRequest[] = []
  let connections = 0
  const sockets = new Set<net.Socket>()
  const server = net.createServer(socket => {
    connections++
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => {})
    let buf = Buffer.alloc(0)
    socket.on('data', (d: Buffer) => {
      chunks.push(d)
      buf = Buffer.concat([buf, d])
      for (;;) {
        const framed = frame(buf)
        if (framed === null) return
        buf = buf.subarray(framed.used)
        requests.push(framed.request)
        const body = `ok ${framed.request.method} ${framed.request.url}\n`
        socket.write(`HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`)
      }
    })
  })
  await new Promise<void>(resolve => server.listen({ host: '127.0.0.1', port: 0 }, resolve))
  const port = (server.address() as net.AddressInfo).port
  return {
    url: `http://127.0.0.1:${port}`,
    bytes: () => Buffer.concat(chunks),
    requests,
    connections: () => connections,
    reset: () => { chunks.length = 0; requests.length = 0 },
    close: () => new Promise(resolve => { for (const s of sockets) s.destroy(); server.close(() => resolve()) })
  }
}

/** One request framed from the start of `buf`, or null when more bytes are needed. */
function frame (buf: Buffer): { request: SeenRequest, used: number } | null {
  const end = buf.indexOf('\r\n\r\n')
  if (end === -1) return null
  const lines = buf.subarray(0, end).toString('latin1').split('\r\n')
  const [method = '', url = ''] = (lines[0] ?? '').split(' ')
  const headers = lines.slice(1).map(l => {
    const colon = l.indexOf(':')
    return [l.slice(0, colon).toLowerCase(), l.slice(colon + 1).trim()] as [string, string]
  })
  const te = headers.find(([n]) => n === 'transfer-encoding')?.[1]
  const cl = headers.find(([n]) => n === 'content-length')?.[1]
  let at = end + 4
  if (te !== undefined && /chunked$/i.test(te)) {
    const parts: Buffer[] = []
    for (;;) {
      const eol = buf.indexOf('\r\n', at)
      if (eol === -1) return null
      const size = parseInt(buf.subarray(at, eol).toString('latin1'), 16)
      if (Number.isNaN(size)) return null
      if (buf.length < eol + 2 + size + 2) return null
      parts.push(buf.subarray(eol + 2, eol + 2 + size))
      at = eol + 2 + size + 2
      if (size === 0) break
    }
    return { request: { method, url, headers, body: Buffer.concat(parts) }, used: at }
  }
  const length = cl === undefined ? 0 : Number(cl)
  if (buf.length < at + length) return null
  return { request: { method, url, headers, body: buf.subarray(at, at + length) }, used: at + length }
}

interface RawAnswer { text: string, statuses: number[], closed: boolean }

/**
 * Writes `data` on a fresh connection and collects everything until the proxy closes it
 * or `quietMs` pass without a byte (a keep-alive proxy that answered keeps it open).
 */
function rawRequest (port: number, data: string | Buffer, quietMs = 400): Promise<RawAnswer> {
  return new Promise(resolve => {
    const socket = net.connect({ host: '127.0.0.1', port }, () => socket.write(data))
    let out = ''
    let closed = false
    let timer = setTimeout(() => socket.destroy(), quietMs)
    const done = (): void => {
      clearTimeout(timer)
      const statuses = [...out.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map(m => Number(m[1]))
      resolve({ text: out, statuses, closed })
    }
    socket.on('data', d => {
      out += d.toString('latin1')
      clearTimeout(timer)
      timer = setTimeout(() => socket.destroy(), quietMs)
    })
    socket.on('end', () => { closed = true })
    socket.on('error', () => {})
    socket.on('close', done)
  })
}

const accessLines = (proxy: TestProxy): number => proxy.logs.filter(l => l.msg === 'access').length

/** Access lines written after the first `before` ones, once they stop arriving (200 ms quiet). */
async function newAccessLines (proxy: TestProxy, before: number): Promise<LogLine[]> {
  let count = accessLines(proxy)
  for (let quiet = 0; quiet < 4;) {
    await new Promise(resolve => setTimeout(resolve, 50))
    const now = accessLines(proxy)
    if (now === count && now > before) quiet += 2
    else if (now === count) quiet++
    else { count = now; quiet = 0 }
  }
  return proxy.logs.filter(l => l.msg === 'access').slice(before)
}

t.test('smuggling attempts: 4xx, and the origin never sees a request the proxy did not frame', async t => {
  const origin = await recordingOrigin()
  t.teardown(() => origin.close())
  const proxy = await startProxy({ routes: [{ host: 'a.test', origin: origin.url }] })
  t.teardown(() => proxy.close())

  const SMUGGLED = 'GET /smuggled HTTP/1.1\r\nhost: a.test\r\n\r\n'
  const cases: Array<{ name: string, data: string, status?: number }> = [
    {
      name: 'Content-Length and Transfer-Encoding together (CL.TE)',
      data: `POST /cl-te HTTP/1.1\r\nhost: a.test\r\ncontent-length: 6\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n${SMUGGLED}`
    },
    {
      name: 'Transfer-Encoding before Content-Length (TE.CL)',
      data: `POST /te-cl HTTP/1.1\r\nhost: a.test\r\ntransfer-encoding: chunked\r\ncontent-length: 4\r\n\r\n5c\r\n${SMUGGLED}\r\n0\r\n\r\n`
    },
    {
      name: 'two Content-Length headers, different values',
      data: `POST /two-cl HTTP/1.1\r\nhost: a.test\r\ncontent-length: 0\r\ncontent-length: ${SMUGGLED.length}\r\n\r\n${SMUGGLED}`
    },
    {
      name: 'two Content-Length headers, same value',
      data: `POST /two-cl-same HTTP/1.1\r\nhost: a.test\r\ncontent-length: 5\r\ncontent-length: 5\r\n\r\nhello`
    },
    {
      name: 'Content-Length list "5, 5"',
      data: `POST /cl-list HTTP/1.1\r\nhost: a.test\r\ncontent-length: 5, 5\r\n\r\nhello`
    },
    {
      name: 'Transfer-Encoding: chunked, identity',
      data: `POST /te-identity HTTP/1.1\r\nhost: a.test\r\ntransfer-encoding: chunked, identity\r\n\r\n0\r\n\r\n${SMUGGLED}`
    },
    {
      name: 'Transfer-Encoding:\\tchunked with a Content-Length',
      data: `POST /te-tab HTTP/1.1\r\nhost: a.test\r\ncontent-length: 6\r\ntransfer-encoding:\tchunked\r\n\r\n0\r\n\r\n${SMUGGLED}`
    },
    {
      name: 'Transfer-Encoding:  chunked (extra space) with a Content-Length',
      data: `POST /te-space HTTP/1.1\r\nhost: a.test\r\ncontent-length: 6\r\ntransfer-encoding:  chunked\r\n\r\n0\r\n\r\n${SMUGGLED}`
    },
    {
      name: 'Transfer-Encoding : chunked (space before the colon)',
      data: `POST /te-colon HTTP/1.1\r\nhost: a.test\r\ntransfer-encoding : chunked\r\n\r\n0\r\n\r\n${SMUGGLED}`
    },
    {
      name: 'Transfer-Encoding folded onto a continuation line (obs-fold)',
      data: `POST /te-fold HTTP/1.1\r\nhost: a.test\r\ntransfer-encoding: identity\r\n chunked\r\n\r\n0\r\n\r\n${SMUGGLED}`
    },
    {
      name: 'Transfer-Encoding: xchunked',
      // A coding the edge does not implement (RFC 9112 §6.1): 501, still never forwarded.
      status: 501,
      data: `POST /te-x HTTP/1.1\r\nhost: a.test\r\ntransfer-encoding: xchunked\r\n\r\n0\r\n\r\n${SMUGGLED}`
    },
    {
      name: 'invalid chunk size (zz)',
      data: `POST /chunk-zz HTTP/1.1\r\nhost: a.test\r\ntransfer-encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n`
    },
    {
      name: 'chunk size with a trailing space and garbage (5 x)',
      data: `POST /chunk-ext HTTP/1.1\r\nhost: a.test\r\ntransfer-encoding: chunked\r\n\r\n5 x\r\nhello\r\n0\r\n\r\n`
    },
    {
      name: 'bare LF line endings',
      data: `GET /bare-lf HTTP/1.1\nhost: a.test\ncontent-length: 0\n\n${SMUGGLED}`
    },
    {
      name: 'bare LF inside the headers only',
      data: `GET /bare-lf-2 HTTP/1.1\r\nhost: a.test\nx-a: b\r\n\r\n`
    },
    {
      name: 'bare CR inside the headers',
      data: `GET /bare-cr HTTP/1.1\r\nhost: a.test\rx-a: b\r\n\r\n`
    },
    {
      name: 'header name with a space',
      data: `GET /name-space HTTP/1.1\r\nhost: a.test\r\nx bad: 1\r\n\r\n`
    },
    {
      name: 'header name with a space: "content-length :"',
      data: `POST /cl-space HTTP/1.1\r\nhost: a.test\r\ncontent-length : 40\r\n\r\n${SMUGGLED}`
    }
  ]

  for (const c of cases) {
    origin.reset()
    const before = accessLines(proxy)
    const answer = await rawRequest(proxy.port, c.data)
    const status = answer.statuses[0]
    t.equal(answer.statuses.length, 1, `${c.name}: exactly one response (got ${JSON.stringify(answer.statuses)})`)
    const expected = c.status ?? 400
    t.equal(status, expected, `${c.name}: ${expected} (got ${String(status)})`)
    t.ok(status !== undefined && status >= 400 && status < 600, `${c.name}: refused`)
    t.equal(requestLines(origin.bytes()), 0, `${c.name}: the origin received no request line at all`)
    t.equal(origin.requests.length, 0, `${c.name}: the origin framed no request`)
    // "Each answered with the right 4xx and a log line": one access line, with the status the client got.
    const lines = await newAccessLines(proxy, before)
    t.same(lines.map(l => l.status), [status], `${c.name}: one access line with status ${String(status)} (got ${JSON.stringify(lines.map(l => l.status))})`)
  }
  t.equal(origin.bytes().length, 0, 'not one byte of any refused request reached the origin')
})

t.test('legit framings: the origin sees exactly one request, re-framed by the proxy', async t => {
  const origin = await recordingOrigin()
  t.teardown(() => origin.close())
  const proxy = await startProxy({ routes: [{ host: 'a.test', origin: origin.url }] })
  t.teardown(() => proxy.close())
  const cases: Array<{ name: string, data: string, body: string }> = [
    { name: 'Content-Length', data: 'POST /cl HTTP/1.1\r\nhost: a.test\r\nconnection: close\r\ncontent-length: 5\r\n\r\nhello', body: 'hello' },
    { name: 'chunked', data: 'POST /chunked HTTP/1.1\r\nhost: a.test\r\nconnection: close\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n', body: 'hello' },
    // HTAB and SP are optional whitespace before a field value (RFC 9110 §5.6.3): this is
    // plain chunked, and harmless because the origin never sees the client's framing.
    { name: 'Transfer-Encoding:\\tchunked alone', data: 'POST /tab HTTP/1.1\r\nhost: a.test\r\nconnection: close\r\ntransfer-encoding:\tchunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n', body: 'hello' },
    { name: 'chunk extension', data: 'POST /ext HTTP/1.1\r\nhost: a.test\r\nconnection: close\r\ntransfer-encoding: chunked\r\n\r\n5;name=v\r\nhello\r\n0\r\n\r\n', body: 'hello' }
  ]
  for (const c of cases) {
    origin.reset()
    const answer = await rawRequest(proxy.port, c.data)
    t.same(answer.statuses, [200], `${c.name}: 200`)
    t.equal(requestLines(origin.bytes()), 1, `${c.name}: exactly one request line at the origin`)
    t.equal(origin.requests.length, 1, `${c.name}: the origin framed one request`)
    t.equal(origin.requests[0]?.body.toString(), c.body, `${c.name}: with the whole body`)
    const te = origin.requests[0]?.headers.find(([n]) => n === 'transfer-encoding')?.[1]
    t.ok(te === undefined || te === 'chunked', `${c.name}: the origin got a canonical framing (te ${String(te)})`)
  }
})

t.test('a chunk error after the request was forwarded: the origin request is aborted, never completed or reused', async t => {
  const origin = await recordingOrigin()
  t.teardown(() => origin.close())
  const proxy = await startProxy({ routes: [{ host: 'a.test', origin: origin.url }] })
  t.teardown(() => proxy.close())

  const status = await new Promise<string>(resolve => {
    const socket = net.connect({ host: '127.0.0.1', port: proxy.port }, () => {
      socket.write('POST /streamed HTTP/1.1\r\nhost: a.test\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n')
      // The head is on its way to the origin before the bad chunk arrives.
      setTimeout(() => socket.write('zz\r\nGET /smuggled HTTP/1.1\r\nhost: a.test\r\n\r\n\r\n0\r\n\r\n'), 300)
    })
    let out = ''
    socket.on('data', d => { out += d.toString('latin1') })
    socket.on('error', () => {})
    socket.on('close', () => resolve(out.slice(0, 12)))
    setTimeout(() => socket.destroy(), 3000).unref()
  })
  t.comment(`the client got: ${JSON.stringify(status)}`)
  t.ok(status === '' || /^HTTP\/1\.1 4\d\d$/.test(status), 'a 4xx or a closed connection, never a 2xx or 5xx')
  const next = await rawRequest(proxy.port, 'GET /next HTTP/1.1\r\nhost: a.test\r\nconnection: close\r\n\r\n', 1000)
  t.same(next.statuses, [200], 'the next request is served')
  t.same(origin.requests.map(r => r.url), ['/next'], 'the origin framed only /next: the broken request never completed, /smuggled never appeared')
})

t.test('a lying Content-Length shorter than the body: the rest is a request of its own, framed and logged by the proxy', async t => {
  const origin = await recordingOrigin()
  t.teardown(() => origin.close())
  const proxy = await startProxy({ routes: [{ host: 'a.test', origin: origin.url }] })
  t.teardown(() => proxy.close())

  // The classic hiding place: "hello" is the declared body, the second request follows
  // in the same packet. A proxy that forwarded bytes instead of requests would hand the
  // origin both inside one request; an edge re-frames: two requests, two access lines.
  const data = 'POST /first HTTP/1.1\r\nhost: a.test\r\ncontent-length: 5\r\n\r\nhelloGET /second HTTP/1.1\r\nhost: a.test\r\nconnection: close\r\n\r\n'
  const before = accessLines(proxy)
  const answer = await rawRequest(proxy.port, data, 1000)
  t.same(answer.statuses, [200, 200], 'two answers, in order')
  await proxy.waitForLog(l => l.msg === 'access' && l.path === '/second')
  t.same(origin.requests.map(r => `${r.method} ${r.url}`).sort(), ['GET /second', 'POST /first'], 'the origin saw exactly the two requests the proxy framed')
  t.equal(origin.requests.find(r => r.url === '/first')?.body.toString(), 'hello', 'the first request carried exactly its declared 5 bytes')
  t.equal(requestLines(origin.bytes()), 2, 'no third request line hid anywhere in the forwarded bytes')
  t.equal(accessLines(proxy) - before, 2, 'one access line per request')
})

t.test('a lying Content-Length longer than the body: the embedded request stays body; the truncated request is never completed at the origin', async t => {
  const origin = await recordingOrigin()
  t.teardown(() => origin.close())
  const proxy = await startProxy({ routes: [{ host: 'a.test', origin: origin.url }] })
  t.teardown(() => proxy.close())

  const smuggled = 'GET /smuggled HTTP/1.1\r\nhost: a.test\r\n\r\n'
  const data = `POST /first HTTP/1.1\r\nhost: a.test\r\ncontent-length: ${smuggled.length + 20}\r\n\r\n${smuggled}`
  // The client goes away with 20 bytes of body missing.
  await new Promise<void>(resolve => {
    const socket = net.connect({ host: '127.0.0.1', port: proxy.port }, () => {
      socket.write(data)
      setTimeout(() => socket.destroy(), 300)
    })
    socket.on('error', () => {})
    socket.on('close', () => resolve())
  })
  await proxy.waitForLog(l => l.msg === 'access' && l.path === '/first')
  // Then a legit request: it must not complete the dangling one on a reused connection.
  const next = await rawRequest(proxy.port, 'GET /next HTTP/1.1\r\nhost: a.test\r\nconnection: close\r\n\r\n', 1000)
  t.same(next.statuses, [200], 'the next request is served')
  t.notOk(origin.requests.some(r => r.url === '/smuggled'), 'the origin never framed /smuggled as a request')
  const first = origin.requests.find(r => r.url === '/first')
  t.equal(first, undefined, 'the half-sent POST never completed at the origin')
  const nextSeen = origin.requests.find(r => r.url === '/next')
  t.ok(nextSeen, 'the origin framed /next as its own request')
  t.equal(origin.requests.length, 1, `the origin framed exactly one request (${origin.requests.map(r => r.url).join(', ')})`)
})

t.test('Host: two → 400, empty → 400, never forwarded', async t => {
  const origin = await recordingOrigin()
  t.teardown(() => origin.close())
  const proxy = await startProxy({ routes: [{ host: '*', origin: origin.url }] })
  t.teardown(() => proxy.close())
  const cases: Array<[string, string]> = [
    ['two Host headers', 'GET /two HTTP/1.1\r\nhost: a.test\r\nhost: evil.test\r\n\r\n'],
    ['two Host headers, same value', 'GET /two-same HTTP/1.1\r\nhost: a.test\r\nhost: a.test\r\n\r\n'],
    ['empty Host', 'GET /empty HTTP/1.1\r\nhost: \r\n\r\n'],
    ['no Host (HTTP/1.1)', 'GET /none HTTP/1.1\r\n\r\n']
  ]
  for (const [name, data] of cases) {
    const before = requestLines(origin.bytes())
    const answer = await rawRequest(proxy.port, data)
    t.same(answer.statuses, [400], `${name}: 400`)
    t.equal(requestLines(origin.bytes()) - before, 0, `${name}: not forwarded`)
  }
  // Control: the same proxy forwards a proper request.
  const ok = await rawRequest(proxy.port, 'GET /fine HTTP/1.1\r\nhost: a.test\r\nconnection: close\r\n\r\n')
  t.same(ok.statuses, [200])
  t.equal(origin.requests.at(-1)?.url, '/fine')
})

t.test('routing: absolute-form targets, ports and IP literals in Host', async t => {
  const shop = await recordingOrigin()
  const ip = await recordingOrigin()
  t.teardown(() => shop.close())
  t.teardown(() => ip.close())
  const proxy = await startProxy({
    routes: [
      { host: 'shop.test', origin: shop.url },
      { host: '127.0.0.9', origin: ip.url }
    ]
  })
  t.teardown(() => proxy.close())

  const ask = async (data: string): Promise<RawAnswer> => rawRequest(proxy.port, data)

  // Absolute form naming another host: routed by Host and path, the URL's authority is never dialled.
  let a = await ask('GET http://127.0.0.2:1/x?q=1 HTTP/1.1\r\nhost: shop.test\r\nconnection: close\r\n\r\n')
  t.same(a.statuses, [200], 'absolute form → the route of the Host header')
  t.equal(shop.requests.at(-1)?.url, '/x?q=1', 'the origin sees the origin-form path /x')
  t.equal(shop.requests.at(-1)?.headers.find(([n]) => n === 'host')?.[1], new URL(shop.url).host, 'and its own Host')

  // Absolute form whose authority matches a route, sent with a Host that matches none: 404.
  const before = shop.requests.length + ip.requests.length
  a = await ask('GET http://shop.test/y HTTP/1.1\r\nhost: nowhere.test\r\nconnection: close\r\n\r\n')
  t.same(a.statuses, [404], 'the URL authority does not pick the route: Host does')
  t.equal(shop.requests.length + ip.requests.length, before, 'nothing forwarded')

  // Host with a port: routed by the host alone.
  a = await ask('GET /port HTTP/1.1\r\nhost: shop.test:8443\r\nconnection: close\r\n\r\n')
  t.same(a.statuses, [200], 'Host with a port matches the host route')
  t.equal(shop.requests.at(-1)?.url, '/port')
  a = await ask('GET /case HTTP/1.1\r\nhost: SHOP.Test\r\nconnection: close\r\n\r\n')
  t.same(a.statuses, [200], 'Host is matched case-insensitively')
  t.equal(shop.requests.at(-1)?.url, '/case')

  // IP literal, with and without a port.
  a = await ask('GET /ip HTTP/1.1\r\nhost: 127.0.0.9\r\nconnection: close\r\n\r\n')
  t.same(a.statuses, [200], 'IP literal Host matches the IP route')
  t.equal(ip.requests.at(-1)?.url, '/ip')
  a = await ask('GET /ip-port HTTP/1.1\r\nhost: 127.0.0.9:80\r\nconnection: close\r\n\r\n')
  t.same(a.statuses, [200], 'IP literal with a port matches the IP route')
  t.equal(ip.requests.at(-1)?.url, '/ip-port')

  // No route for the host: 404, nothing forwarded.
  const count = shop.requests.length + ip.requests.length
  for (const host of ['other.test', 'shop.test.evil', 'evil.shop.test', '127.0.0.10', '[::1]:80']) {
    a = await ask(`GET /nomatch HTTP/1.1\r\nhost: ${host}\r\nconnection: close\r\n\r\n`)
    t.same(a.statuses, [404], `Host ${host} → 404`)
  }
  // Not a host at all (userinfo): refused before routing (admit.ts).
  a = await ask('GET /nomatch HTTP/1.1\r\nhost: shop.test@evil.test\r\nconnection: close\r\n\r\n')
  t.same(a.statuses, [400], 'Host shop.test@evil.test → 400')
  t.equal(shop.requests.length + ip.requests.length, count, 'no unmatched Host reached an origin')
})
