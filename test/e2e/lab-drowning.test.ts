// The lab's drowning origin, seen by plain clients: it serves one request at a time for
// service_ms each, and once its small accept queue is full the kernel drops SYNs, so a
// connect succeeds only after the client's kernel retransmits its SYN (1 s later).

import net from 'node:net'
import t from 'tap'
import { Client } from 'undici'
import { drowningOrigin, startLab } from '../../src/lab/index.js'

const target = (url: string): { host: string, port: number } => ({ host: new URL(url).hostname, port: Number(new URL(url).port) })

/** Connects, and says how long the handshake took (the socket is kept open: it holds its place in the queue). */
function timedConnect (url: string, sockets: net.Socket[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const start = performance.now()
    const socket = net.connect(target(url))
    sockets.push(socket)
    socket.on('error', reject)
    socket.once('connect', () => resolve(performance.now() - start))
  })
}

t.test('one request at a time, service_ms each: goodput is 1000 / service_ms', async t => {
  const origin = await drowningOrigin({ service_ms: 60, backlog: 8 })
  t.teardown(origin.close)
  t.match(origin, { key: 'drowning', status: null, available: true, description: /one request at a time, 60 ms each \(16\.7 req\/s\), backlog 8/ })
  // Six clients, one connection each, all asking at once.
  const clients = Array.from({ length: 6 }, () => new Client(origin.url))
  t.teardown(() => Promise.all(clients.map(c => c.close())))
  const start = performance.now()
  const answers = await Promise.all(clients.map(async c => {
    const res = await c.request({ method: 'GET', path: '/' })
    await res.body.text()
    return { status: res.statusCode, served: Number(res.headers['x-lab-served']), ms: performance.now() - start }
  }))
  t.same(answers.map(a => a.status), [200, 200, 200, 200, 200, 200])
  t.same(answers.map(a => a.served).sort((a, b) => a - b), [1, 2, 3, 4, 5, 6], 'each request served once, in turn')
  const last = Math.max(...answers.map(a => a.ms))
  t.ok(last >= 6 * 60, `six requests took ${last.toFixed(0)} ms: one after the other, never two at once`)
})

t.test('past its backlog, SYNs are dropped: a connect then takes a SYN retransmit (whole seconds)', async t => {
  // A request holds the origin for 3 s; meanwhile connections fill its accept queue
  // (backlog 1 holds two) until one no longer completes at once.
  const origin = await drowningOrigin({ service_ms: 3000, backlog: 1 })
  const sockets: net.Socket[] = []
  t.teardown(async () => {
    for (const s of sockets) s.destroy()
    await origin.close()
  })
  const busy = new Client(origin.url)
  t.teardown(() => busy.destroy())
  busy.request({ method: 'GET', path: '/' }).then(res => res.body.dump(), () => {})
  const quick: number[] = []
  let slow = 0
  // Until the origin blocks on that request it accepts everything; give it up to 2 s.
  for (let i = 0; i < 100 && slow === 0; i++) {
    const ms = await timedConnect(origin.url, sockets)
    if (ms < 500) quick.push(ms)
    else slow = ms
    await new Promise(resolve => setTimeout(resolve, 20))
  }
  t.ok(quick.length >= 2, `${quick.length} connects went through at once (the accept queue)`)
  t.ok(slow > 0, `then a connect took ${slow.toFixed(0)} ms`)
  // Retransmits go at whole seconds: 1, 3, 7 s, or 1, 2, 3, 4 s with tcp_syn_linear_timeouts (Linux ≥ 6.5).
  const step = Math.round(slow / 1000) * 1000
  t.ok(step >= 1000 && Math.abs(slow - step) < 250, `${slow.toFixed(0)} ms is a SYN retransmit at ${step / 1000} s: the first SYN was dropped`)
})

t.test('in the lab catalog under "drowning", with its knobs', async t => {
  const lab = await startLab({ faults: { drowning: { service_ms: 10, backlog: 4 } } })
  t.teardown(() => lab.close())
  t.match(lab.origins.drowning.description, /10 ms each \(100 req\/s\), backlog 4/)
  const c = new Client(lab.urls.drowning)
  t.teardown(() => c.close())
  const res = await c.request({ method: 'GET', path: '/' })
  t.equal(res.statusCode, 200)
  t.equal(await res.body.text(), 'served, 10 ms of work\n')
})

t.test('bad knobs are refused, naming the knob', async t => {
  await t.rejects(drowningOrigin({ service_ms: 0 }), { name: 'TypeError', message: /service_ms/ })
  await t.rejects(drowningOrigin({ backlog: 0.5 }), { name: 'TypeError', message: /backlog/ })
})
