// A pooled origin connection carries many visitors' requests in turn: an origin that
// answers one request twice shifts every later answer on that connection to the wrong
// request. The reuse policy keeps one client's answers from reaching another client
// (never: by default; safe: HAProxy's), and bytes on an idle connection close it.

import net from 'node:net'
import t from 'tap'
import { startProxy, type TestProxy } from '../helpers.js'

const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))

/**
 * An origin that answers the requests of a connection one at a time, in order (as most
 * servers do): `/twice` answers, then 100 ms later writes a second, stray response
 * before it reads the next request; `/echo` answers with the request's Cookie.
 */
async function twiceOrigin (): Promise<{ url: string, connections: () => number, close: () => Promise<void> }> {
  let connections = 0
  const sockets = new Set<net.Socket>()
  const server = net.createServer(socket => {
    connections++
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => {})
    let buf = ''
    let busy = false
    const next = (): void => {
      if (busy) return
      const end = buf.indexOf('\r\n\r\n')
      if (end === -1) return
      const head = buf.slice(0, end)
      buf = buf.slice(end + 4)
      const path = head.split(' ')[1] ?? ''
      const cookie = /\r\ncookie: ([^\r]*)/i.exec(head)?.[1] ?? 'none'
      const answer = (body: string): string => `HTTP/1.1 200 OK\r\ncontent-length: ${body.length}\r\nconnection: keep-alive\r\n\r\n${body}`
      if (path === '/twice') {
        busy = true
        socket.write(answer('first'))
        setTimeout(() => {
          socket.write(answer('stray'))
          busy = false
          next()
        }, 100)
        return
      }
      socket.write(answer(`echo cookie=${cookie}`))
      next()
    }
    socket.on('data', (d: Buffer) => { buf += d.toString('latin1'); next() })
  })
  await new Promise<void>(resolve => server.listen({ host: '127.0.0.1', port: 0 }, resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    connections: () => connections,
    close: () => new Promise(resolve => { for (const s of sockets) s.destroy(); server.close(() => resolve()) })
  }
}

/** A keep-alive client connection that records every byte it receives. */
function client (port: number): Promise<{ send: (path: string, cookie: string) => void, received: () => string, close: () => void }> {
  return new Promise(resolve => {
    let received = ''
    const socket = net.connect({ host: '127.0.0.1', port }, () => resolve({
      send: (path, cookie) => socket.write(`GET ${path} HTTP/1.1\r\nhost: shop.test\r\ncookie: ${cookie}\r\n\r\n`),
      received: () => received,
      close: () => socket.destroy()
    }))
    socket.on('data', (d: Buffer) => { received += d.toString('latin1') })
    socket.on('error', () => {})
  })
}

/** The reproduction: client 1 asks /twice, client 2 asks 20 ms later on its own connection, client 1 again 10 ms after. */
async function reproduce (proxy: TestProxy): Promise<{ one: string, two: string }> {
  const one = await client(proxy.port)
  const two = await client(proxy.port)
  one.send('/twice', 'secret=one')
  await sleep(20)
  two.send('/echo', 'secret=two')
  await sleep(10)
  one.send('/echo', 'secret=one')
  await sleep(400)
  one.close()
  two.close()
  return { one: one.received(), two: two.received() }
}

for (const reuse of ['never', 'safe'] as const) {
  t.test(`reuse ${reuse}: an origin's stray response never reaches another client`, async t => {
    const origin = await twiceOrigin()
    const proxy = await startProxy({ origin: origin.url, connections: { reuse } })
    t.teardown(async () => { await proxy.close(); await origin.close() })
    const { one, two } = await reproduce(proxy)
    t.match(two, /echo cookie=secret=two/, 'client 2 got its own answer')
    t.notMatch(two, /stray|first|secret=one/, "client 2 got nothing of client 1's")
    t.notMatch(one, /secret=two/, "client 1 got nothing of client 2's")
    t.match(one, /first/, 'client 1 got its first answer')
    const stray = await proxy.waitForLog(l => l.msg === 'stray origin response', 2000)
    t.match(stray, { level: 'warn', error: { code: 'HPX_ERR_STRAY_RESPONSE' }, origin: { url: origin.url } },
      'the out-of-step connection was closed and logged')
    t.ok(origin.connections() >= 2, 'the second client rode a connection of its own')
  })
}

t.test('reuse always (the control): the stray response goes to the next request on that connection, another client\'s', async t => {
  const origin = await twiceOrigin()
  const proxy = await startProxy({ origin: origin.url, connections: { reuse: 'always' } })
  t.teardown(async () => { await proxy.close(); await origin.close() })
  const { two } = await reproduce(proxy)
  t.match(two, /stray/, "client 2 was answered with the origin's stray response to client 1: what `never` and `safe` prevent")
})

t.test('bytes on an idle connection close it, and the next request gets a fresh one', async t => {
  let connections = 0
  const server = net.createServer(socket => {
    connections++
    socket.on('error', () => {})
    socket.on('data', () => {
      socket.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok')
      // Unsolicited bytes, well after the answer: the connection is out of step.
      setTimeout(() => { if (!socket.destroyed) socket.write('HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nevil') }, 60)
    })
  })
  await new Promise<void>(resolve => server.listen({ host: '127.0.0.1', port: 0 }, resolve))
  const proxy = await startProxy({ origin: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}` })
  t.teardown(async () => { await proxy.close(); server.close() })
  const c = await client(proxy.port)
  c.send('/a', 'x=1')
  await sleep(200)
  c.send('/b', 'x=1')
  await sleep(200)
  c.close()
  const answers = c.received().split('HTTP/1.1 ').filter(Boolean)
  t.equal(answers.length, 2, 'two answers for two requests')
  t.ok(answers.every(a => a.startsWith('200') && a.endsWith('ok')), `both are the origin's real answers: ${JSON.stringify(answers)}`)
  t.equal(connections, 2, 'the second request rode a new origin connection')
  t.ok(proxy.logs.some(l => l.msg === 'stray origin response'), 'the stray bytes were logged')
})

t.test('a client that leaves while its origin connection is still dialling leaves no origin connection open', async t => {
  // A TLS origin whose handshake starts 300 ms after the TCP connect: the client is gone
  // by the time the dial completes (as after a rapid-reset cut).
  const { selfSignedCertificate } = await import('../../src/lab/certificates.js')
  const tls = await import('node:tls')
  const pem = await selfSignedCertificate()
  const tlsServer = tls.createServer({ cert: pem.cert, key: pem.key }, socket => {
    socket.on('error', () => {})
    socket.on('data', () => socket.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok'))
  })
  const open = new Set<net.Socket>()
  const server = net.createServer(socket => {
    open.add(socket)
    socket.on('close', () => open.delete(socket))
    socket.on('error', () => {})
    setTimeout(() => tlsServer.emit('connection', socket), 300)
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as net.AddressInfo).port
  const proxy = await startProxy({ pools: [{ name: 'slow', origins: [`https://127.0.0.1:${port}`], tls: { verify: false } }], routes: [{ pool: 'slow' }] })
  t.teardown(async () => {
    await proxy.close()
    for (const s of open) s.destroy()
    await new Promise(resolve => server.close(resolve))
  })
  const client = net.connect(proxy.port, '127.0.0.1')
  client.on('error', () => {})
  await new Promise(resolve => client.once('connect', resolve))
  client.write('GET / HTTP/1.1\r\nhost: a\r\n\r\n')
  await sleep(100)
  t.equal(open.size, 1, 'the dial is under way')
  client.destroy()
  const until = Date.now() + 3000
  while (open.size > 0 && Date.now() < until) await sleep(50)
  t.equal(open.size, 0, 'the origin connection was closed once its dial completed')
})
