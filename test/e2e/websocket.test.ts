// WebSocket upgrades through the proxy, and a failed upgrade answered like any request.

import { createHash } from 'node:crypto'
import http from 'node:http'
import net from 'node:net'
import t from 'tap'
import { refusedOrigin, synDropOrigin } from '../../src/lab/faults.js'
import { startProxy } from '../helpers.js'

const KEY = 'dGhlIHNhbXBsZSBub25jZQ=='
const ACCEPT = createHash('sha1').update(KEY + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64')

/** A WebSocket origin that completes the handshake and echoes every byte. */
async function echoOrigin (): Promise<{ url: string, close: () => Promise<void> }> {
  const server = http.createServer((_req, res) => res.end('not a websocket\n'))
  const sockets = new Set<net.Socket>()
  server.on('upgrade', (req, socket: net.Socket) => {
    sockets.add(socket)
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: ${createHash('sha1').update(String(req.headers['sec-websocket-key']) + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64')}\r\nx-origin-saw-ray: ${String(req.headers['cf-ray'])}\r\n\r\n`)
    socket.pipe(socket)
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    close: () => new Promise(resolve => { for (const s of sockets) s.destroy(); server.close(() => resolve()) })
  }
}

/** Sends an upgrade request; resolves with the response head and the open socket. */
function handshake (port: number, path = '/chat'): Promise<{ head: string, socket: net.Socket, rest: Buffer }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port }, () => {
      socket.write(`GET ${path} HTTP/1.1\r\nhost: chat.test\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-key: ${KEY}\r\nsec-websocket-version: 13\r\naccept: application/json\r\n\r\n`)
    })
    let buf = Buffer.alloc(0)
    const onData = (d: Buffer): void => {
      buf = Buffer.concat([buf, d])
      const end = buf.indexOf('\r\n\r\n')
      if (end === -1) return
      socket.off('data', onData)
      resolve({ head: buf.subarray(0, end).toString(), socket, rest: buf.subarray(end + 4) })
    }
    socket.on('data', onData)
    socket.on('error', reject)
  })
}

t.test('an upgrade is proxied and bytes flow both ways', async t => {
  const origin = await echoOrigin()
  const proxy = await startProxy({ origin: origin.url })
  t.teardown(async () => { await proxy.close(); await origin.close() })
  const { head, socket } = await handshake(proxy.port)
  t.match(head, /^HTTP\/1.1 101/)
  t.match(head, new RegExp(`sec-websocket-accept: ${ACCEPT.replace(/[+/]/g, '\\$&')}`, 'i'))
  t.match(head, /cf-ray: [0-9a-f]{16}-HPX/)
  t.match(head, /x-origin-saw-ray: [0-9a-f]{16}-HPX/, 'the origin saw the ray id')
  const echoed = await new Promise<string>(resolve => {
    socket.once('data', d => resolve(d.toString()))
    socket.write('hello through the edge')
  })
  t.equal(echoed, 'hello through the edge')
  socket.destroy()
  const access = await proxy.waitForLog(l => l.msg === 'access' && l.status === 101)
  t.equal(access.path, '/chat')
})

t.test('a refused upgrade gets 521, a timed-out one 522', async t => {
  const refused = await refusedOrigin()
  const dropping = await synDropOrigin()
  const proxy = await startProxy({
    routes: [{ path: '/dead', origin: refused.url }, { path: '/drowning', origin: dropping.url, connect_timeout: '300ms' }]
  })
  t.teardown(async () => { await proxy.close(); await dropping.close() })
  const a = await handshake(proxy.port, '/dead')
  t.match(a.head, /^HTTP\/1.1 521 /)
  t.match(a.head, /retry-after: 120/i)
  t.match(a.head, /content-type: application\/json/i)
  a.socket.destroy()
  const start = performance.now()
  const b = await handshake(proxy.port, '/drowning')
  t.match(b.head, /^HTTP\/1.1 522 /)
  t.ok(performance.now() - start >= 300)
  b.socket.destroy()
  const failures = proxy.logs.filter(l => l.msg === 'origin failure').map(l => l.edge_status)
  t.same(failures, [521, 522])
})
