// The lab's refused ports cannot be handed to a listener on port 0. They used to be found
// by listening on port 0 and closing: the port went back to the kernel's ephemeral range,
// and a listener on port 0 in a test running beside it could be given it (http2.test.ts
// failed that way in CI), so the "refused" origin answered.

import net from 'node:net'
import t from 'tap'
import { request } from 'undici'
import { startLab } from '../../src/lab/index.js'
import { ephemeralRange } from '../../src/lab/loopback.js'
import { client } from '../helpers.js'

const portOf = (url: string): number => Number(new URL(url).port)

const refuses = (url: string): Promise<boolean> => new Promise(resolve => {
  const socket = net.connect({ host: new URL(url).hostname, port: portOf(url) })
  socket.once('connect', () => { socket.destroy(); resolve(false) })
  socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'))
})

t.test('521 and 521-after refuse on a port no port-0 listener can be given', async t => {
  const lab = await startLab({ faults: { '521': true, '521-after': { requests: 1 } } })
  t.teardown(() => lab.close())
  const [low, high] = ephemeralRange()
  for (const key of ['521', '521-after'] as const) {
    const port = portOf(lab.urls[key])
    t.ok(port < low || port > high, `${key}: port ${port} is outside the ephemeral range ${low}-${high}`)
  }
  // 521-after answers once, then stops listening: its port is refused from then on.
  const once = await request(lab.urls['521-after'], { dispatcher: client })
  t.equal(once.statusCode, 200)
  await once.body.dump()

  // Many listeners on port 0 at once, as a busy suite has: none gets either port.
  const listeners = await Promise.all(Array.from({ length: 200 }, () => new Promise<net.Server>(resolve => {
    const s = net.createServer().listen({ host: '127.0.0.1', port: 0 }, () => resolve(s))
  })))
  t.teardown(() => { for (const s of listeners) s.close() })
  const taken = new Set(listeners.map(s => (s.address() as net.AddressInfo).port))
  t.notOk(taken.has(portOf(lab.urls['521'])), '521: not given to a port-0 listener')
  t.notOk(taken.has(portOf(lab.urls['521-after'])), '521-after: not given to a port-0 listener')
  t.ok(await refuses(lab.urls['521']), '521 still refuses')
  t.ok(await refuses(lab.urls['521-after']), '521-after refuses after its last answer')
})
