// Plain HTTP sent to the TLS port gets nginx's answer, not an empty reply: a 400 page
// saying the request was plain HTTP sent to an HTTPS port, with a ray id, and an access
// line whose `refused` names the cause.

import t from 'tap'
import { refusedOrigin } from '../../src/lab/faults.js'
import { raw } from '../raw-client.js'
import { accessFor, startProxy } from '../helpers.js'
import { curl, makePki } from '../tls-support.js'

const pki = await makePki()
t.teardown(() => pki.remove())
const main = await pki.issue('main', ['localhost'])

t.test('plain HTTP/1.1 on the TLS port: 400 page, ray id, access line naming the cause', async t => {
  const origin = await refusedOrigin()
  const proxy = await startProxy({ origin: origin.url, listen: { tls: { cert: main.certFile, key: main.keyFile } } })
  t.teardown(() => proxy.close())

  const answer = await raw(proxy.port, 'GET /account HTTP/1.1\r\nhost: localhost\r\n\r\n', 2000)
  t.match(answer.text, /^HTTP\/1\.1 400 Bad Request\r\n/)
  t.match(answer.headers['content-type'], /^text\/html/)
  const ray = String(answer.headers['cf-ray']).slice(0, 16)
  t.match(answer.headers['cf-ray'], /^[0-9a-f]{16}-HPX$/)
  t.match(answer.body, 'The plain HTTP request was sent to HTTPS port')
  t.match(answer.body, ray, 'the page shows the ray id')
  t.ok(answer.closed, 'the connection is closed')

  const access = await proxy.waitForLog(accessFor(ray))
  t.match(access, { status: 400, edge_status: 400, refused: 'plain_http_to_https_port' })
  await new Promise(resolve => setTimeout(resolve, 100))
  t.equal(proxy.logs.filter(l => l.msg === 'access').length, 1, 'one access line')

  // curl as a user types it: http:// to the HTTPS port.
  const typed = await curl([`http://localhost:${proxy.port}/`])
  t.equal(typed.status, 400)
  t.match(typed.body, 'plain HTTP request was sent to HTTPS port')

  // HTTPS on the same port is untouched.
  const https = await curl(['--cacert', pki.caFile, `https://localhost:${proxy.port}/`])
  t.equal(https.status, 521, 'a real TLS request still reaches the proxy (the origin refuses)')
})
