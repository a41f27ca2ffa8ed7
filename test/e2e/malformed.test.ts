// Malformed and hostile requests get a 4xx, never a crash, never an unintended origin.

import net from 'node:net'
import t from 'tap'
import { healthyOrigin } from '../../src/lab/healthy-origin.js'
import { get, startProxy } from '../helpers.js'

function raw (port: number, data: string): Promise<string> {
  return new Promise(resolve => {
    const socket = net.connect({ host: '127.0.0.1', port }, () => socket.write(data))
    let out = ''
    socket.on('data', d => { out += d.toString() })
    socket.on('error', () => {})
    socket.on('close', () => resolve(out))
    setTimeout(() => socket.destroy(), 1000)
  })
}

const statusOf = (response: string): number => Number(response.split(' ')[1])

t.test('malformed requests → 4xx and the proxy lives on', async t => {
  const origin = await healthyOrigin()
  const proxy = await startProxy({ origin: origin.url })
  t.teardown(async () => { await proxy.close(); await origin.close() })
  const cases: Array<[string, number]> = [
    ['GET /%zz HTTP/1.1\r\nhost: a\r\n\r\n', 400],
    ['GET /a/../../etc/passwd HTTP/1.1\r\nhost: a\r\n\r\n', 400],
    ['GET /a/%2e%2e/b HTTP/1.1\r\nhost: a\r\n\r\n', 400],
    ['GARBAGE\r\n\r\n', 400],
    ['GET / HTTP/1.1\r\nhost: a\r\ncontent-length: 1\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n', 400],
    ['GET / HTTP/1.1\r\n\r\n', 400],
    ['GET / HTTP/1.1\r\nbad header: x\r\nhost: a\r\n\r\n', 400],
    ['CONNECT evil.test:443 HTTP/1.1\r\nhost: evil.test:443\r\n\r\n', 405]
  ]
  for (const [request, status] of cases) {
    t.equal(statusOf(await raw(proxy.port, request)), status, JSON.stringify(request.split('\r\n')[0]))
  }
  t.equal((await get(`${proxy.url}/`)).status, 200, 'still serving')
})

t.test('an absolute-form target goes to the configured origin, never to its own host', async t => {
  const origin = await healthyOrigin()
  const proxy = await startProxy({ origin: origin.url })
  t.teardown(async () => { await proxy.close(); await origin.close() })
  const response = await raw(proxy.port, 'GET http://127.0.0.2:1/echo?via=absolute HTTP/1.1\r\nhost: shop.example\r\nconnection: close\r\n\r\n')
  t.equal(statusOf(response), 200)
  const body = JSON.parse(response.slice(response.indexOf('\r\n\r\n') + 4).replace(/^[0-9a-f]+\r\n|\r\n0\r\n\r\n$/g, '')) as { url: string }
  t.equal(body.url, '/echo?via=absolute', 'the origin got the path, the URL host was ignored')
})
