// The transport's limits and queues (origin/transport.ts), on real loopback origins of the
// fault lab: the per-origin connection limit and its FIFO queue (full: refused at once;
// too long: refused at the pool's connect timeout), a pending dial holding a slot of its
// own origin only, eviction of an idle connection the request may not ride, the three
// reuse policies, tunnels counted until they close, a released client connection never
// adopting a late dial, retirement, each client's share, and the pending-connect cap as
// the transport wires it (a SYN-dropping origin: a second dial waits, sends no SYN, and
// fails at its own connect timeout). Nothing is mocked: every connection is a socket.

import t, { type Test } from 'tap'
import { originTarget } from '../../src/origin/dial.js'
import type { OriginConnection } from '../../src/origin/connection.js'
import { ConnectionOwner, Transport, type ConnectionSet, type TransportOptions } from '../../src/origin/transport.js'
import { healthyOrigin } from '../../src/lab/healthy-origin.js'
import { refusedOrigin, synDropOrigin } from '../../src/lab/faults.js'
import { serveOnLoopback, type LabOrigin } from '../../src/lab/loopback.js'
import net from 'node:net'
import type { DialInfo } from '../../src/origin/dial.js'
import { ClientShareError, ConnectFailedError, ConnectTimeoutError, ConnectionLimitError } from '../../src/status/errors.js'

type Options = Partial<Omit<TransportOptions, 'dial'>> & { connectTimeoutMs?: number }

function transportOf (t: Test, o: Options = {}): Transport {
  const connectTimeoutMs = o.connectTimeoutMs ?? 5000
  const transport = new Transport({
    dial: { connectTimeoutMs, tlsTimeoutMs: 5000, tls: { verify: true } },
    connection: { keepAliveTimeoutMs: 30_000, maxResponseHeaderBytes: 64 * 1024, backstopMs: 30_000 },
    reuse: 'never',
    maxConnections: 1,
    maxQueue: 8,
    maxPerClient: 0,
    queueTimeoutMs: connectTimeoutMs,
    maxPendingConnects: 0,
    onStray: () => { t.fail('no origin here answers nobody') },
    ...o
  })
  return transport
}

async function origin (t: Test, make: () => Promise<LabOrigin> = healthyOrigin): Promise<LabOrigin> {
  const o = await make()
  t.teardown(() => o.close())
  return o
}

/** The connections of this transport to that origin, closed when the test ends. */
function setOf (t: Test, transport: Transport, o: LabOrigin): ConnectionSet {
  const url = new URL(o.url)
  const set = transport.set(url.origin, originTarget(url))
  t.teardown(() => transport.retire([set]))
  return set
}

/** One GET over the connection: it is a real, working connection to the origin. */
async function get (c: OriginConnection): Promise<number> {
  const res = await c.client.request({ path: '/', method: 'GET' })
  await res.body.text()
  return res.statusCode
}

/** Whether the promise is still pending after everything already due has run. */
async function pending (p: Promise<unknown>): Promise<boolean> {
  const marker = Symbol('pending')
  return await Promise.race([p.then(() => null, () => null), new Promise(resolve => setImmediate(resolve, marker))]) === marker
}

const failure = async (p: Promise<unknown>): Promise<unknown> => p.then(() => null, (err: unknown) => err)

t.test('at the limit a request waits, and the queue is served in arrival order', async t => {
  const o = await origin(t)
  const transport = transportOf(t, { reuse: 'always', maxConnections: 1 })
  const set = setOf(t, transport, o)
  const first = await transport.open(set, null)
  t.equal(await get(first), 200)
  t.equal(set.live, 1)
  const order: string[] = []
  const second = transport.open(set, null).then(c => { order.push('second'); return c })
  const third = transport.open(set, null).then(c => { order.push('third'); return c })
  t.equal(set.waiting.length, 2, 'both wait: the one connection is busy')
  t.ok(await pending(second))
  transport.release(first, true)
  t.equal(await second, first, 'the freed connection goes to the first in line')
  t.ok(await pending(third), 'the next still waits')
  t.equal(await get(first), 200)
  transport.release(first, true)
  t.equal(await third, first)
  t.same(order, ['second', 'third'])
  t.equal(set.live, 1, 'never more than the limit')
  transport.release(first, true)
})

t.test('queue full: a request past max_queue is refused at once (HPX_ERR_CONNECTION_LIMIT)', async t => {
  const o = await origin(t)
  const transport = transportOf(t, { maxConnections: 1, maxQueue: 1 })
  const set = setOf(t, transport, o)
  const a = new ConnectionOwner()
  const b = new ConnectionOwner()
  const first = await transport.open(set, a)
  const queued = transport.open(set, b)
  const refused = await failure(transport.open(set, new ConnectionOwner()))
  t.ok(refused instanceof ConnectionLimitError)
  t.equal((refused as ConnectionLimitError).code, 'HPX_ERR_CONNECTION_LIMIT')
  t.match((refused as Error).message, /all 1 connections to the origin are busy \(queue full\)/)
  transport.release(first, false)
  const next = await queued
  t.not(next, first, 'a connection closed after its request frees its slot for a new dial')
  t.equal(next.owner, b)
  transport.release(next, false)
  const none = transportOf(t, { maxConnections: 1, maxQueue: 0 })
  const noneSet = setOf(t, none, o)
  const only = await none.open(noneSet, null)
  t.ok(await failure(none.open(noneSet, null)) instanceof ConnectionLimitError, 'max_queue 0: no waiting at all')
  none.release(only, false)
})

t.test("queue timeout: a waiter is refused at the pool's connect timeout, and leaves the queue", async t => {
  const o = await origin(t)
  const transport = transportOf(t, { maxConnections: 1, connectTimeoutMs: 150 })
  const set = setOf(t, transport, o)
  const first = await transport.open(set, null)
  const started = Date.now()
  const err = await failure(transport.open(set, null))
  t.ok(err instanceof ConnectionLimitError)
  t.match((err as Error).message, /\(queue timeout\)/)
  t.ok(Date.now() - started >= 100, 'not before its time (a generous bound: timers may fire a little early)')
  t.equal(set.waiting.length, 0)
  transport.release(first, false)
  t.equal(set.waiting.length, 0)
})

t.test('a failed dial gives its slot back', async t => {
  const o = await origin(t, refusedOrigin)
  const transport = transportOf(t, { maxConnections: 1 })
  const set = setOf(t, transport, o)
  for (let i = 0; i < 3; i++) {
    t.ok(await failure(transport.open(set, null)) instanceof ConnectFailedError, `dial ${i + 1}: refused (521)`)
    t.equal(set.live, 0, 'no slot held')
  }
})

t.test("a pending dial holds a slot of its own origin only: another origin's dial goes ahead", async t => {
  const dropping = await origin(t, synDropOrigin)
  const healthy = await origin(t)
  const transport = transportOf(t, { maxConnections: 1, connectTimeoutMs: 800 })
  const stuck = setOf(t, transport, dropping)
  const fine = setOf(t, transport, healthy)
  const hanging = failure(transport.open(stuck, null))
  t.equal(stuck.live, 1, 'the hanging dial counts against its origin')
  const c = await transport.open(fine, null)
  t.equal(await get(c), 200, 'the other origin is dialled and answers while the first dial hangs')
  transport.release(c, false)
  const err = await hanging
  t.ok(err instanceof ConnectTimeoutError, 'the dropped SYN: a connect timeout (522)')
  t.equal(stuck.live, 0)
})

t.test('at the limit, an idle connection the request may not ride is closed to make room', async t => {
  const o = await origin(t)
  // A queue timeout well inside the lab origin's own keep-alive (5 s): a waiter is never
  // rescued by the origin closing its idle connection.
  const transport = transportOf(t, { reuse: 'never', maxConnections: 1, connectTimeoutMs: 2000 })
  const set = setOf(t, transport, o)
  const a = new ConnectionOwner()
  const b = new ConnectionOwner()
  const mine = await transport.open(set, a)
  t.equal(await get(mine), 200)
  transport.release(mine, true)
  t.equal(transport.idle(set, a), mine, 'its own client connection rides it again')
  transport.release(mine, true)
  t.equal(transport.idle(set, b), null, 'under never, another client connection may not')
  const opening = transport.open(set, b)
  t.ok(mine.closed, 'the idle one was closed for it, there and then')
  t.equal(set.waiting.length, 0, 'it did not wait')
  const theirs = await opening
  t.not(theirs, mine)
  t.equal(set.live, 1)
  t.equal(await get(theirs), 200)
  transport.release(theirs, true)
})

t.test('a connection its client connection keeps, freed while another waits, is closed for the waiter', async t => {
  const o = await origin(t)
  const transport = transportOf(t, { reuse: 'never', maxConnections: 1, connectTimeoutMs: 2000 })
  const set = setOf(t, transport, o)
  const a = new ConnectionOwner()
  const mine = await transport.open(set, a)
  const waiting = transport.open(set, new ConnectionOwner())
  t.ok(await pending(waiting), 'busy: the other client connection waits')
  transport.release(mine, true)
  t.ok(mine.closed, 'released: its owner may not share it, so it makes room')
  const theirs = await waiting
  t.equal(await get(theirs), 200)
  transport.release(theirs, false)
})

t.test('reuse never: a connection serves one client connection, and closes with it', async t => {
  const o = await origin(t)
  const transport = transportOf(t, { reuse: 'never', maxConnections: 4 })
  const set = setOf(t, transport, o)
  const a = new ConnectionOwner()
  const c = await transport.open(set, a)
  t.equal(c.owner, a)
  t.equal(await get(c), 200)
  transport.release(c, true)
  const other = new ConnectionOwner()
  other.started = true
  t.equal(transport.idle(set, other), null)
  t.equal(transport.idle(set, null), null, 'nor a request of no client connection (a health check)')
  a.release()
  t.ok(c.closed, 'its client connection left: closed')
  t.equal(set.shared.length, 0)
})

t.test("reuse safe: never a client connection's first request; later ones take what others left", async t => {
  const o = await origin(t)
  const transport = transportOf(t, { reuse: 'safe', maxConnections: 4 })
  const set = setOf(t, transport, o)
  const a = new ConnectionOwner()
  const c = await transport.open(set, a)
  t.equal(await get(c), 200)
  transport.release(c, true)
  a.release()
  t.notOk(c.closed, 'its client left: kept, for others')
  t.same(set.shared, [c])
  const b = new ConnectionOwner()
  t.equal(transport.idle(set, b), null, 'a first request rides no connection another client used')
  b.started = true
  t.equal(transport.idle(set, b), c, 'a later one does')
  t.equal(c.owner, b, 'and now it is that client connection\'s')
  t.equal(await get(c), 200)
  transport.release(c, true)
  const d = new ConnectionOwner()
  d.started = true
  t.equal(transport.idle(set, d), null, 'owned again: not shared while its client connection is here')
})

t.test('reuse always: any idle connection serves any request', async t => {
  const o = await origin(t)
  const transport = transportOf(t, { reuse: 'always', maxConnections: 4 })
  const set = setOf(t, transport, o)
  const a = new ConnectionOwner()
  const c = await transport.open(set, a)
  t.equal(c.owner, null, 'nobody owns a connection under always')
  t.equal(await get(c), 200)
  transport.release(c, true)
  const b = new ConnectionOwner()
  t.equal(transport.idle(set, b), c, "even another client connection's first request")
  t.equal(await get(c), 200)
  transport.release(c, true)
})

t.test('a connection not cleanly done is never reused', async t => {
  const o = await origin(t)
  const transport = transportOf(t, { reuse: 'always', maxConnections: 4 })
  const set = setOf(t, transport, o)
  const c = await transport.open(set, null)
  transport.release(c, false)
  t.ok(c.closed)
  t.equal(transport.idle(set, null), null)
  t.equal(set.live, 0)
})

t.test('a tunnel holds its slot until it closes', async t => {
  const o = await origin(t)
  const transport = transportOf(t, { maxConnections: 1 })
  const set = setOf(t, transport, o)
  const c = await transport.open(set, null)
  const closed = transport.tunnel(c)
  t.ok(c.closed, 'the socket left undici')
  t.equal(set.live, 1, 'but still counts')
  const next = transport.open(set, null)
  t.ok(await pending(next), 'so the next request waits')
  closed()
  const fresh = await next
  t.equal(await get(fresh), 200, 'the tunnel closed: its slot went to the waiter')
  transport.release(fresh, false)
})

t.test('a dial that finishes after its client connection left is not adopted by it', async t => {
  const o = await origin(t)
  const transport = transportOf(t, { reuse: 'never', maxConnections: 4 })
  const set = setOf(t, transport, o)
  const a = new ConnectionOwner()
  const dialling = transport.open(set, a)
  a.release()
  const c = await dialling
  t.equal(c.owner, null)
  t.same(a.owned, [])
  transport.release(c, true)
  t.ok(c.closed, 'under never, a connection nobody owns closes')
})

t.test('retire: idle connections close now, busy ones when their request ends', async t => {
  const o = await origin(t)
  for (const reuse of ['always', 'never'] as const) {
    const transport = transportOf(t, { reuse, maxConnections: 4 })
    const set = setOf(t, transport, o)
    const owner = new ConnectionOwner()
    const idle = await transport.open(set, owner)
    const busy = await transport.open(set, owner)
    transport.release(idle, true)
    transport.retire([set])
    t.ok(idle.closed, `${reuse}: the idle one closed`)
    t.notOk(busy.closed)
    t.equal(await get(busy), 200, 'the busy one finishes its request')
    transport.release(busy, true)
    t.ok(busy.closed, 'and is not kept, not even for its own client connection')
  }
})

t.test("each client's share of an origin, as the transport wires it", async t => {
  const o = await origin(t)
  const transport = transportOf(t, { maxConnections: 4, maxPerClient: 1, connectTimeoutMs: 100 })
  const set = setOf(t, transport, o)
  t.equal(transport.enterShare(set, '192.0.2.1'), null, 'within its share: counted at once')
  const second = transport.enterShare(set, '192.0.2.1') as Promise<void>
  t.ok(second instanceof Promise, 'past it, it waits')
  t.equal(transport.enterShare(set, '192.0.2.2'), null, 'another client does not wait behind it')
  transport.leaveShare(set, '192.0.2.1')
  await second
  t.pass('one of its own ended: the next is counted')
  const third = transport.enterShare(set, '192.0.2.1') as Promise<void>
  t.ok(await failure(third) instanceof ClientShareError, "at the pool's connect timeout: HPX_ERR_CLIENT_SHARE")
  const whole = transportOf(t, { maxConnections: 2, maxPerClient: 2 })
  const wholeSet = setOf(t, whole, o)
  t.equal(wholeSet.share, null, 'a share as large as the whole limit is no share')
  for (let i = 0; i < 5; i++) t.equal(whole.enterShare(wholeSet, '192.0.2.1'), null)
  t.equal(setOf(t, transportOf(t, { maxConnections: 4, maxPerClient: 0 }), o).share, null, '0: off')
})

t.test('the pending-connect cap: a dial past it sends no SYN, and fails at its own connect timeout', async t => {
  const dropping = await origin(t, synDropOrigin)
  const transport = transportOf(t, { maxConnections: 8, maxPendingConnects: 1, connectTimeoutMs: 800 })
  const set = setOf(t, transport, dropping)
  t.same(set.connects?.view(), { pending: 0, waiting: 0, cap: 1 })
  const first = failure(transport.open(set, null))
  const second = failure(transport.open(set, null))
  // Each dial enters the gate after its (instant) address lookup: wait for both to be there.
  for (let i = 0; i < 200 && set.connects?.view().waiting !== 1; i++) await new Promise(resolve => setTimeout(resolve, 5))
  t.same(set.connects?.view(), { pending: 1, waiting: 1, cap: 1 }, 'one SYN out, one dial waiting behind it')
  const [a, b] = await Promise.all([first, second])
  t.ok(a instanceof ConnectTimeoutError)
  t.equal((a as ConnectTimeoutError).waitedBehind, null, 'the first sent its SYN')
  t.ok(b instanceof ConnectTimeoutError, 'the second: a connect timeout too (522)')
  t.equal((b as ConnectTimeoutError).waitedBehind, 1, 'that never sent a SYN: it waited behind one unanswered connect')
  t.same(set.connects?.view(), { pending: 0, waiting: 0, cap: 1 })
  t.equal(set.live, 0)
  t.equal(setOf(t, transportOf(t, { maxPendingConnects: 0 }), dropping).connects, null, '0: no cap')
})

t.test('an origin that sends bytes with no request outstanding: that connection closes, under every policy, and the transport says so', async t => {
  // An origin that answers its request, and sends another response when the test says.
  const sockets: net.Socket[] = []
  const server = net.createServer(socket => {
    sockets.push(socket)
    socket.once('data', () => socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'))
  })
  const o = await serveOnLoopback(server, { key: 'stray', status: null, description: 'answers twice' })
  t.teardown(() => o.close())
  for (const reuse of ['never', 'safe', 'always'] as const) {
    let told: (stray: { set: ConnectionSet, info: DialInfo }) => void = () => {}
    const strayed = new Promise<{ set: ConnectionSet, info: DialInfo }>(resolve => { told = resolve })
    const transport = transportOf(t, { reuse, maxConnections: 2, onStray: (set, info) => told({ set, info }) })
    const set = setOf(t, transport, o)
    const owner = new ConnectionOwner()
    const c = await transport.open(set, owner)
    t.equal(await get(c), 200)
    transport.release(c, true)
    t.notOk(c.closed, `${reuse}: kept for reuse`)
    ;(sockets[sockets.length - 1] as net.Socket).write('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n')
    const stray = await strayed
    t.ok(c.closed, 'the connection is closed')
    t.equal(stray.set, set)
    t.equal(stray.info.port, Number(new URL(o.url).port), 'told with what its dial learned')
    t.equal(set.live, 0)
    t.equal(transport.idle(set, owner), null, 'and never ridden again')
  }
})
