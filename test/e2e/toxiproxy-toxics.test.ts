// Toxiproxy's seven toxics, each added with toxiproxy-node-client and measured on the
// wire: against a TCP echo upstream (what Toxiproxy's own tests use) and an HTTP one.
// Timed effects are read against a baseline taken in the same test, with values large
// enough that a loaded 2-core machine's hiccups stay inside the tolerance.

import net from 'node:net'
import t from 'tap'
import { request } from 'undici'
import { Toxiproxy, type Proxy } from 'toxiproxy-node-client'
import { startToxiproxy } from '../../src/lab/index.js'
import { echoUpstream, exchange, httpUpstream, median, portOf } from '../toxiproxy-support.js'

const echo = await echoUpstream()
t.teardown(() => echo.close())
const web = await httpUpstream()
t.teardown(() => web.close())
const server = await startToxiproxy({ port: 0 })
t.teardown(() => server.close())
const api = new Toxiproxy(server.url)

let serial = 0
async function proxyTo (upstream: string): Promise<{ proxy: Proxy, port: number }> {
  const proxy = await api.createProxy({ name: `p${++serial}`, listen: '127.0.0.1:0', upstream })
  return { proxy, port: portOf(proxy.listen) }
}

const addToxic = (proxy: Proxy, body: Record<string, unknown>): ReturnType<Proxy['addToxic']> => proxy.addToxic(body as any)

/** Median round trip of `n` fresh echo exchanges of `bytes`. */
async function roundTrip (port: number, n = 5, bytes = 16): Promise<number> {
  const times: number[] = []
  for (let i = 0; i < n; i++) times.push((await exchange(port, Buffer.alloc(bytes, 'x'), bytes)).ms)
  return median(times)
}

/** A persistent connection: write, wait for the echo, time it. */
function persistent (port: number): Promise<{ ask: (text: string) => Promise<{ text: string, ms: number }>, socket: net.Socket }> {
  return new Promise(resolve => {
    const socket = net.connect({ host: '127.0.0.1', port }, () => resolve({ socket, ask }))
    socket.on('error', () => {})
    const ask = (text: string): Promise<{ text: string, ms: number }> => new Promise(done => {
      let got = ''
      const t0 = performance.now()
      const onData = (d: Buffer): void => {
        got += d.toString()
        if (got.length >= text.length) { socket.off('data', onData); done({ text: got, ms: performance.now() - t0 }) }
      }
      socket.on('data', onData)
      socket.write(text)
    })
  })
}

t.test('latency: adds its delay within ±10%, also to a connection already open, and leaves with its data', async t => {
  const { proxy, port } = await proxyTo(echo.address)
  const open = await persistent(port)
  t.teardown(() => open.socket.destroy())
  const before = median([(await open.ask('a')).ms, (await open.ask('b')).ms, (await open.ask('c')).ms])
  const base = await roundTrip(port)
  const LATENCY = 600
  const toxic = await addToxic(proxy, { type: 'latency', attributes: { latency: LATENCY, jitter: 0 } })
  const added = (await roundTrip(port, 3)) - base
  t.ok(added >= LATENCY * 0.9 && added <= LATENCY * 1.1, `new connections: ${added.toFixed(0)} ms added (want ${LATENCY} ± 10%)`)
  const openAdded = median([(await open.ask('d')).ms, (await open.ask('e')).ms, (await open.ask('f')).ms]) - before
  t.ok(openAdded >= LATENCY * 0.9 && openAdded <= LATENCY * 1.1, `the open connection: ${openAdded.toFixed(0)} ms added`)

  // Composition: a second latency toxic, upstream, adds its own.
  const up = await addToxic(proxy, { type: 'latency', stream: 'upstream', attributes: { latency: 300 } })
  const both = (await roundTrip(port, 3)) - base
  t.ok(both >= 900 * 0.9 && both <= 900 * 1.1, `latency upstream 300 + downstream 600: ${both.toFixed(0)} ms added`)
  await up.remove()

  // Removed while it holds a chunk: the chunk goes on at once (Toxiproxy drops nothing).
  await toxic.update({ attributes: { latency: 60_000, jitter: 0 } } as any)
  const held = open.ask('held')
  await new Promise(resolve => setTimeout(resolve, 200))
  const removedAt = performance.now()
  await toxic.remove()
  const got = await held
  t.equal(got.text, 'held')
  t.ok(performance.now() - removedAt < 1000, 'delivered when the toxic went, not after its 60 s')
  t.ok((await open.ask('after')).ms - before < 200, 'and the connection is fast again (piped)')
})

t.test('latency with jitter stays within latency ± jitter; on an HTTP upstream too', async t => {
  const { proxy, port } = await proxyTo(web.address)
  const get = async (): Promise<number> => {
    const t0 = performance.now()
    const res = await request(`http://127.0.0.1:${port}/`, { reset: true })
    t.equal(await res.body.text(), 'hello from the upstream\n')
    return performance.now() - t0
  }
  const base = median([await get(), await get(), await get()])
  await addToxic(proxy, { type: 'latency', attributes: { latency: 500, jitter: 150 } })
  const times: number[] = []
  for (let i = 0; i < 5; i++) times.push(await get() - base)
  t.ok(times.every(ms => ms >= 350 * 0.9 && ms <= 650 * 1.1), `each within 500 ± 150 ms: ${times.map(x => x.toFixed(0)).join(', ')}`)
})

t.test('bandwidth: the rate in KB/s (1 KB = 1000 bytes) within ±15%', async t => {
  const { proxy, port } = await proxyTo(echo.address)
  const BYTES = 300_000
  const base = (await exchange(port, Buffer.alloc(BYTES, 'y'), BYTES)).ms
  await addToxic(proxy, { type: 'bandwidth', attributes: { rate: 200 } })
  const res = await exchange(port, Buffer.alloc(BYTES, 'y'), BYTES, 10_000)
  t.equal(res.data.length, BYTES, 'every byte')
  const expected = BYTES / 200 // ms at 200 KB/s
  const took = res.ms - base
  t.ok(took >= expected * 0.85 && took <= expected * 1.15, `${BYTES} bytes in ${took.toFixed(0)} ms (want ${expected} ± 15%)`)
})

t.test('slow_close: the close comes `delay` ms late, the data on time', async t => {
  const { proxy, port } = await proxyTo(echo.address)
  const closeAfter = (): Promise<{ data: number, end: number }> => new Promise(resolve => {
    const socket = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true }, () => socket.end('bye'))
    const t0 = performance.now()
    let data = 0
    socket.on('data', () => { data = performance.now() - t0 })
    socket.on('end', () => { resolve({ data, end: performance.now() - t0 }); socket.destroy() })
  })
  const base = await closeAfter()
  await addToxic(proxy, { type: 'slow_close', attributes: { delay: 800 } })
  const slow = await closeAfter()
  t.ok(slow.data < 400, `the echo came at once (${slow.data.toFixed(0)} ms)`)
  const added = slow.end - base.end
  t.ok(added >= 800 * 0.9 && added <= 800 * 1.1 + 100, `the end came ${added.toFixed(0)} ms later (want 800)`)
})

t.test('timeout: holds the data and closes after `timeout`; 0 holds until removed, and removing it closes', async t => {
  const { proxy, port } = await proxyTo(echo.address)
  const toxic = await addToxic(proxy, { type: 'timeout', attributes: { timeout: 700 } })
  const res = await exchange(port, 'lost', 4, 5000)
  t.equal(res.data.length, 0, 'no byte came back')
  t.equal(res.ended, 'end', 'the connection was closed')
  t.ok(res.ms >= 700 * 0.9 && res.ms <= 700 * 1.1 + 150, `closed after ${res.ms.toFixed(0)} ms (want 700)`)

  await toxic.update({ attributes: { timeout: 0 } } as any)
  const holding = exchange(port, 'held', 4, 60_000)
  await new Promise(resolve => setTimeout(resolve, 1200))
  const removedAt = performance.now()
  await toxic.remove()
  const held = await holding
  t.equal(held.data.length, 0, 'nothing in 1.2 s')
  t.equal(held.ended, 'end', 'removing the toxic closed the connection it held (as Toxiproxy does)')
  t.ok(performance.now() - removedAt < 1000)
  t.equal((await exchange(port, 'free', 4)).data.toString(), 'free', 'new connections pass')
})

t.test('reset_peer: ECONNRESET at once, or after `timeout`', async t => {
  const { proxy, port } = await proxyTo(echo.address)
  const toxic = await addToxic(proxy, { type: 'reset_peer', attributes: { timeout: 0 } })
  const now = await exchange(port, 'boom', 4, 5000)
  t.equal(now.ended, 'reset', 'the client got ECONNRESET')
  t.equal(now.data.length, 0)
  await toxic.update({ attributes: { timeout: 600 } } as any)
  const later = await exchange(port, 'boom', 4, 5000)
  t.equal(later.ended, 'reset')
  t.ok(later.ms >= 600 * 0.9 && later.ms <= 600 * 1.1 + 150, `reset after ${later.ms.toFixed(0)} ms (want 600)`)
})

t.test('limit_data: cuts at the byte, then closes', async t => {
  const { proxy } = await proxyTo(echo.address)
  const port = portOf(proxy.listen)
  await addToxic(proxy, { type: 'limit_data', attributes: { bytes: 1000 } })
  const payload = Buffer.from(Array.from({ length: 5000 }, (_, i) => i % 251))
  const res = await exchange(port, payload, 5000, 5000)
  t.equal(res.data.length, 1000, 'exactly 1000 bytes')
  t.same(res.data, payload.subarray(0, 1000), 'the first 1000')
  t.equal(res.ended, 'end', 'then the connection closed')
})

t.test('slicer: delivers in slices of about average_size, every byte in order', async t => {
  const { proxy, port } = await proxyTo(echo.address)
  await addToxic(proxy, { type: 'slicer', attributes: { average_size: 100, size_variation: 30, delay: 8000 } })
  const payload = Buffer.from(Array.from({ length: 4000 }, (_, i) => (i * 7) % 256))
  const res = await exchange(port, payload, 4000, 10_000)
  t.same(res.data, payload, 'the same bytes')
  t.ok(res.arrivals.length >= 20, `${res.arrivals.length} pieces arrived`)
  // Two slices may meet in the client's receive buffer; never more than a few.
  t.ok(res.arrivals.every(a => a.bytes <= 400), `largest piece ${Math.max(...res.arrivals.map(a => a.bytes))} bytes`)
  t.ok(res.ms >= 30 * 8 * 0.8, `the 8 ms pauses add up: ${res.ms.toFixed(0)} ms`)
})

t.test('toxicity 0.5 applies to about half of 200 connections', async t => {
  const { proxy, port } = await proxyTo(echo.address)
  await addToxic(proxy, { type: 'limit_data', toxicity: 0.5, attributes: { bytes: 1 } })
  let cut = 0
  let whole = 0
  for (let batch = 0; batch < 10; batch++) {
    const results = await Promise.all(Array.from({ length: 20 }, () => exchange(port, 'hello', 5, 5000)))
    for (const r of results) {
      if (r.data.length === 1) cut++
      else if (r.data.toString() === 'hello') whole++
    }
  }
  t.equal(cut + whole, 200, 'each connection either cut at 1 byte or whole')
  // Binomial(200, 0.5): standard deviation 7; 70–130 is more than 4 of them.
  t.ok(cut >= 70 && cut <= 130, `${cut} of 200 cut`)
})

t.test('data passes unchanged: 4 MiB of random bytes, piped and through a chain of toxics that do not apply', async t => {
  const { proxy, port } = await proxyTo(echo.address)
  const payload = (await import('node:crypto')).randomBytes(4 << 20)
  const piped = await exchange(port, payload, payload.length, 20_000)
  t.ok(piped.data.equals(payload), 'no toxic: every byte, in order')
  // Toxicity 0: the link leaves the pipe for the chain, and the chain passes everything on.
  await addToxic(proxy, { name: 'l0', type: 'latency', toxicity: 0, attributes: { latency: 1000 } })
  await addToxic(proxy, { name: 'c0', type: 'limit_data', toxicity: 0, attributes: { bytes: 1 } })
  await addToxic(proxy, { name: 'u0', type: 'slicer', stream: 'upstream', toxicity: 0, attributes: { average_size: 1 } })
  const chained = await exchange(port, payload, payload.length, 20_000)
  t.ok(chained.data.equals(payload), 'through the stages: every byte, in order')
})
