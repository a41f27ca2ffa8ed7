// The TLS listener takes HTTP/2 streams over from Node's compatibility layer by removing
// exactly the listener Node added for it (found when the server was made), not every
// 'stream' listener: one added by another part stays, HTTP/2 streams never also become
// 'request's, and HTTP/1.1 over TLS still reaches the 'request' handler.

import { once } from 'node:events'
import http2 from 'node:http2'
import https from 'node:https'
import type { AddressInfo } from 'node:net'
import pino from 'pino'
import t from 'tap'
import type { FrontDoor } from '../../src/config/schema.js'
import { AccessLog } from '../../src/edge/access-log.js'
import { ProxyStatus } from '../../src/page/proxy-status.js'
import { withSelfSigned } from '../../src/listen/tls/selfsigned.js'
import { TlsFront, type Http1Settings } from '../../src/listen/tls/tls-listener.js'

const BASE: FrontDoor = {
  certificates: [],
  selfsigned: true,
  minVersion: 'TLSv1.2',
  ciphers: 'DEFAULT',
  hsts: null,
  redirect: null,
  acme: null,
  http2: { enabled: true, maxConcurrentStreams: 100, idleTimeoutMs: 60_000, maxClientResets: 100, clientResetWindowMs: 1000, maxIdleFrames: 1000 }
}

const HTTP1: Http1Settings = {
  maxHeaderSize: 16384,
  headersTimeout: 10_000,
  requestTimeout: 30_000,
  keepAliveTimeout: 5000,
  connectionsCheckingInterval: 1000,
  requireHostHeader: true
}

t.test('only Node\'s compatibility listener goes; others stay, HTTP/1.1 still gets requests', async t => {
  const log = pino({ level: 'silent' })
  const front = new TlsFront(await withSelfSigned(BASE), log)
  let requests = 0
  const server = http2.createSecureServer(front.serverOptions(HTTP1, 100), (_req, res) => { requests++; res.end('compat') })
  const refusals: Parameters<TlsFront['attach']>[2] = { access: new AccessLog(log, 'highproxy'), rayHeader: 'cf-ray', edgeName: 'test', proxyStatus: new ProxyStatus({ edgeName: 'test' }) }
  front.attach(server, HTTP1, refusals)
  // Another part listening for streams, before the edge takes them over.
  let watched = 0
  const watcher = (): void => { watched++ }
  server.on('stream', watcher)
  front.serveStreams((stream) => { stream.respond({ ':status': 200 }); stream.end('edge') })
  t.equal(server.listenerCount('stream'), 2, 'the watcher and the edge')
  t.ok(server.listeners('stream').includes(watcher), 'the watcher stays')

  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => { server.close() })
  const port = (server.address() as AddressInfo).port

  const session = http2.connect(`https://127.0.0.1:${port}`, { rejectUnauthorized: false })
  t.teardown(() => { session.close() })
  const req = session.request({ ':path': '/' })
  let body = ''
  req.setEncoding('utf8')
  req.on('data', (chunk: string) => { body += chunk })
  await once(req, 'end')
  t.equal(body, 'edge', 'the HTTP/2 stream went to the edge')
  t.equal(requests, 0, 'and never became a request of the compatibility layer')
  t.equal(watched, 1, 'the other listener saw it too')

  const h1 = await new Promise<string>((resolve, reject) => {
    https.get({ host: '127.0.0.1', port, path: '/', rejectUnauthorized: false, agent: false }, res => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => { text += chunk })
      res.on('end', () => resolve(text))
    }).on('error', reject)
  })
  t.equal(h1, 'compat', 'HTTP/1.1 over TLS still reaches the request handler')
  t.equal(requests, 1)
})
