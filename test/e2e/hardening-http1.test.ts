// Hardening, round three, HTTP/1.x (issue 28): request lines with a version that is not
// HTTP/1.0 or 1.1, a forwarded request followed in the same write by bytes that do not
// parse, and the small framing refusals (transfer codings, `GET *`, a port out of
// range, an upgrade with a body, a request pipelined after `Upgrade: h2c`). Raw bytes on
// both sides: the client writes exact bytes, the origin counts what reached it, and for
// every answer the status on the wire is compared with the access line of its ray id.

import net from 'node:net'
import t, { type Test } from 'tap'
import { startProxy, type LogLine, type TestProxy } from '../helpers.js'
import { scriptedOrigin, type ScriptedOrigin } from '../origins.js'

/** Every HTTP/1.1 answer in `text`, in order: status, ray id, whether it said `connection: close`. */
function answers (text: string): Array<{ status: number, ray: string | null, close: boolean }> {
  const out = []
  for (const m of text.matchAll(/HTTP\/1\.1 (\d{3})[^\r\n]*\r\n((?:[^\r\n]+\r\n)*)\r\n/g)) {
    const head = m[2] as string
    out.push({ status: Number(m[1]), ray: /cf-ray: ([0-9a-f]{16})-/i.exec(head)?.[1] ?? null, close: /^connection: close/im.test(head) })
  }
  return out
}

/** Writes `data` in one write; everything that comes back, and whether the edge closed the connection within `ms`. */
function exchange (port: number, data: string, ms = 3000): Promise<{ text: string, closed: boolean }> {
  return new Promise(resolve => {
    let text = ''
    const socket = net.connect({ host: '127.0.0.1', port }, () => socket.write(data))
    const timer = setTimeout(() => { socket.destroy(); resolve({ text, closed: false }) }, ms)
    socket.on('data', d => { text += d.toString('latin1') })
    socket.on('error', () => {})
    socket.on('close', () => { clearTimeout(timer); resolve({ text, closed: true }) })
  })
}

const accessOf = (p: TestProxy, ray: string): Promise<LogLine> =>
  p.waitForLog(l => l.msg === 'access' && l.ray_id === ray, 3000)

async function setup (t: Test): Promise<{ proxy: TestProxy, origin: ScriptedOrigin }> {
  const origin = await scriptedOrigin((req, socket) => {
    const body = `ok ${req.method} ${req.url}\n`
    socket.write(`HTTP/1.1 200 OK\r\ncontent-length: ${body.length}\r\n\r\n${body}`)
  })
  const proxy = await startProxy({ routes: [{ host: 'a.test', origin: origin.url }], timeouts: { client_headers: '2s', client_request: '3s' } })
  t.teardown(async () => { await proxy.close(); await origin.close() })
  return { proxy, origin }
}

t.test('a request line whose version is not HTTP/1.0 or 1.1: 505, a ray id, an access line, closed; nothing behind it is served', async t => {
  const { proxy, origin } = await setup(t)
  for (const version of ['HTTP/2.0', 'HTTP/1.2', 'HTTP/3.0']) {
    const before = origin.requests.length
    const got = await exchange(proxy.port, `GET /v HTTP/${version.slice(5)}\r\nhost: a.test\r\n\r\nGET /behind HTTP/1.1\r\nhost: a.test\r\n\r\n`)
    const list = answers(got.text)
    t.equal(list.length, 1, `${version}: one answer`)
    t.equal(list[0]?.status, 505, `${version}: 505 on the wire`)
    t.ok(list[0]?.close === true && got.closed, `${version}: and the connection closed`)
    const access = await accessOf(proxy, list[0]?.ray as string)
    t.equal(access.status, 505, `${version}: the access line says 505`)
    t.ok(['http_version', 'HPE_INVALID_VERSION'].includes(access.refused), `${version}: refused for its version (${String(access.refused)})`)
    t.equal(origin.requests.length, before, `${version}: no origin saw it or the request behind it`)
  }
  // No internal error was swallowed or logged on the way.
  t.notOk(proxy.logs.some(l => l.level >= 50), 'no error line')
})

t.test('a forwarded request followed in the same write by bytes that do not parse', async t => {
  const { proxy, origin } = await setup(t)
  const cases = [
    { name: 'POST then a stray chunk', data: 'POST /a HTTP/1.1\r\nhost: a.test\r\ncontent-length: 4\r\n\r\n1\r\nZ\r\n0\r\n\r\n', path: '/a', wire: [200, 400] },
    { name: 'after Connection: close', data: 'GET /b HTTP/1.1\r\nhost: a.test\r\nconnection: close\r\n\r\n\x01GARBAGE\r\n\r\n', path: '/b', wire: [200, 400] },
    { name: 'HTTP/1.0 with Transfer-Encoding', data: 'POST /c HTTP/1.0\r\nhost: a.test\r\ntransfer-encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n\x01GARBAGE\r\n\r\n', path: '/c', wire: null }
  ]
  for (const c of cases) {
    const before = origin.requests.length
    const linesBefore = proxy.logs.length
    const got = await exchange(proxy.port, c.data)
    const list = answers(got.text)
    const forwarded = origin.requests.length > before
    t.ok(got.closed, `${c.name}: the connection closes`)
    if (forwarded) {
      t.equal(origin.requests[before]?.url, c.path, `${c.name}: the origin got ${c.path}`)
      t.equal(list[0]?.status, 200, `${c.name}: the client got the origin's 200`)
      const first = await accessOf(proxy, list[0]?.ray as string)
      t.equal(first.status, 200, `${c.name}: its access line says 200`)
      t.equal(first.refused, undefined, `${c.name}: and not refused`)
      // The bytes after it: a line of their own (and, when the connection was still open, a 400 on the wire).
      const garbage = await proxy.waitForLog(l => l.msg === 'access' && l.status === 400 && l.ray_id !== first.ray_id && l.refused !== undefined && proxy.logs.indexOf(l) >= linesBefore, 3000)
      t.ok(garbage.refused, `${c.name}: the bytes after it get their own 400 line (${String(garbage.refused)})`)
      if (list.length > 1) {
        t.equal(list[1]?.status, 400, `${c.name}: 400 on the wire after the 200`)
        t.equal(list[1]?.ray, garbage.ray_id, `${c.name}: with the ray id of that line`)
        t.ok(list[1]?.close, `${c.name}: and connection: close`)
      }
    } else {
      // Refused before any origin saw it: one 400, and its line says the same.
      t.equal(list.length, 1, `${c.name}: one answer`)
      t.equal(list[0]?.status, 400, `${c.name}: refused with 400 (never forwarded)`)
      t.equal((await accessOf(proxy, list[0]?.ray as string)).status, 400, `${c.name}: its line says 400`)
    }
    if (c.wire !== null) t.same(list.map(a => a.status), c.wire, `${c.name}: on the wire ${c.wire.join(', ')}`)
    // Every answer on the wire has a line that says the same status.
    for (const a of list) t.equal((await accessOf(proxy, a.ray as string)).status, a.status, `${c.name}: ${a.status} matches its line`)
  }
})

t.test('framing the edge refuses: transfer codings, GET *, a port out of range, an upgrade with a body', async t => {
  const { proxy, origin } = await setup(t)
  const cases = [
    { name: 'Transfer-Encoding: gzip, chunked', status: 501, data: 'POST /t HTTP/1.1\r\nhost: a.test\r\ntransfer-encoding: gzip, chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n' },
    { name: 'Transfer-Encoding: gzip then chunked in two fields', status: 501, data: 'POST /t HTTP/1.1\r\nhost: a.test\r\ntransfer-encoding: gzip\r\ntransfer-encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n' },
    { name: 'GET *', status: 400, data: 'GET * HTTP/1.1\r\nhost: a.test\r\n\r\n' },
    { name: 'Host: a.test:99999', status: 400, data: 'GET / HTTP/1.1\r\nhost: a.test:99999\r\n\r\n' },
    { name: 'WebSocket upgrade with a Content-Length body', status: 400, data: 'GET /ws HTTP/1.1\r\nhost: a.test\r\nconnection: upgrade\r\nupgrade: websocket\r\nsec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\ncontent-length: 5\r\n\r\nhello' }
  ]
  for (const c of cases) {
    const before = origin.requests.length
    const got = await exchange(proxy.port, c.data)
    const list = answers(got.text)
    t.equal(list[0]?.status, c.status, `${c.name}: ${c.status} on the wire`)
    t.ok(list[0]?.ray, `${c.name}: with a ray id`)
    const access = await accessOf(proxy, list[0]?.ray as string)
    t.equal(access.status, c.status, `${c.name}: the access line says ${c.status}`)
    t.ok(typeof access.refused === 'string', `${c.name}: refused (${String(access.refused)})`)
    t.equal(origin.requests.length, before, `${c.name}: never forwarded`)
  }
  // OPTIONS * is the one request `*` is for (RFC 9112 §3.2.4).
  const options = answers((await exchange(proxy.port, 'OPTIONS * HTTP/1.1\r\nhost: a.test\r\nconnection: close\r\n\r\n')).text)
  t.not(options[0]?.status, 400, 'OPTIONS * is not refused as a bad target')
})

t.test('a request pipelined after an h2c upgrade request is refused, with its own answer and line', async t => {
  const { proxy, origin } = await setup(t)
  const before = origin.requests.length
  // Node stops parsing at an Upgrade request: the request behind it was never read as one.
  const got = await exchange(proxy.port,
    'GET /first HTTP/1.1\r\nhost: a.test\r\nconnection: upgrade, http2-settings\r\nupgrade: h2c\r\nhttp2-settings: AAMAAABkAAQAAP__\r\n\r\n' +
    'GET /second HTTP/1.1\r\nhost: a.test\r\nconnection: close\r\n\r\n')
  const list = answers(got.text)
  t.same(list.map(a => a.status), [400, 400], 'both refused on the wire, in order')
  t.not(list[0]?.ray, list[1]?.ray, 'each with its own ray id')
  t.ok(got.closed, 'and the connection closed')
  t.equal(origin.requests.length, before, 'neither reached the origin')
  for (const a of list) {
    const line = await accessOf(proxy, a.ray as string)
    t.equal(line.status, a.status, `its access line says ${a.status} (${String(line.refused)})`)
  }
  // Without bytes behind it, an h2c upgrade a route does not allow is proxied as plain HTTP.
  const alone = answers((await exchange(proxy.port, 'GET /alone HTTP/1.1\r\nhost: a.test\r\nconnection: upgrade\r\nupgrade: h2c\r\n\r\n')).text)
  t.equal(alone[0]?.status, 200, 'an h2c upgrade alone is answered as plain HTTP')
})
