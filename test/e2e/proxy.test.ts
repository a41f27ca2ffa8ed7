// The healthy path: what crosses the proxy, each way, and that bodies stream.

import http from 'node:http'
import net from 'node:net'
import { Readable } from 'node:stream'
import t from 'tap'
import { request } from 'undici'
import { healthyOrigin } from '../../src/lab/healthy-origin.js'
import { accessFor, client, get, startProxy } from '../helpers.js'

function nodeGet (url: string, headers: Record<string, string>): Promise<{ status: number, headers: Record<string, string>, body: string }> {
  return new Promise((resolve, reject) => {
    http.get(url, { headers, agent: false }, res => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => { body += c })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers as Record<string, string>, body }))
    }).on('error', reject)
  })
}

t.test('proxied success: headers both ways', async t => {
  const origin = await healthyOrigin()
  const proxy = await startProxy({ origin: origin.url })
  t.teardown(async () => { await proxy.close(); await origin.close() })

  // node:http, because undici refuses to send hop-by-hop headers at all.
  const res = await nodeGet(`${proxy.url}/echo?x=1`, {
      host: 'shop.example',
      'x-forwarded-for': '198.51.100.7',
      connection: 'keep-alive, x-secret-hop',
      'x-secret-hop': 'drop me',
      'keep-alive': 'timeout=5',
      'proxy-authorization': 'Basic Zm9vOmJhcg==',
      te: 'trailers',
      'cf-ray': 'ffffffffffffffff-EVIL',
      'x-app': 'kept'
  })
  t.equal(res.status, 200)
  const ray = String(res.headers['cf-ray']).slice(0, 16)
  t.match(res.headers['cf-ray'], /^[0-9a-f]{16}-HPX$/)
  t.not(ray, 'ffffffffffffffff', 'a client cannot choose the ray id')
  t.equal(res.headers.server, 'highproxy')
  t.not(res.headers['keep-alive'], 'timeout=3', "the origin's hop-by-hop headers stay behind (the edge sets its own)")
  const seen = JSON.parse(res.body) as { url: string, headers: Record<string, string> }
  t.equal(seen.url, '/echo?x=1', 'path and query forwarded as sent')
  t.equal(seen.headers['x-forwarded-for'], '127.0.0.1', "an untrusted client's own X-Forwarded-For is dropped: the chain starts at the peer")
  t.equal(seen.headers['x-real-ip'], '127.0.0.1', 'the client address the edge decided on')
  t.equal(seen.headers['x-forwarded-proto'], 'http')
  t.equal(seen.headers['x-forwarded-host'], 'shop.example')
  t.equal(seen.headers['cf-ray'], `${ray}-HPX`, 'the ray header reaches the origin')
  t.equal(seen.headers.host, new URL(origin.url).host, "Host is the origin's own by default")
  t.equal(seen.headers['x-app'], 'kept')
  for (const hop of ['x-secret-hop', 'keep-alive', 'proxy-authorization', 'te']) {
    t.equal(seen.headers[hop], undefined, `${hop} not forwarded`)
  }
  const access = await proxy.waitForLog(accessFor(ray))
  t.match(access, { method: 'GET', host: 'shop.example', path: '/echo', status: 200, route: 'origin', edge_status: null })
  t.type(access.duration_ms, 'number')
})

t.test('host_header: keep, and path prefix strip', async t => {
  const origin = await healthyOrigin()
  const proxy = await startProxy({ routes: [{ path: '/api', origin: origin.url, strip_prefix: true, host_header: 'keep' }] })
  t.teardown(async () => { await proxy.close(); await origin.close() })
  const res = await get(`${proxy.url}/api/echo`, { headers: { host: 'shop.example' } })
  const seen = JSON.parse(res.body) as { url: string, headers: Record<string, string> }
  t.equal(seen.url, '/echo')
  t.equal(seen.headers.host, 'shop.example')
  const miss = await get(`${proxy.url}/apix`, { headers: { accept: 'application/json' } })
  t.equal(miss.status, 404, 'no route → 404 edge page')
  t.equal(JSON.parse(miss.body).error_name, 'no_route')
})

t.test('bodies stream both ways', async t => {
  const origin = await healthyOrigin()
  const proxy = await startProxy({ origin: origin.url })
  t.teardown(async () => { await proxy.close(); await origin.close() })

  // Request body: 8 MiB in 64 KiB chunks, echoed back by the origin as it arrives.
  const chunk = Buffer.alloc(64 * 1024, 120)
  let sent = 0
  const body = new Readable({
    read () {
      if (sent === 128) { this.push(null); return }
      sent++
      this.push(chunk)
    }
  })
  const res = await request(`${proxy.url}/pipe`, { dispatcher: client, method: 'POST', body, headers: { 'content-type': 'application/octet-stream' } })
  let received = 0
  for await (const part of res.body) received += (part as Buffer).length
  t.equal(res.statusCode, 200)
  t.equal(received, 128 * 64 * 1024, 'every byte came back')

  // Response body: the first chunk arrives long before the origin has finished.
  const start = performance.now()
  const streamed = await request(`${proxy.url}/stream?chunks=40&size=1024`, { dispatcher: client })
  let first = -1
  let total = 0
  for await (const part of streamed.body) {
    if (first < 0) first = performance.now() - start
    total += (part as Buffer).length
  }
  const all = performance.now() - start
  t.equal(total, 40 * 1024)
  t.ok(first < all / 2, `first chunk after ${first.toFixed(0)} ms of ${all.toFixed(0)} ms`)

  // A body with a content type Fastify would parse (JSON) is forwarded untouched.
  const json = await get(`${proxy.url}/echo`, { method: 'POST', body: '{"a":', headers: { 'content-type': 'application/json' } })
  t.equal(json.status, 200)
  t.equal(JSON.parse(json.body).bodyBytes, 5)
})

t.test('HEAD gets headers and no body, errors too', async t => {
  const origin = await healthyOrigin()
  const proxy = await startProxy({ routes: [{ path: '/dead', origin: 'http://127.0.0.1:9' }, { origin: origin.url }] })
  t.teardown(async () => { await proxy.close(); await origin.close() })
  const ok = await get(`${proxy.url}/`, { method: 'HEAD' })
  t.equal(ok.status, 200)
  t.equal(ok.body, '')
  const dead = await get(`${proxy.url}/dead`, { method: 'HEAD' })
  t.equal(dead.status, 521)
  t.equal(dead.body, '')
})

/** A raw client that sends a request and hangs up after `ms`. */
function abandon (port: number, path: string, ms: number): Promise<void> {
  return new Promise(resolve => {
    const socket = net.connect({ host: '127.0.0.1', port }, () => {
      socket.write(`GET ${path} HTTP/1.1\r\nhost: abort.test\r\n\r\n`)
      setTimeout(() => { socket.destroy(); resolve() }, ms)
    })
  })
}

t.test('a client that leaves is a 499, the origin request is cancelled, no origin failure', async t => {
  let originClosed!: () => void
  const closed = new Promise<void>(resolve => { originClosed = resolve })
  const silent = net.createServer(s => { s.resume(); s.on('close', () => originClosed()) })
  await new Promise<void>(resolve => silent.listen(0, '127.0.0.1', resolve))
  const port = (silent.address() as net.AddressInfo).port
  const proxy = await startProxy({ origin: `http://127.0.0.1:${port}`, timeouts: { response: '30s' } })
  t.teardown(async () => { await proxy.close(); silent.close() })

  await abandon(proxy.port, '/slow', 150)
  const access = await proxy.waitForLog(l => l.msg === 'access' && l.host === 'abort.test')
  t.equal(access.status, 499)
  await closed
  t.pass('the origin connection was closed by the proxy')
  await new Promise(resolve => setTimeout(resolve, 50))
  t.equal(proxy.logs.filter(l => l.msg === 'origin failure').length, 0, 'not an origin failure')
  t.equal(proxy.logs.filter(l => l.msg === 'access').length, 1, 'exactly one access line')
})

t.test("redirects do not leak the origin's address", async t => {
  const http = await import('node:http')
  const origin = http.createServer((req, res) => {
    const port = (origin.address() as net.AddressInfo).port
    res.writeHead(302, { location: `http://127.0.0.1:${port}/next?a=1`, 'content-location': `http://127.0.0.1:${port}/here`, server: 'Apache/2.4 (internal-host-7)' }).end()
  })
  await new Promise<void>(resolve => origin.listen(0, '127.0.0.1', resolve))
  const url = `http://127.0.0.1:${(origin.address() as net.AddressInfo).port}`
  const proxy = await startProxy({ routes: [{ path: '/app', origin: url, strip_prefix: true }, { origin: 'http://127.0.0.1:9' }] })
  t.teardown(async () => { await proxy.close(); await new Promise(resolve => origin.close(resolve)) })
  const res = await get(`${proxy.url}/app/start`, { headers: { host: 'shop.example' } })
  t.equal(res.status, 302)
  t.equal(res.headers.location, 'http://shop.example/app/next?a=1')
  t.equal(res.headers['content-location'], 'http://shop.example/app/here')
  t.equal(res.headers.server, 'highproxy')
})
