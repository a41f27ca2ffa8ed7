// The status line of an edge answer on HTTP/1.1 names the status (`522 Connection Timed
// Out`): Node's table has no phrase for the 52x and 530 and sent `HTTP/1.1 522 ` (the
// edge) or `522 unknown` (the Fastify integration).

import httpProxy from '@fastify/http-proxy'
import Fastify from 'fastify'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { edgeDispatcher, edgeOnError } from '../../src/fastify/index.js'
import { refusedOrigin } from '../../src/lab/faults.js'
import { raw } from '../raw-client.js'
import { EDGE_REASON_PHRASES, ORIGIN_FAULT_STATUSES } from '../../src/status/catalog.js'
import { startProxy } from '../helpers.js'

const statusLine = (text: string): string => text.slice(0, text.indexOf('\r\n'))

t.test('every edge status goes out with its reason phrase', async t => {
  const proxy = await startProxy({
    timeouts: { connect: '200ms', response: '200ms' },
    fault_injection: true,
    routes: [{ origin: 'http://127.0.0.1:9' }]
  })
  t.teardown(() => proxy.close())
  const want: Record<number, string> = {
    520: 'Web Server Returned an Unknown Error',
    521: 'Web Server Is Down',
    522: 'Connection Timed Out',
    523: 'Origin Is Unreachable',
    524: 'A Timeout Occurred',
    525: 'SSL Handshake Failed',
    526: 'Invalid SSL Certificate',
    530: 'Origin DNS Error'
  }
  t.same(EDGE_REASON_PHRASES, want)
  for (const status of ORIGIN_FAULT_STATUSES) {
    const answer = await raw(proxy.port, `GET / HTTP/1.1\r\nhost: a.test\r\nx-highproxy-fault: ${status}\r\nconnection: close\r\n\r\n`, 2000)
    t.equal(statusLine(answer.text), `HTTP/1.1 ${status} ${want[status] as string}`, `${status}`)
  }
  // A status Node knows keeps Node's phrase.
  const missing = await raw(proxy.port, 'GET / HTTP/1.1\r\nconnection: close\r\n\r\n')
  t.equal(statusLine(missing.text), 'HTTP/1.1 400 Bad Request')
})

t.test('the Fastify integration sends the phrase too, not "unknown"', async t => {
  const origin = await refusedOrigin()
  const app = Fastify()
  const undici = edgeDispatcher({ connectTimeout: '1s' })
  app.addHook('onClose', () => undici.close())
  await app.register(httpProxy, { upstream: origin.url, undici, replyOptions: { onError: edgeOnError() } })
  await app.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(() => app.close())
  const answer = await raw((app.server.address() as AddressInfo).port, 'GET / HTTP/1.1\r\nhost: a.test\r\nconnection: close\r\n\r\n', 2000)
  t.equal(statusLine(answer.text), 'HTTP/1.1 521 Web Server Is Down')
})
