// highproxy/fastify in a real Fastify app with the real @fastify/http-proxy and
// @fastify/reply-from, against the lab's real faults: the statuses, the page, the
// headers and the failure line the edge gives, from someone else's proxy.

import { Value } from '@sinclair/typebox/value'
import httpProxy from '@fastify/http-proxy'
import replyFrom from '@fastify/reply-from'
import Fastify, { type FastifyInstance } from 'fastify'
import http from 'node:http'
import t, { type Test } from 'tap'
import { edgeDispatcher, edgeOnError, type EdgeDispatcherOptions, type EdgeOnErrorOptions } from '../../src/fastify/index.js'
import { startLab } from '../../src/lab/index.js'
import { FailureRecordSchema } from '../../src/log/log-schema.js'
import type { ErrorBody } from '../../src/page/render.js'
import { get, rayOf, type LogLine } from '../helpers.js'
import { postInPieces } from '../post-in-pieces.js'
import { getWithin, oneOfTwo, shown, timed, type Timed } from '../timing.js'

const CONNECT_MS = 1000
// undici's coarse clock would be ~500 ms late; ours answers within this (plus loop stalls).
const SLACK_MS = 300

const lab = await startLab({ faults: ['521', '522', '524', '526'] })
t.teardown(() => lab.close())

interface App { url: string, logs: LogLine[], app: FastifyInstance }

/** Fastify's own logger, its lines kept: the failure line goes there. */
function fastify (logs: LogLine[]): FastifyInstance {
  return Fastify({ logger: { level: 'warn', stream: { write: (line: string) => { logs.push(JSON.parse(line) as LogLine) } } } })
}

async function listening (app: FastifyInstance, logs: LogLine[], t: Test): Promise<App> {
  t.teardown(() => app.close())
  return { url: await app.listen({ host: '127.0.0.1', port: 0 }), logs, app }
}

/** The few lines: http-proxy with the edge's dispatcher and onError. */
async function proxied (t: Test, upstream: string, dispatcher: EdgeDispatcherOptions = {}, onError: EdgeOnErrorOptions = {}): Promise<App> {
  const logs: LogLine[] = []
  const app = fastify(logs)
  const undici = edgeDispatcher({ connectTimeout: `${CONNECT_MS}ms`, ...dispatcher })
  app.addHook('onClose', () => undici.close())
  await app.register(httpProxy, { upstream, undici, replyOptions: { onError: edgeOnError(onError) } })
  return listening(app, logs, t)
}

const failureLine = (logs: LogLine[], ray: string): LogLine | undefined =>
  logs.find(l => l.msg === 'origin failure' && l.ray_id === ray)

t.test('a refused origin is 521 (not 500), with the edge page, headers and failure line', async t => {
  const app = await proxied(t, lab.urls['521'])
  const res = await get(`${app.url}/price`, { headers: { accept: 'application/json' } })
  t.equal(res.status, 521)
  t.match(res.headers['content-type'], /^application\/json/)
  const body = JSON.parse(res.body) as ErrorBody
  t.match(body, { status: 521, error_code: 521, title: 'Error 521: Web server is down', edge_error: true })
  t.match(res.headers['cf-ray'], /^[0-9a-f]{16}-HPX$/)
  t.equal(body.ray_id, rayOf(res), 'the body names the ray id of the header')
  t.equal(res.headers['retry-after'], '120')
  t.match(res.headers['proxy-status'], /^HPX;error=connection_refused;details="/)

  const line = failureLine(app.logs, rayOf(res))
  t.ok(line, 'one failure line, with the ray id the visitor sees')
  t.ok(Value.Check(FailureRecordSchema, line), 'in the shape of the edge\'s failure line')
  t.match(line, {
    level: 40,
    edge_status: 521,
    phase: 'connect',
    origin: { url: lab.urls['521'], address: '127.0.0.1', port: Number(new URL(lab.urls['521']).port) },
    error: { code: 'HPX_ERR_CONNECT', cause: { code: 'ECONNREFUSED' } },
    classified: true,
    reqId: String
  })
  t.same(line?.client, { protocol: 'HTTP/1.1', tls_protocol: null, tls_cipher: null }, 'how the client reached the app, read from its socket')

  const html = await get(`${app.url}/price`)
  t.equal(html.status, 521)
  t.match(html.body, /<title>[^<]*521: Web server is down<\/title>/, 'no Accept: the HTML page')
  const markdown = await get(`${app.url}/price`, { headers: { accept: 'text/markdown' } })
  t.match(markdown.headers['content-type'], /^text\/markdown/)
})

t.test('a SYN-dropping origin is 522 at the configured connect timeout, not ~0.5 s late', async t => {
  const app = await proxied(t, lab.urls['522'])
  const onTime = (x: { ms: number, late: number }): boolean => x.ms >= CONNECT_MS && x.ms <= CONNECT_MS + SLACK_MS + x.late
  const once = (): Promise<Timed<{ status: number, ms: number, ray: string }>> => timed(async () => {
    const res = await getWithin(`${app.url}/`, 5000)
    return { status: res.status, ms: res.ms, ray: rayOf(res) }
  })
  const first = await once()
  t.equal(first.status, 522)
  const tries = await oneOfTwo(first, once, onTime)
  t.ok(tries.every(x => x.ms >= CONNECT_MS), `never before the connect timeout: ${shown(tries)}`)
  t.ok(tries.some(onTime), `within ${SLACK_MS} ms after the ${CONNECT_MS} ms timeout: ${shown(tries)}`)
  const line = failureLine(app.logs, first.ray)
  t.match(line, { edge_status: 522, phase: 'connect', error: { code: 'HPX_ERR_CONNECT_TIMEOUT' }, dialled: [{ code: 'ETIMEDOUT' }] })
  t.ok((line?.timings.connect_ms as number) >= CONNECT_MS, `the line's connect_ms is the timeout: ${String(line?.timings.connect_ms)}`)
})

t.test('a self-signed origin is 526: certificates are verified (reply-from turns that off by default)', async t => {
  const app = await proxied(t, lab.urls['526'])
  const res = await get(`${app.url}/`)
  t.equal(res.status, 526)
  t.match(failureLine(app.logs, rayOf(res)), { phase: 'tls', error: { code: 'HPX_ERR_TLS_CERT', cause: { code: 'DEPTH_ZERO_SELF_SIGNED_CERT' } } })

  const trusting = await proxied(t, lab.urls['526'], { ca: lab.origins['526'].ca })
  const trusted = await get(`${trusting.url}/`)
  t.equal(trusted.status, 200, 'the same origin, its certificate trusted with `ca`')
})

t.test('a silent origin is 524 at the headers timeout, on a precise timer too', async t => {
  const app = await proxied(t, lab.urls['524'], { headersTimeout: '1s' })
  const timeoutMs = 1000
  const onTime = (x: { ms: number, late: number }): boolean => x.ms >= timeoutMs && x.ms <= timeoutMs + SLACK_MS + x.late
  const once = (): Promise<Timed<{ status: number, ms: number, ray: string, proxyStatus: string }>> => timed(async () => {
    const res = await getWithin(`${app.url}/`, 5000)
    return { status: res.status, ms: res.ms, ray: rayOf(res), proxyStatus: String(res.headers['proxy-status']) }
  })
  const first = await once()
  t.equal(first.status, 524)
  const tries = await oneOfTwo(first, once, onTime)
  t.ok(tries.every(x => x.ms >= timeoutMs), `never before the headers timeout: ${shown(tries)}`)
  t.ok(tries.some(onTime), `within ${SLACK_MS} ms after it: ${shown(tries)}`)
  t.match(first.proxyStatus, /error=http_response_timeout/)
  t.match(failureLine(app.logs, first.ray), { edge_status: 524, phase: 'response', error: { code: 'HPX_ERR_RESPONSE_TIMEOUT' } })
})

t.test('reply-from\'s per-request timeout is the response timeout of that request', async t => {
  const logs: LogLine[] = []
  const app = fastify(logs)
  const undici = edgeDispatcher({ headersTimeout: '30s' })
  app.addHook('onClose', () => undici.close())
  await app.register(httpProxy, { upstream: lab.urls['524'], undici, replyOptions: { onError: edgeOnError(), timeout: 300 } })
  const { url } = await listening(app, logs, t)
  const res = await getWithin(`${url}/`, 5000)
  t.equal(res.status, 524)
  t.ok(res.ms >= 300 && res.ms < 5000, `at reply-from's 300 ms, not the dispatcher's 30 s: ${res.ms.toFixed(0)} ms`)
})

t.test('a POST body to a refused origin gets a 521 answer, not a dropped connection', async t => {
  const app = await proxied(t, lab.urls['521'])
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
  t.teardown(() => agent.destroy())
  const first = await postInPieces(app.url, '/upload', agent)
  t.equal(first.status, 521)
  t.match(first.body, /521: Web server is down/)
  t.not(first.headers.connection, 'close', 'the rest of the body was read: the connection stays usable')
  const second = await postInPieces(app.url, '/upload', agent)
  t.equal(second.status, 521)
  t.equal(second.port, first.port, 'and carries the next request')
  const small = await get(`${app.url}/upload`, { method: 'POST', body: 'a=1', headers: { 'content-type': 'application/x-www-form-urlencoded' } })
  t.equal(small.status, 521, 'a small body read whole')
})

t.test('@fastify/reply-from directly: reply.from with the edge onError', async t => {
  const logs: LogLine[] = []
  const app = fastify(logs)
  const undici = edgeDispatcher({ connectTimeout: '1s' })
  await app.register(replyFrom, { base: lab.urls['521'], undici, destroyAgent: true })
  // Bodies go on as they came, as http-proxy does it.
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', (_req, payload, done) => done(null, payload))
  const onError = edgeOnError({ pool: 'prices', rayHeader: 'x-ray', name: 'APP' })
  app.all('/*', (_req, reply) => reply.from(undefined, { onError }))
  const { url } = await listening(app, logs, t)

  const res = await get(`${url}/price`, { headers: { accept: 'application/problem+json' } })
  t.equal(res.status, 521)
  t.match(res.headers['content-type'], /^application\/problem\+json/)
  t.match(res.headers['x-ray'], /^[0-9a-f]{16}-APP$/)
  t.match(res.headers['proxy-status'], /^APP;error=connection_refused;next-hop="prices";/)
  t.match(failureLine(logs, String(res.headers['x-ray']).slice(0, 16)), { edge_status: 521, pool: 'prices', route: '/*' })

  const agent = new http.Agent({ keepAlive: true })
  t.teardown(() => agent.destroy())
  const posted = await postInPieces(url, '/upload', agent)
  t.equal(posted.status, 521, 'a streamed POST body too')
})

t.test('an app logger passed in gets the failure line', async t => {
  const lines: LogLine[] = []
  const { default: pino } = await import('pino')
  const logger = pino({ level: 'warn' }, { write: (line: string) => { lines.push(JSON.parse(line) as LogLine) } })
  const app = await proxied(t, lab.urls['521'], {}, { logger })
  const res = await get(`${app.url}/`)
  t.equal(res.status, 521)
  t.match(failureLine(lines, rayOf(res)), { edge_status: 521, msg: 'origin failure' })
  t.equal(failureLine(app.logs, rayOf(res)), undefined, 'and the request logger does not')
})

t.test('options: durations like the config, bad ones named', async t => {
  t.throws(() => edgeDispatcher({ connectTimeout: '5 seconds' }), { name: 'TypeError', message: /edgeDispatcher: connectTimeout must be a duration.*"5 seconds"/ })
  t.throws(() => edgeDispatcher({ headersTimeout: 0 }), { message: /headersTimeout/ })
  t.throws(() => edgeOnError({ name: 'not a token!' }), { name: 'TypeError', message: /edgeOnError: name "not a token!"/ })
  t.throws(() => edgeOnError({ rayHeader: 'x ray' }), { message: /rayHeader/ })
  const ok = edgeDispatcher({ connectTimeout: 250, tlsTimeout: '2s', attemptDelay: '100ms' })
  await ok.close()
})
