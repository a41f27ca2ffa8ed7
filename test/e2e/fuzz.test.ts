// Random requests, sent raw over fresh sockets: request lines (odd methods, paths with
// random bytes raw or percent-encoded, odd versions, absolute forms), header sets (random
// names and values, control characters included) and bodies with random framing (a
// right, wrong or repeated Content-Length, chunked valid or not, both at once).
//
// Properties: every answer is valid HTTP whose status is below 500 or an edge status
// (502, 520-526, 530), never a 500; the origin, a strict Node HTTP server, never sees a
// request its parser refuses; the proxy lives on (a health GET works after the run).
//
// FUZZ_RUNS scales it (`npm run fuzz` runs 5000); FUZZ_SEED replays a run. Without
// FUZZ_RUNS the seed is fixed, so `npm test` is deterministic.

import http from 'node:http'
import net from 'node:net'
import fc from 'fast-check'
import t from 'tap'
import { get, startProxy } from '../helpers.js'

const RUNS = Number(process.env.FUZZ_RUNS ?? 150)
const SEED = process.env.FUZZ_SEED !== undefined
  ? Number(process.env.FUZZ_SEED)
  : process.env.FUZZ_RUNS !== undefined ? Date.now() % 2 ** 31 : 20261125
const EDGE_STATUSES = new Set([502, 520, 521, 522, 523, 524, 525, 526, 530])

const byte = fc.integer({ min: 0, max: 255 }).map(c => String.fromCharCode(c))
const pct = (c: number): string => `%${c.toString(16).padStart(2, '0')}`
const pctByte = fc.oneof(
  { weight: 4, arbitrary: fc.integer({ min: 0, max: 127 }).map(pct) },
  // 8-bit octets: valid URI syntax, not always UTF-8.
  { weight: 1, arbitrary: fc.integer({ min: 128, max: 255 }).map(pct) },
  { weight: 1, arbitrary: fc.constantFrom('%c3%a9', '%e2%80%a8', '%f0%9f%92%a9', '%C3%A9') }
)
const tchar = fc.constantFrom(...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&\'*+-.^_`|~')
const token = fc.string({ unit: tchar, minLength: 1, maxLength: 12 })

const method = fc.oneof(
  { weight: 16, arbitrary: fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'HEAD', 'OPTIONS', 'PATCH') },
  { weight: 2, arbitrary: fc.constantFrom('TRACE', 'CONNECT', 'PRI', 'PROPFIND', 'MKCOL', 'LINK', 'QUERY', 'get', 'G ET', '') },
  { weight: 2, arbitrary: token },
  { weight: 1, arbitrary: fc.string({ unit: byte, minLength: 1, maxLength: 8 }) }
)

const segment = fc.string({
  unit: fc.oneof(
    { weight: 16, arbitrary: fc.constantFrom(...'abcxyz019-_~') },
    { weight: 4, arbitrary: pctByte },
    { weight: 2, arbitrary: fc.constantFrom('.', '..', '%2e', '%2E%2e', '%00', '%0d%0a', '%2f', '%5c', ';', '?', '#', '&', '=', '+', '@', ':', '*') }
  ),
  maxLength: 8
})
/** A segment with raw bytes in it (controls, spaces, 8-bit): mostly refused by the parser. */
const rawSegment = fc.tuple(segment, fc.string({ unit: byte, minLength: 1, maxLength: 3 })).map(([a, b]) => a + b)
const path = fc.oneof(
  { weight: 16, arbitrary: fc.array(segment, { maxLength: 5 }).map(s => `/${s.join('/')}`) },
  { weight: 2, arbitrary: fc.tuple(fc.array(segment, { maxLength: 2 }), rawSegment).map(([s, r]) => `/${[...s, r].join('/')}`) },
  { weight: 1, arbitrary: fc.array(segment, { maxLength: 3 }).map(s => `http://127.0.0.2:1/${s.join('/')}`) },
  { weight: 1, arbitrary: fc.constantFrom('*', '', 'example.test:443', '//double', '/?', 'http://[::1]/', 'https://evil.test') }
)
const version = fc.oneof(
  { weight: 10, arbitrary: fc.constant('HTTP/1.1') },
  { weight: 1, arbitrary: fc.constantFrom('HTTP/1.0', 'HTTP/2.0', 'HTTP/0.9', 'HTTP/1.1x', 'http/1.1', 'HTTP/1', '') }
)
const headerName = fc.oneof(
  { weight: 12, arbitrary: token },
  { weight: 3, arbitrary: fc.constantFrom('Content-Length', 'Transfer-Encoding', 'Connection', 'Upgrade', 'Expect', 'TE', 'Trailer', 'X-Forwarded-For', 'Host', 'cf-ray', 'Keep-Alive', 'Proxy-Connection') },
  { weight: 1, arbitrary: fc.string({ unit: byte, minLength: 1, maxLength: 10 }) }
)
const headerValue = fc.oneof(
  { weight: 12, arbitrary: fc.string({ unit: fc.constantFrom(...'abc 019,;=/-."\t'), maxLength: 20 }) },
  { weight: 3, arbitrary: fc.constantFrom('close', 'keep-alive', 'chunked', '100-continue', 'websocket', '0', '-1', '1e3', ' chunked', 'chunked, identity', '\u2028', '%0d%0a', 'Ã©\u00ff') },
  { weight: 1, arbitrary: fc.string({ unit: byte, maxLength: 20 }) }
)

type Framing = 'none' | 'cl' | 'cl-short' | 'cl-long' | 'cl-twice' | 'chunked' | 'chunked-bad' | 'both'
const framing = fc.constantFrom<Framing>('none', 'none', 'none', 'cl', 'cl', 'cl', 'cl-short', 'cl-long', 'cl-twice', 'chunked', 'chunked', 'chunked', 'chunked-bad', 'both')

const hostileRequest = fc.record({
  method,
  path,
  version,
  host: fc.oneof({ weight: 8, arbitrary: fc.constant('fuzz.test') }, { weight: 1, arbitrary: fc.constantFrom('', 'fuzz.test:99', '127.0.0.1', '[::1]', 'a b') }, { weight: 1, arbitrary: headerValue }),
  hostPlacement: fc.constantFrom('first', 'first', 'first', 'first', 'first', 'last', 'last', 'none', 'twice'),
  headers: fc.oneof(
    { weight: 2, arbitrary: fc.constant([]) },
    { weight: 5, arbitrary: fc.array(fc.tuple(headerName, headerValue), { maxLength: 5 }) }
  ),
  body: fc.string({ unit: byte, maxLength: 64 }),
  framing,
  close: fc.boolean(),
  bareLf: fc.oneof({ weight: 19, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) })
})
/** Well-formed requests with random content: what reaches the forwarding path. */
const cleanRequest = fc.record({
  method: fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'HEAD', 'OPTIONS', 'PATCH'),
  path: fc.array(segment, { maxLength: 5 }).map(s => `/${s.join('/')}`),
  version: fc.constant('HTTP/1.1'),
  host: fc.constantFrom('fuzz.test', 'fuzz.test:8080', 'FUZZ.test'),
  hostPlacement: fc.constantFrom('first', 'last'),
  headers: fc.array(fc.tuple(token, fc.oneof(
    fc.string({ unit: fc.constantFrom(...'abc 019,;=/-."\t'), maxLength: 20 }),
    // obs-text: 8-bit bytes are allowed in field values.
    fc.string({ unit: fc.integer({ min: 0x80, max: 0xff }).map(c => String.fromCharCode(c)), maxLength: 8 }),
    fc.constantFrom('close', 'keep-alive', 'chunked', 'gzip', 'websocket', 'h2c', '100-continue', 'trailers')
  )), { maxLength: 6 }),
  body: fc.string({ unit: byte, maxLength: 256 }),
  framing: fc.constantFrom<Framing>('none', 'cl', 'cl-short', 'chunked'),
  close: fc.boolean(),
  bareLf: fc.constant(false)
})
const requestArb = fc.oneof(cleanRequest, hostileRequest)
type FuzzRequest = typeof hostileRequest extends fc.Arbitrary<infer R> ? R : never

/** The request as bytes (latin1: every char is one byte), and whether it is complete. */
function serialize (r: FuzzRequest): string {
  const nl = r.bareLf ? '\n' : '\r\n'
  const lines = [`${r.method} ${r.path} ${r.version}`.trimEnd()]
  if (r.hostPlacement === 'first' || r.hostPlacement === 'twice') lines.push(`Host: ${r.host}`)
  for (const [n, v] of r.headers) lines.push(`${n}: ${v}`)
  if (r.hostPlacement === 'last' || r.hostPlacement === 'twice') lines.push(`Host: ${r.host}`)
  const len = r.body.length
  let body = ''
  switch (r.framing) {
    case 'none': break
    case 'cl': lines.push(`Content-Length: ${len}`); body = r.body; break
    case 'cl-short': lines.push(`Content-Length: ${Math.max(0, len - 3)}`); body = r.body; break
    // A body shorter than declared: the proxy waits for the rest until the client goes.
    case 'cl-long': lines.push(`Content-Length: ${len + 3}`); body = r.body; break
    case 'cl-twice': lines.push(`Content-Length: ${len}`, `Content-Length: ${len}`); body = r.body; break
    case 'chunked': lines.push('Transfer-Encoding: chunked'); body = len === 0 ? `0${nl}${nl}` : `${len.toString(16)}${nl}${r.body}${nl}0${nl}${nl}`; break
    case 'chunked-bad': lines.push('Transfer-Encoding: chunked'); body = `${(len + 7).toString(16)}z${nl}${r.body}${nl}0${nl}${nl}`; break
    case 'both': lines.push(`Content-Length: ${len}`, 'Transfer-Encoding: chunked'); body = `0${nl}${nl}${r.body}`; break
  }
  if (r.close) lines.push('Connection: close')
  return lines.join(nl) + nl + nl + body
}

interface Response { status: number, reason: string, ray: boolean }

/** Parses every response in `text`; throws on anything that is not valid HTTP/1.x. */
function parseResponses (text: string, headRequest: boolean): Response[] {
  const out: Response[] = []
  let at = 0
  while (at < text.length) {
    const end = text.indexOf('\r\n\r\n', at)
    if (end === -1) throw new Error(`incomplete response head: ${JSON.stringify(text.slice(at, at + 80))}`)
    const lines = text.slice(at, end).split('\r\n')
    const m = /^HTTP\/1\.[01] ([1-5]\d\d) ([^\r\n]*)$/.exec(lines[0] ?? '')
    if (m === null) throw new Error(`invalid status line: ${JSON.stringify(lines[0])}`)
    const headers = new Map<string, string>()
    for (const l of lines.slice(1)) {
      const hm = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+):[ \t]*(.*?)[ \t]*$/.exec(l)
      if (hm === null) throw new Error(`invalid header line: ${JSON.stringify(l)}`)
      headers.set((hm[1] as string).toLowerCase(), hm[2] as string)
    }
    const status = Number(m[1])
    out.push({ status, reason: m[2] as string, ray: headers.has('cf-ray') })
    at = end + 4
    // A HEAD answer has no body, unless the request was refused before it was parsed.
    const bodiless = headRequest && (at === text.length || text.startsWith('HTTP/', at))
    if (bodiless || status === 204 || status === 304 || status < 200) continue
    if (/chunked/i.test(headers.get('transfer-encoding') ?? '')) {
      for (;;) {
        const eol = text.indexOf('\r\n', at)
        if (eol === -1) return out // cut mid-body: the connection was closed on purpose
        const size = parseInt(text.slice(at, eol), 16)
        if (Number.isNaN(size)) throw new Error(`invalid chunk size: ${JSON.stringify(text.slice(at, eol))}`)
        at = eol + 2 + size + 2
        if (size === 0) break
      }
    } else if (headers.has('content-length')) {
      at += Number(headers.get('content-length'))
    } else {
      return out // body until close
    }
  }
  return out
}

/** Sends the bytes on a fresh connection; collects until close, or quiet after the first byte. */
function send (port: number, bytes: Buffer): Promise<string> {
  return new Promise(resolve => {
    const socket = net.connect({ host: '127.0.0.1', port }, () => socket.write(bytes))
    let text = ''
    // No answer at all in 400 ms: a request still waiting for its body (or its headers).
    let timer = setTimeout(() => socket.destroy(), 400)
    socket.on('data', d => {
      text += d.toString('latin1')
      clearTimeout(timer)
      timer = setTimeout(() => socket.destroy(), 80)
    })
    socket.on('error', () => {})
    socket.on('close', () => { clearTimeout(timer); resolve(text) })
  })
}

t.test(`fuzz: ${RUNS} random requests (seed ${SEED})`, async t => {
  let clientErrors = 0
  let aborted = 0
  const clientErrorSamples: string[] = []
  const seen: Array<{ method: string, url: string }> = []
  const origin = http.createServer((req, res) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '' })
    req.resume()
    req.on('end', () => res.writeHead(200, { 'content-type': 'text/plain' }).end('ok'))
    req.on('error', () => {})
  })
  origin.on('clientError', (err: NodeJS.ErrnoException, socket: net.Socket) => {
    // A proxy that gives up on a request mid-body (its client's body was short or broken)
    // closes or resets the connection: an aborted request, not a malformed one.
    if (err.code === 'ECONNRESET' || err.code === 'HPE_INVALID_EOF_STATE') {
      aborted++
    } else {
      clientErrors++
      if (clientErrorSamples.length < 5) clientErrorSamples.push(`${err.code ?? ''} ${err.message}`)
    }
    socket.destroy()
  })
  await new Promise<void>(resolve => origin.listen({ host: '127.0.0.1', port: 0 }, resolve))
  t.teardown(() => new Promise<void>(resolve => { origin.closeAllConnections(); origin.close(() => resolve()) }))
  const proxy = await startProxy({ origin: `http://127.0.0.1:${(origin.address() as net.AddressInfo).port}` })
  t.teardown(() => proxy.close())

  const statusCounts = new Map<number | 'none', number>()
  /** Answers that are not the edge's (no ray header): Node's or Fastify's own, by status. */
  const notEdge = new Map<number, number>()
  let failure: unknown = null
  try {
    await fc.assert(fc.asyncProperty(requestArb, async r => {
      const raw = serialize(r)
      const text = await send(proxy.port, Buffer.from(raw, 'latin1'))
      const responses = parseResponses(text, r.method === 'HEAD')
      if (responses.length === 0) statusCounts.set('none', (statusCounts.get('none') ?? 0) + 1)
      for (const { status, ray } of responses) {
        if (!ray) notEdge.set(status, (notEdge.get(status) ?? 0) + 1)
        statusCounts.set(status, (statusCounts.get(status) ?? 0) + 1)
        if (status === 500) throw new Error(`500 for ${JSON.stringify(raw)}`)
        if (status >= 500 && !EDGE_STATUSES.has(status)) throw new Error(`${status} for ${JSON.stringify(raw)}`)
      }
    }), { numRuns: RUNS, seed: SEED, endOnFailure: true })
  } catch (err) {
    failure = err
  }
  t.comment(`statuses: ${[...statusCounts].sort((a, b) => String(a[0]).localeCompare(String(b[0]))).map(([s, n]) => `${s}×${n}`).join(' ')}`)
  t.comment(`answered without the edge's ray header (by Node or Fastify, no access line): ${[...notEdge].map(([s, n]) => `${s}×${n}`).join(' ') || 'none'}`)
  t.comment(`the origin got ${seen.length} requests; ${aborted} were abandoned mid-body by the proxy (its client's body was short or broken)`)
  t.error(failure, 'every answer is valid HTTP with status < 500 or an edge status, never 500')
  t.equal(clientErrors, 0, `the origin's parser refused nothing it was sent (${clientErrorSamples.join('; ')})`)
  const health = await get(`${proxy.url}/healthy-after-fuzz`)
  t.equal(health.status, 200, 'the proxy lives on')
  const accessLines = proxy.logs.filter(l => l.msg === 'access').length
  t.ok(accessLines > 0, `${accessLines} access lines`)
})
