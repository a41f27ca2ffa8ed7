// highproxy/fastify inside an app that traces with its own OpenTelemetry SDK: edgeOnError
// records the failure on the span the app made current for the request, and its failure
// line and error page carry that span's ids.

import http from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import Fastify from 'fastify'
import replyFrom from '@fastify/reply-from'
import pino from 'pino'
import { SpanKind, SpanStatusCode, context, trace } from '@opentelemetry/api'
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks'
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base'
import { edgeDispatcher, edgeOnError } from '../../src/fastify/index.js'
import { refusedOrigin } from '../../src/lab/faults.js'

const exporter = new InMemorySpanExporter()
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] })
const manager = new AsyncLocalStorageContextManager().enable()
context.setGlobalContextManager(manager)
trace.setGlobalTracerProvider(provider)
t.teardown(async () => { await provider.shutdown(); context.disable(); trace.disable() })
const tracer = provider.getTracer('app')

const refused = await refusedOrigin()
t.teardown(() => refused.close())

/** The app's server: each request runs inside its own SERVER span, as the SDK's HTTP instrumentation does. */
async function tracedApp (onError: ReturnType<typeof edgeOnError>) {
  const app = Fastify({
    serverFactory: handler => http.createServer((req, res) => {
      const span = tracer.startSpan(`${req.method ?? 'GET'}`, { kind: SpanKind.SERVER })
      res.once('finish', () => span.end())
      context.with(trace.setSpan(context.active(), span), () => handler(req, res))
    })
  })
  await app.register(replyFrom, { base: refused.url, undici: edgeDispatcher({ connectTimeout: '1s' }), destroyAgent: true })
  app.get('/*', (_req, reply) => reply.from(undefined, { onError }))
  await app.listen({ host: '127.0.0.1', port: 0 })
  return { app, url: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}` }
}

t.test('edgeOnError records the failure on the active span; the line and the page carry its ids', async t => {
  const lines: Array<Record<string, unknown>> = []
  const logger = pino({ level: 'warn' }, { write: (line: string) => { lines.push(JSON.parse(line) as Record<string, unknown>) } })
  const { app, url } = await tracedApp(edgeOnError({ logger }))
  t.teardown(() => app.close())
  const res = await fetch(`${url}/price`, { headers: { accept: 'application/json' } })
  t.equal(res.status, 521)
  const body = await res.json() as { trace_id: string }
  await new Promise(resolve => setTimeout(resolve, 50))
  const span = exporter.getFinishedSpans().find(s => s.spanContext().traceId === body.trace_id)
  t.ok(span, 'the page names the app\'s trace')
  t.match(span?.attributes, { 'error.type': 'connection_refused', 'highproxy.edge_status': 521, 'highproxy.phase': 'connect' })
  t.equal(span?.status.code, SpanStatusCode.ERROR)
  t.match(lines[0], { msg: 'origin failure', edge_status: 521, trace_id: body.trace_id, span_id: span?.spanContext().spanId, trace_flags: '01' })
})

t.test('without an active span nothing is added', async t => {
  const lines: Array<Record<string, unknown>> = []
  const logger = pino({ level: 'warn' }, { write: (line: string) => { lines.push(JSON.parse(line) as Record<string, unknown>) } })
  const app = Fastify()
  await app.register(replyFrom, { base: refused.url, undici: edgeDispatcher({ connectTimeout: '1s' }), destroyAgent: true })
  app.get('/*', (_req, reply) => reply.from(undefined, { onError: edgeOnError({ logger }) }))
  await app.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(() => app.close())
  const res = await fetch(`http://127.0.0.1:${(app.server.address() as AddressInfo).port}/`, { headers: { accept: 'application/json' } })
  t.equal(res.status, 521)
  t.notOk('trace_id' in (await res.json() as object), 'no trace id on the page')
  t.notOk('trace_id' in (lines[0] ?? {}), 'nor on the line')
})
