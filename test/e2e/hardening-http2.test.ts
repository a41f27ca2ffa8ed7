// Hardening, round three, HTTP/2 (issue 28): pseudo-headers the edge must refuse rather
// than rewrite (a :method that is not a token, a :path that is not a path), a decreasing
// stream id (never served), and a flood of frames that move no request forward
// (GOAWAY ENHANCE_YOUR_CALM and one warn line). Frames no client library sends are
// written with Debian's python3-h2 (test/h2-raw.py) or by hand; every status on the wire
// is compared with the access line of its ray id.

import { execFile } from 'node:child_process'
import http2 from 'node:http2'
import { fileURLToPath } from 'node:url'
import tls from 'node:tls'
import t from 'tap'
import { startProxy, type LogLine } from '../helpers.js'
import { scriptedOrigin } from '../origins.js'
import { makePki } from '../tls-support.js'

const pki = await makePki()
t.teardown(() => pki.remove())
const cert = await pki.issue('edge', ['localhost'])

const DOWNLOAD = 48 * 1024 * 1024
const origin = await scriptedOrigin((req, socket) => {
  if (req.url === '/download') {
    socket.write(`HTTP/1.1 200 OK\r\ncontent-length: ${DOWNLOAD}\r\n\r\n`)
    socket.write(Buffer.alloc(DOWNLOAD, 100))
  } else socket.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok')
})
t.teardown(() => origin.close())

const proxy = await startProxy({
  routes: [{ origin: origin.url }],
  listen: { tls: { cert: cert.certFile, key: cert.keyFile }, http2: { max_idle_frames: 2000 } }
})
t.teardown(() => proxy.close())

const SCRIPT = fileURLToPath(new URL('../h2-raw.py', import.meta.url))

interface Seen { streams: Record<string, { status: number | null, ray: string | null, reset: number | null }>, goaway: number | null }

function h2raw (requests: Array<{ stream: number, headers: Array<[string, string]> }>): Promise<Seen> {
  return new Promise((resolve, reject) => {
    // Debian's python3 (python3-h2), not whichever python3 is first on the PATH.
    execFile('/usr/bin/python3', [SCRIPT, String(proxy.port), JSON.stringify({ requests })], { timeout: 20000 }, (err, stdout, stderr) => {
      if (err !== null) reject(new Error(`${err.message}\n${stderr}`))
      else resolve(JSON.parse(stdout) as Seen)
    })
  })
}

const request = (stream: number, method: string, path: string): { stream: number, headers: Array<[string, string]> } =>
  ({ stream, headers: [[':method', method], [':scheme', 'https'], [':authority', 'localhost'], [':path', path]] })

const accessFor = (ray: string) => (l: LogLine): boolean => l.msg === 'access' && l.ray_id === ray

t.test(':method not a token, :path not a path: 400 on the stream, never a rewrite to GET /', async t => {
  const before = origin.requests.length
  const cases: Array<[string, string, string]> = [
    ['a :method with a space', 'GE T', '/m'],
    ['a :method with parentheses', '(BAD)', '/m'],
    ['a :path without its leading slash', 'GET', 'x/y'],
    ['a :path of * on GET', 'GET', '*'],
    ['an absolute URL as :path', 'GET', 'https://evil.test/'],
    ['an empty :path', 'GET', '']
  ]
  for (const [name, method, path] of cases) {
    const seen = await h2raw([request(1, method, path)])
    const stream = seen.streams['1']
    if (stream?.status === null || stream?.status === undefined) {
      // Refused by nghttp2 before the edge saw it: a stream error, and nothing forwarded.
      t.ok(stream?.reset !== null && stream?.reset !== undefined, `${name}: a stream error (RST_STREAM ${String(stream?.reset)})`)
      continue
    }
    t.equal(stream.status, 400, `${name}: 400 on the wire`)
    const line = await proxy.waitForLog(accessFor(stream.ray as string))
    t.equal(line.status, 400, `${name}: the access line says 400 (${String(line.refused)})`)
  }
  t.equal(origin.requests.length, before, 'none of them reached the origin')
  // Well-formed neighbours still pass: a token method with tchar symbols, and OPTIONS *.
  const fine = await h2raw([request(1, 'FOO!#$', '/ok'), request(3, 'OPTIONS', '*')])
  t.not(fine.streams['1']?.status, 400, '`FOO!#$` is a token (RFC 9110 §5.6.2): not refused as a method')
  t.not(fine.streams['3']?.status, 400, 'OPTIONS * is allowed')
})

t.test('a decreasing stream id: never served', async t => {
  // nghttp2 ignores a HEADERS whose id is below one it has seen (it cannot tell an idle
  // stream from a closed one whose RST_STREAM crossed a trailer) instead of GOAWAY
  // PROTOCOL_ERROR, and Node reports ignored frames to no one: the stream is never
  // served, and a flood of such frames spends the frame budget (below).
  const seen = await h2raw([request(5, 'GET', '/five'), request(3, 'GET', '/three')])
  t.equal(seen.streams['5']?.status, 200, 'the first stream is served')
  t.notOk(seen.streams['3']?.status, 'the stream with the lower id gets no answer')
  t.notOk(origin.requests.some(r => r.url === '/three'), 'and never reaches the origin')
  t.ok(seen.goaway === null || seen.goaway === 1, `no other GOAWAY than PROTOCOL_ERROR (${String(seen.goaway)})`)
})

/** Frames on a raw TLS connection (ALPN h2); resolves with the GOAWAY error code, or null if the edge kept the connection. */
function flood (frame: Buffer, perTick: number, ticks: number): Promise<number | null> {
  return new Promise(resolve => {
    let goaway: number | null = null
    let buf = Buffer.alloc(0)
    const socket = tls.connect({ host: '127.0.0.1', port: proxy.port, ALPNProtocols: ['h2'], ca: pki.ca.cert, servername: 'localhost' }, () => {
      socket.write(Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0])]))
      let n = 0
      const timer = setInterval(() => {
        if (socket.destroyed || goaway !== null || n++ === ticks) {
          clearInterval(timer)
          socket.destroy()
          resolve(goaway)
          return
        }
        socket.write(Buffer.concat(Array.from({ length: perTick }, () => frame)))
      }, 50)
    })
    socket.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d])
      while (buf.length >= 9) {
        const length = buf.readUIntBE(0, 3)
        if (buf.length < 9 + length) break
        // The first GOAWAY says why (a close may follow it with NO_ERROR).
        if (buf[3] === 7 && goaway === null) goaway = buf.readUInt32BE(9 + 4)
        buf = buf.subarray(9 + length)
      }
    })
    socket.on('error', () => {})
    socket.on('close', () => resolve(goaway))
  })
}

t.test('a WINDOW_UPDATE flood gets GOAWAY ENHANCE_YOUR_CALM and one warn line; a calm connection does not', async t => {
  // WINDOW_UPDATE on the connection, increment 1: 13 bytes that carry no request.
  const windowUpdate = Buffer.from([0, 0, 4, 8, 0, 0, 0, 0, 0, 0, 0, 0, 1])
  // 400 frames every 50 ms: 8,000 a second, four times the budget of 2,000.
  const code = await flood(windowUpdate, 400, 60)
  t.equal(code, 11, 'GOAWAY ENHANCE_YOUR_CALM (0xb)')
  const warn = await proxy.waitForLog(l => l.msg === 'http2 connection cut' && l.error?.code === 'HPX_ERR_FRAME_FLOOD')
  t.ok(warn, 'one warn line naming the flood')
  t.equal(proxy.logs.filter(l => l.error?.code === 'HPX_ERR_FRAME_FLOOD').length, 1, 'exactly one')
  // PINGs at a tenth of the budget, for two seconds: nothing happens.
  const ping = Buffer.from([0, 0, 8, 6, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8])
  t.equal(await flood(ping, 10, 40), null, 'a connection within its budget is left alone')
})

t.test('`GET / HTTP/2.0` over TLS with ALPN http/1.1: 505 and a close, with its line', async t => {
  const socket = tls.connect({ host: '127.0.0.1', port: proxy.port, ALPNProtocols: ['http/1.1'], ca: pki.ca.cert, servername: 'localhost' })
  socket.on('error', () => {})
  let text = ''
  socket.on('data', (d: Buffer) => { text += d.toString('latin1') })
  await new Promise<void>(resolve => socket.once('secureConnect', () => resolve()))
  socket.write('GET / HTTP/2.0\r\nhost: localhost\r\n\r\n')
  const closed = await new Promise<boolean>(resolve => {
    const timer = setTimeout(() => resolve(false), 5000)
    socket.once('close', () => { clearTimeout(timer); resolve(true) })
  })
  socket.destroy()
  t.match(text, /^HTTP\/1\.1 505 /, '505 on the wire')
  t.ok(closed, 'and the edge closed the connection')
  const ray = /cf-ray: ([0-9a-f]{16})/i.exec(text)?.[1] as string
  const line = await proxy.waitForLog(accessFor(ray))
  t.equal(line.status, 505, 'the access line says 505')
  t.equal(line.client.protocol, 'HTTP/1.1', 'and the connection was HTTP/1.1, whatever its request line said')
})

t.test('a fast download with default windows (a WINDOW_UPDATE per 32 KiB read) stays within the frame budget', async t => {
  // A small budget (1,800 bytes a second): the download's own WINDOW_UPDATEs (about 40 KB) would spend it many times over.
  const tight = await startProxy({
    routes: [{ origin: origin.url }],
    listen: { tls: { cert: cert.certFile, key: cert.keyFile }, http2: { max_idle_frames: 200 } }
  })
  t.teardown(() => tight.close())
  const session = http2.connect(tight.url, { ca: pki.ca.cert, servername: 'localhost' })
  session.on('error', () => {})
  t.teardown(() => session.close())
  const req = session.request({ ':path': '/download' })
  let got = 0
  req.on('data', (d: Buffer) => { got += d.length })
  const code = await new Promise<number>(resolve => req.on('close', () => resolve(req.rstCode ?? -1)))
  t.equal(got, DOWNLOAD, `all ${DOWNLOAD} bytes arrived`)
  t.equal(code, http2.constants.NGHTTP2_NO_ERROR)
  t.equal(tight.logs.filter(l => l.error?.code === 'HPX_ERR_FRAME_FLOOD').length, 0, 'not taken for a flood')
})
