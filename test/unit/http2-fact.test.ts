// Whether a request came over HTTP/2 is one fact, known at arrival from what carried it
// (exchange.http2), and read by everything that answers. The case it matters for: the
// edge's plugin inside someone else's Fastify speaking HTTP/2 (here h2c, on loopback),
// whose sockets no edge listener stamped, so the connection's own record says HTTP/1.1.
// An answer that closes an HTTP/1.1 connection (a refused body) closes nothing over
// HTTP/2: no `connection: close`, and the session's other streams are still served.

import http2 from 'node:http2'
import type { AddressInfo } from 'node:net'
import { Writable } from 'node:stream'
import Fastify from 'fastify'
import t from 'tap'
import { resolve, validate } from '../../src/config/load.js'
import { edgeProxy } from '../../src/listen/plugin.js'
import { createLogger } from '../../src/log/log.js'
import { refusedOrigin } from '../../src/lab/faults.js'

t.test('an HTTP/2 request inside someone else\'s Fastify gets the edge\'s 413 as HTTP/2, and the session goes on', async t => {
  const origin = await refusedOrigin()
  const lines: Array<Record<string, unknown>> = []
  const sink = new Writable({ write (c: Buffer, _e, cb) { for (const l of c.toString().split('\n')) if (l !== '') lines.push(JSON.parse(l)); cb() } })
  const config = resolve(validate({ pools: [{ name: 'web', origins: [origin.url] }], routes: [{ pool: 'web', max_body_size: 10 }] }), false)
  const app = Fastify({ http2: true })
  await app.register(edgeProxy, { ...config.edge, logger: createLogger('info', 'json', sink) })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const session = http2.connect(`http://127.0.0.1:${(app.server.address() as AddressInfo).port}`)
  session.on('error', () => {})
  t.teardown(async () => { session.destroy(); await app.close() })

  const req = session.request({ ':method': 'POST', ':path': '/', 'content-length': '100' }, { endStream: false })
  req.on('error', () => {})
  const headers = await new Promise<http2.IncomingHttpHeaders & http2.IncomingHttpStatusHeader>((resolve, reject) => {
    req.once('response', resolve)
    req.once('close', () => reject(new Error(`the stream closed without a response (code ${req.rstCode})`)))
  })
  t.equal(headers[':status'], 413)
  t.equal(headers.connection, undefined, 'no connection header in an HTTP/2 response')
  req.close()
  // The access line is written when the stream closes: wait for it (up to 5 s).
  for (let i = 0; i < 500 && !lines.some(l => l.msg === 'access'); i++) await new Promise(resolve => setTimeout(resolve, 10))
  t.match(lines.find(l => l.msg === 'access'), { status: 413, refused: 'body_too_large' })

  // The next stream of the same session is served: the 413 ended only its own stream.
  const next = session.request({ ':method': 'GET', ':path': '/after' })
  next.on('error', () => {})
  next.end()
  const status = await new Promise<number | string>(resolve => {
    next.once('response', h => resolve(Number(h[':status'])))
    next.once('close', () => resolve('closed without a response'))
    setTimeout(() => resolve('no response in 5 s'), 5000).unref()
  })
  t.equal(status, 521, 'the next request reached the (refused) origin and got its 521')
  t.notOk(lines.some(l => l.msg === 'internal error while serving a request'), 'no internal error')
})
