// The dialer against real sockets on loopback, with a stub resolver that answers a
// name with two loopback addresses (as `localhost` resolves on many machines).

import net from 'node:net'
import t from 'tap'
import { dial, type DialOptions } from '../../src/origin/dial.js'
import { classify } from '../../src/status/classify.js'
import { refusedOrigin, synDropOrigin } from '../../src/lab/faults.js'
import type { DialError } from '../../src/status/errors.js'
import { timed, oneOfTwo, shown, type Timed } from '../timing.js'

const twoAddresses = ((_host: string, _opts: unknown, cb: (e: null, a: Array<{ address: string, family: number }>) => void) =>
  cb(null, [{ address: '::1', family: 6 }, { address: '127.0.0.1', family: 4 }])) as unknown as DialOptions['lookup']

const options = (connectTimeoutMs: number): DialOptions => ({
  connectTimeoutMs,
  tlsTimeoutMs: 1000,
  tls: { verify: true },
  lookup: twoAddresses
})

async function failure (p: Promise<unknown>): Promise<DialError> {
  try {
    await p
  } catch (err) {
    return err as DialError
  }
  throw new Error('dial succeeded')
}

t.test('two addresses, both refused → 521, both logged', async t => {
  const port = Number(new URL((await refusedOrigin()).url).port)
  const err = await failure(dial({ protocol: 'http:', hostname: 'two.test', port }, options(2000)))
  t.equal(err.code, 'HPX_ERR_CONNECT')
  t.equal(err.phase, 'connect')
  t.same(err.attempts.map(a => [a.address, a.code]), [['::1', 'ECONNREFUSED'], ['127.0.0.1', 'ECONNREFUSED']])
  t.ok((err.cause as AggregateError).errors.length === 2, 'the cause is an AggregateError of both')
  t.equal(classify(err, err.phase).status, 521)
  t.ok(err.timings.dns_ms !== null, 'DNS phase timed')
})

t.test('two addresses, neither answers → 522 only when the connect timeout is spent', async t => {
  const v4 = await synDropOrigin()
  const port = Number(new URL(v4.url).port)
  const v6 = await synDropOrigin('::1', port)
  t.teardown(async () => { await v4.close(); await v6.close() })
  const once = (): Promise<Timed<{ err: DialError, ms: number }>> => timed(async () => {
    const start = performance.now()
    const err = await failure(dial({ protocol: 'http:', hostname: 'two.test', port }, options(700)))
    return { err, ms: performance.now() - start }
  })
  const onTime = (x: Timed<{ ms: number }>): boolean => x.ms < 800 + x.late
  const tries = await oneOfTwo(await once(), once, onTime)
  t.ok(tries.every(x => x.ms >= 700), `never before the 700 ms connect timeout (not after 250 or 500 ms): ${shown(tries)}`)
  t.ok(tries.some(onTime), `failed within 100 ms after it: ${shown(tries)}`)
  for (const { err } of tries) {
    t.equal(err.code, 'HPX_ERR_CONNECT_TIMEOUT')
    t.same(err.attempts.map(a => [a.address, a.code]), [['::1', 'ETIMEDOUT'], ['127.0.0.1', 'ETIMEDOUT']])
    t.ok((err.timings.connect_ms ?? 0) >= 700)
    t.equal(classify(err, err.phase).status, 522)
  }
})

t.test('a slow first address does not stop a second one from winning', async t => {
  const server = net.createServer(s => s.end())
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as net.AddressInfo).port
  const v6 = await synDropOrigin('::1', port)
  t.teardown(async () => { await v6.close(); server.close() })
  const { socket, info } = await dial({ protocol: 'http:', hostname: 'two.test', port }, options(2000))
  t.equal(info?.address, '127.0.0.1')
  t.same(info?.attempts.map(a => [a.address, a.code]), [['::1', 'ECANCELED'], ['127.0.0.1', null]])
  t.ok((info?.timings.connect_ms ?? 0) >= 250 && (info?.timings.connect_ms ?? 0) < 600, `connected after ${String(info?.timings.connect_ms)} ms`)
  socket.destroy()
})
