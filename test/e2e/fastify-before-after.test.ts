// Every lab fault behind a plain @fastify/http-proxy app, then behind the same app with
// highproxy/fastify: the statuses each answers, printed as a table (the issue's
// before/after). The same timeouts on both sides, so only the dispatcher and the
// onError hook differ. After, every fault gets the edge's status for it.

import httpProxy from '@fastify/http-proxy'
import Fastify from 'fastify'
import http from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { request, type Dispatcher } from 'undici'
import { edgeDispatcher, edgeOnError } from '../../src/fastify/index.js'
import { FAULT_NAMES, startLab, type FaultKnobs, type FaultName } from '../../src/lab/index.js'
import { client } from '../helpers.js'
import { postInPieces } from '../post-in-pieces.js'

const TIMEOUT_MS = 1000

// Every fault; those that answer, quicker than by default.
const faults = { ...Object.fromEntries(FAULT_NAMES.map(name => [name, true])), slow: { delayMs: 200 }, trickle: { everyMs: 10, chunks: 10 } } as { [K in FaultName]: FaultKnobs[K] | true }
const lab = await startLab({ faults })
t.teardown(() => lab.close())

/** How many requests show a fault: those after the origin starts refusing, or cuts a kept-alive connection. */
const REQUESTS: Partial<Record<FaultName, number>> = { '521-after': 4, 'keepalive-cut': 2 }

interface Seen { status: string, ms: number }

async function seen (base: string, fault: FaultName): Promise<Seen> {
  let last: Seen = { status: '', ms: 0 }
  for (let i = 0; i < (REQUESTS[fault] ?? 1); i++) {
    const start = performance.now()
    try {
      const res = await request(`${base}/`, { dispatcher: client, headersTimeout: 10_000, bodyTimeout: 10_000 })
      await res.body.dump()
      last = { status: String(res.statusCode), ms: performance.now() - start }
    } catch (err) {
      last = { status: `${(err as { code?: string }).code ?? 'error'} (no answer)`, ms: performance.now() - start }
    }
  }
  return last
}

type Side = 'before' | 'after'

async function app (side: Side, upstream: string): Promise<{ url: string, close: () => Promise<void> }> {
  // Closing must not wait for a connection a failed upload left hanging (before).
  const app = Fastify({ forceCloseConnections: true })
  let undici: Dispatcher | Record<string, number>
  if (side === 'after') {
    const dispatcher = edgeDispatcher({ connectTimeout: TIMEOUT_MS, headersTimeout: TIMEOUT_MS, bodyTimeout: TIMEOUT_MS })
    app.addHook('onClose', () => dispatcher.close())
    undici = dispatcher
  } else {
    undici = { connectTimeout: TIMEOUT_MS, headersTimeout: TIMEOUT_MS, bodyTimeout: TIMEOUT_MS }
  }
  await app.register(httpProxy, { upstream, undici, ...(side === 'after' ? { replyOptions: { onError: edgeOnError() } } : {}) })
  return { url: await app.listen({ host: '127.0.0.1', port: 0 }), close: () => app.close() }
}

interface Upload { first: string, next: string }

const NEXT_WAIT_MS = 3000

async function uploadTwice (url: string): Promise<Upload> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
  const waited = new AbortController()
  try {
    const first = await postInPieces(url, '/', agent)
    const next = postInPieces(url, '/', agent).then(r => r.port === first.port ? String(r.status) : `${r.status} (on a new connection)`,
      (err: { code?: string }) => `${err.code ?? 'error'} (connection dropped)`)
    const stuck = sleep(NEXT_WAIT_MS, `no answer in ${NEXT_WAIT_MS / 1000} s (the connection hangs)`, { signal: waited.signal }).catch(() => '')
    return { first: String(first.status), next: await Promise.race([next, stuck]) }
  } catch (err) {
    return { first: `${(err as { code?: string }).code ?? 'error'} (connection dropped)`, next: '' }
  } finally {
    waited.abort()
    agent.destroy()
  }
}

const shownMs = (s: Seen): string => s.ms >= 500 ? ` (${(s.ms / 1000).toFixed(2)} s)` : ''

t.test('each lab fault, before and after highproxy/fastify', async t => {
  const rows: string[] = ['| fault | edge status | plain @fastify/http-proxy | with highproxy/fastify |', '|---|---|---|---|']
  for (const fault of FAULT_NAMES) {
    const origin = lab.origins[fault]
    if (!origin.available) {
      rows.push(`| \`${fault}\` | ${origin.status ?? '—'} | not made here: ${origin.reason ?? ''} | |`)
      continue
    }
    const result: Partial<Record<Side, Seen>> = {}
    for (const side of ['before', 'after'] as const) {
      const proxy = await app(side, origin.url)
      try {
        result[side] = await seen(proxy.url, fault)
      } finally {
        await proxy.close()
      }
    }
    const before = result.before as Seen
    const after = result.after as Seen
    rows.push(`| \`${fault}\` | ${origin.status ?? '—'} | ${before.status}${shownMs(before)} | ${after.status}${shownMs(after)} |`)
    // What the origin answers itself (slow, trickle) is relayed. The edge retries a request
    // cut on a kept-alive connection (so the lab expects no status); reply-from does not.
    const expected = String(fault === 'keepalive-cut' ? 520 : origin.status ?? 200)
    t.equal(after.status, expected, `${fault}: ${expected} with highproxy/fastify`)
  }

  // An upload still in flight when the origin refuses, and the next request on its connection.
  const upload: Partial<Record<Side, Upload>> = {}
  for (const side of ['before', 'after'] as const) {
    const proxy = await app(side, lab.urls['521'])
    try {
      upload[side] = await uploadTwice(proxy.url)
    } finally {
      await proxy.close()
    }
  }
  const told = (u?: Upload): string => u === undefined ? '' : `${u.first}; the next request on that connection: ${u.next}`
  rows.push(`| \`521\`, a POST body still being sent | 521 | ${told(upload.before)} | ${told(upload.after)} |`)
  t.same(upload.after, { first: '521', next: '521' }, 'the upload gets its 521, and its connection serves the next one')
  t.comment(`\n${rows.join('\n')}`)
})
