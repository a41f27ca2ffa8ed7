// The proxy loop's sequencing, on real loopback sockets: an attempt, its outcome, the
// decision, and the lines in the order they are written. A failed attempt's failure line
// is written where it failed, before the next attempt starts, and says it answered
// nobody; the last one says what the client got; the access line comes after them all.

import t from 'tap'
import { Client } from 'undici'
import { refusedOrigin } from '../../src/lab/faults.js'
import { startProxy, type LogLine, type TestProxy } from '../helpers.js'
import { scriptedOrigin } from '../origins.js'

const ok = (body: string): string => `HTTP/1.1 200 OK\r\ncontent-length: ${body.length}\r\nconnection: keep-alive\r\n\r\n${body}`

/** The failure and access lines of the proxy so far, in the order written. */
const lines = (proxy: TestProxy): LogLine[] => proxy.logs.filter(l => l.msg === 'origin failure' || l.msg === 'access')

async function request (client: Client, path = '/'): Promise<{ status: number, body: string }> {
  const res = await client.request({ path, method: 'GET' })
  return { status: res.statusCode, body: await res.body.text() }
}

t.test('failover: the first attempt\'s line is out before the second origin sees the request', async t => {
  const dead = await refusedOrigin()
  let linesWhenAsked: LogLine[] | null = null
  let proxy: TestProxy | null = null
  const good = await scriptedOrigin((_req, socket) => {
    linesWhenAsked = lines(proxy as TestProxy).map(l => ({ ...l }))
    socket.write(ok('second'))
  })
  proxy = await startProxy({ pools: [{ name: 'web', origins: [dead.url, good.url] }], routes: [{ pool: 'web' }] })
  const client = new Client(proxy.url)
  t.teardown(async () => { await client.close(); await (proxy as TestProxy).close(); await good.close() })
  const res = await request(client)
  t.same(res, { status: 200, body: 'second' })
  t.match(linesWhenAsked, [{ msg: 'origin failure', attempt: 1, edge_status: 521, served: 'none', origin: { url: dead.url } }],
    'when the second attempt reached its origin, the first one\'s line was written, and only it')
  const access = await proxy.waitForLog(l => l.msg === 'access')
  t.equal(access.status, 200)
  t.same(lines(proxy).map(l => l.msg), ['origin failure', 'access'], 'one failure line, then the access line')
})

t.test('both origins fail: the first line answered nobody, the last one the client, then the access line', async t => {
  const a = await refusedOrigin()
  const b = await refusedOrigin()
  const proxy = await startProxy({ pools: [{ name: 'web', origins: [a.url, b.url] }], routes: [{ pool: 'web' }] })
  const client = new Client(proxy.url)
  t.teardown(async () => { await client.close(); await proxy.close() })
  t.equal((await request(client)).status, 521)
  await proxy.waitForLog(l => l.msg === 'access')
  t.match(lines(proxy), [
    { msg: 'origin failure', attempt: 1, served: 'none', edge_status: 521 },
    { msg: 'origin failure', attempt: 2, served: 'page', edge_status: 521 },
    { msg: 'access', status: 521, edge_status: 521 }
  ])
  const [first, second] = lines(proxy)
  t.not(first?.origin.url, second?.origin.url, 'the second attempt went to the other origin')
})

t.test('the keep-alive race: a reused connection dropped unanswered is tried again on a fresh one to the same origin', async t => {
  let linesWhenAsked: LogLine[] | null = null
  let proxy: TestProxy | null = null
  const origin = await scriptedOrigin((req, socket) => {
    // The first request on the first connection is answered; the second one on it is
    // dropped unanswered, as by an origin closing an idle connection just as it was reused.
    const onConnection = origin.requests.filter(r => r.conn === req.conn).length
    if (req.conn === 1 && onConnection === 2) { socket.destroy(); return }
    if (req.conn === 2) linesWhenAsked = lines(proxy as TestProxy).map(l => ({ ...l }))
    socket.write(ok(`conn ${req.conn}`))
  })
  proxy = await startProxy({ pools: [{ name: 'web', origins: [origin.url] }], routes: [{ pool: 'web' }] })
  const client = new Client(proxy.url)
  t.teardown(async () => { await client.close(); await (proxy as TestProxy).close(); await origin.close() })
  t.same(await request(client, '/one'), { status: 200, body: 'conn 1' })
  await proxy.waitForLog(l => l.msg === 'access')
  t.same(await request(client, '/two'), { status: 200, body: 'conn 2' }, 'answered on a fresh connection')
  t.same(origin.requests.map(r => [r.url, r.conn]), [['/one', 1], ['/two', 1], ['/two', 2]], 'the same origin, the same request, a new connection')
  t.match(linesWhenAsked, [{ msg: 'access' }, { msg: 'origin failure', attempt: 1, edge_status: 520, served: 'none' }],
    'the dropped attempt\'s line was written before the retry reached the origin')
  const second = await proxy.waitForLog(l => l.msg === 'access' && l.path === '/two')
  t.equal(second.status, 200)
  t.equal(proxy.logs.filter(l => l.msg === 'origin failure').length, 1, 'one failure line: the retry succeeded')
})

t.test('no second attempt once the request reached the origin: one line, it says what the client got', async t => {
  const origin = await scriptedOrigin((_req, socket) => { socket.destroy() })
  const spare = await scriptedOrigin((_req, socket) => { socket.write(ok('spare')) })
  const proxy = await startProxy({ pools: [{ name: 'web', origins: [origin.url, spare.url] }], routes: [{ pool: 'web' }] })
  const client = new Client(proxy.url)
  t.teardown(async () => { await client.close(); await proxy.close(); await origin.close(); await spare.close() })
  const res = await request(client)
  t.equal(res.status, 520, 'a fresh connection dropped after the request was sent: not the keep-alive race')
  await proxy.waitForLog(l => l.msg === 'access')
  t.match(lines(proxy), [{ msg: 'origin failure', attempt: 1, served: 'page', edge_status: 520 }, { msg: 'access', status: 520 }])
  t.equal(spare.requests.length, 0, 'the other origin never saw it')
})
