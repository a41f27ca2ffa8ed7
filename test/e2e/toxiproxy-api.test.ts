// The Toxiproxy-compatible API, endpoint by endpoint: driven by toxiproxy-node-client (the
// npm package suites use) and by plain fetch where the client hides the status code or
// headers. Golden answers are the shapes Toxiproxy 2.x's api.go writes (Go's json.Marshal
// of Proxy and ToxicWrapper, its ApiError through http.Error), compared field by field.

import { spawn } from 'node:child_process'
import net from 'node:net'
import t from 'tap'
import { Toxiproxy, ToxiproxyError } from 'toxiproxy-node-client'
import { startToxiproxy, TOXIPROXY_VERSION } from '../../src/lab/index.js'
import { CLI } from '../cli-process.js'
import { alive, childrenOf } from '../leftovers.js'
import { connectOutcome, echoUpstream, exchange, portOf } from '../toxiproxy-support.js'

const echo = await echoUpstream()
t.teardown(() => echo.close())

interface Answer { status: number, headers: Headers, text: string, json: any }

async function call (base: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Answer> {
  const res = await fetch(base + path, {
    method,
    headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body)
  })
  const text = await res.text()
  let json: unknown = null
  try { json = JSON.parse(text) } catch {}
  return { status: res.status, headers: res.headers, text, json }
}

/** Go's json.Marshal of a Proxy with its toxics: these keys, in this order. */
const PROXY_KEYS = ['name', 'listen', 'upstream', 'enabled', 'toxics']
/** Go's json.Marshal of a ToxicWrapper: the embedded Toxic ("attributes") first. */
const TOXIC_KEYS = ['attributes', 'name', 'type', 'stream', 'toxicity']
/** Each toxic's attribute names, as its Go struct's json tags (toxics/*.go). */
const ATTRIBUTES: Record<string, string[]> = {
  latency: ['latency', 'jitter'],
  bandwidth: ['rate'],
  slow_close: ['delay'],
  timeout: ['timeout'],
  reset_peer: ['timeout'],
  slicer: ['average_size', 'size_variation', 'delay'],
  limit_data: ['bytes']
}

t.test('every endpoint, through toxiproxy-node-client, with golden shapes', async t => {
  const server = await startToxiproxy({ port: 0 })
  t.teardown(() => server.close())
  const api = new Toxiproxy(server.url)

  // GET /version: Go writes the JSON by hand, with a space and a newline.
  const version = await call(server.url, 'GET', '/version')
  t.equal(version.status, 200)
  t.equal(version.headers.get('content-type'), 'application/json;charset=utf-8')
  t.equal(version.text, `{"version": "${TOXIPROXY_VERSION}"}\n`)
  t.equal(await api.getVersion(), version.text, 'the client reads the same')
  t.match(version.headers.get('x-toxiproxy-request-id'), /^[0-9a-v]{20}$/, 'an xid request id, as Toxiproxy\'s hlog sets')

  // POST /proxies: 201, the proxy, listen port 0 replaced by the port it got.
  const created = await call(server.url, 'POST', '/proxies', { name: 'echo', listen: '127.0.0.1:0', upstream: echo.address })
  t.equal(created.status, 201)
  t.equal(created.headers.get('content-type'), 'application/json')
  t.same(Object.keys(created.json), PROXY_KEYS)
  t.equal(created.json.name, 'echo')
  t.match(created.json.listen, /^127\.0\.0\.1:\d+$/)
  t.not(portOf(created.json.listen), 0, 'an ephemeral port, and the answer says which')
  t.equal(created.json.upstream, echo.address)
  t.equal(created.json.enabled, true)
  t.same(created.json.toxics, [])
  const port = portOf(created.json.listen)
  t.equal((await exchange(port, 'ping', 4)).data.toString(), 'ping', 'data passes through unchanged')

  // The client's own calls on the same proxy.
  const proxy = await api.get('echo')
  t.equal(proxy.listen, created.json.listen)

  // POST /populate: 201, {"proxies": [...]}; an unchanged proxy is left alone.
  const populated = await call(server.url, 'POST', '/populate', [
    { name: 'echo', listen: created.json.listen, upstream: echo.address },
    { name: 'second', listen: '127.0.0.1:0', upstream: echo.address, enabled: false }
  ])
  t.equal(populated.status, 201)
  t.same(Object.keys(populated.json), ['proxies'])
  t.same(populated.json.proxies.map((p: any) => [p.name, p.listen === created.json.listen || p.name !== 'echo', p.enabled]), [['echo', true, true], ['second', true, false]])
  const viaClient = await api.populate([{ name: 'third', listen: '127.0.0.1:0', upstream: echo.address }])
  t.same(Object.keys(viaClient), ['third'])

  // GET /proxies: an object keyed by name.
  const all = await call(server.url, 'GET', '/proxies')
  t.equal(all.status, 200)
  t.same(Object.keys(all.json).sort(), ['echo', 'second', 'third'])
  for (const p of Object.values(all.json)) t.same(Object.keys(p as object), PROXY_KEYS)
  t.same(Object.keys(await api.getAll()).sort(), ['echo', 'second', 'third'])

  // GET /proxies/{name}
  const shown = await call(server.url, 'GET', '/proxies/echo')
  t.equal(shown.status, 200)
  t.same(shown.json, created.json)

  // POST /proxies/{name}/toxics: 200 (not 201), default name <type>_<stream>, downstream, toxicity 1.
  const added = await call(server.url, 'POST', '/proxies/echo/toxics', { type: 'latency', attributes: { latency: 10 } })
  t.equal(added.status, 200)
  t.same(Object.keys(added.json), TOXIC_KEYS)
  t.same(added.json, { attributes: { latency: 10, jitter: 0 }, name: 'latency_downstream', type: 'latency', stream: 'downstream', toxicity: 1 })
  for (const [type, names] of Object.entries(ATTRIBUTES)) {
    const toxic = await proxy.addToxic({ name: `all_${type}`, type: type as any, stream: 'upstream', toxicity: 0, attributes: {} as any })
    t.same(Object.keys(toxic.attributes as object), names, `${type}: its attributes, zero by default`)
    t.equal(toxic.stream, 'upstream')
    t.equal(toxic.toxicity, 0)
  }

  // GET /proxies/{name}/toxics: an array, upstream toxics first, in the order added.
  const list = await call(server.url, 'GET', '/proxies/echo/toxics')
  t.equal(list.status, 200)
  t.ok(Array.isArray(list.json))
  t.same(list.json.map((x: any) => x.name), [...Object.keys(ATTRIBUTES).map(k => `all_${k}`), 'latency_downstream'])

  // GET, POST and PATCH, DELETE on /proxies/{name}/toxics/{toxic}
  const one = await proxy.getToxic('latency_downstream')
  t.same(one.toJson(), added.json)
  const updated = await one.update({ attributes: { latency: 20 }, toxicity: 0.5 } as any)
  t.same(updated.attributes, { latency: 20, jitter: 0 }, 'attributes merged: jitter kept')
  t.equal(updated.toxicity, 0.5)
  const patched = await call(server.url, 'PATCH', '/proxies/echo/toxics/latency_downstream', { attributes: { jitter: 5 } })
  t.equal(patched.status, 200)
  t.same(patched.json, { attributes: { latency: 20, jitter: 5 }, name: 'latency_downstream', type: 'latency', stream: 'downstream', toxicity: 0.5 }, 'toxicity kept when absent')
  const deleted = await call(server.url, 'DELETE', '/proxies/echo/toxics/latency_downstream')
  t.equal(deleted.status, 204)
  t.equal(deleted.text, '')
  t.equal(deleted.headers.get('x-toxiproxy-request-id')?.length, 20)

  // POST and PATCH /proxies/{name}: disable, enable.
  const disabled = await proxy.update({ enabled: false, listen: proxy.listen, upstream: proxy.upstream })
  t.equal(disabled.enabled, false)
  t.equal((await connectOutcome(port, 2000)).outcome, 'refused', 'disabled: the listener is closed, connects are refused')
  const enabled = await call(server.url, 'PATCH', '/proxies/echo', { enabled: true })
  t.equal(enabled.status, 200)
  t.equal(enabled.json.enabled, true)
  t.equal(enabled.json.listen, created.json.listen, 'back on the same port')
  t.equal((await exchange(port, 'again', 5)).data.toString(), 'again')

  // A new upstream (PATCH) restarts the proxy on it; so does /populate with one that differs.
  const other = await echoUpstream()
  t.teardown(() => other.close())
  const moved = await call(server.url, 'PATCH', '/proxies/echo', { upstream: other.address })
  t.equal(moved.json.upstream, other.address)
  t.equal(moved.json.listen, created.json.listen, 'same listen address')
  const seen = other.connections()
  t.equal((await exchange(port, 'moved', 5)).data.toString(), 'moved')
  t.equal(other.connections(), seen + 1, 'the new upstream was dialled')
  const replaced = await call(server.url, 'POST', '/populate', [{ name: 'echo', listen: created.json.listen, upstream: echo.address }])
  t.equal(replaced.status, 201)
  t.equal(replaced.json.proxies[0].upstream, echo.address, 'populate replaced the proxy whose upstream differed')
  t.equal((await exchange(port, 'home', 4)).data.toString(), 'home')

  // POST /reset: 204; every proxy enabled, every toxic gone.
  await call(server.url, 'POST', '/proxies/second/toxics', { type: 'timeout' })
  const reset = await call(server.url, 'POST', '/reset')
  t.equal(reset.status, 204)
  await api.reset()
  const after = (await call(server.url, 'GET', '/proxies')).json
  for (const p of Object.values(after) as any[]) {
    t.equal(p.enabled, true, `${p.name} enabled`)
    t.same(p.toxics, [], `${p.name} has no toxic`)
  }

  // GET /metrics: Toxiproxy's proxy byte counters.
  const metrics = await call(server.url, 'GET', '/metrics')
  t.equal(metrics.status, 200)
  t.match(metrics.text, new RegExp(`toxiproxy_proxy_received_bytes_total\\{direction="upstream",proxy="echo",listener="${created.json.listen}",upstream="${echo.address}"\\} (\\d+)`))
  const sent = /toxiproxy_proxy_sent_bytes_total\{direction="downstream",proxy="echo"[^}]*\} (\d+)/.exec(metrics.text)
  t.equal(Number(sent?.[1]), 'home'.length, 'bytes sent to clients since populate replaced the proxy, counted from the sockets')

  // DELETE /proxies/{name}: 204, then 404.
  await (await api.get('third')).remove()
  const gone = await call(server.url, 'DELETE', '/proxies/second')
  t.equal(gone.status, 204)
  t.equal((await call(server.url, 'GET', '/proxies/second')).status, 404)
})

t.test('errors in Toxiproxy\'s shape and status codes', async t => {
  const server = await startToxiproxy({ port: 0 })
  t.teardown(() => server.close())
  const api = new Toxiproxy(server.url)
  await api.createProxy({ name: 'p', listen: '127.0.0.1:0', upstream: echo.address })
  const taken = net.createServer()
  await new Promise<void>(resolve => taken.listen(0, '127.0.0.1', () => resolve()))
  t.teardown(() => taken.close())
  const takenAddress = `127.0.0.1:${(taken.address() as net.AddressInfo).port}`

  /** What Toxiproxy's apiError writes: http.Error with the JSON of ApiError. */
  const apiError = async (what: string, method: string, path: string, body: unknown, status: number, error: string | RegExp): Promise<void> => {
    const res = await call(server.url, method, path, body)
    t.equal(res.status, status, `${what}: ${status}`)
    t.equal(res.headers.get('content-type'), 'text/plain; charset=utf-8', `${what}: sent as text/plain, as http.Error does`)
    t.equal(res.headers.get('x-content-type-options'), 'nosniff')
    t.ok(res.text.endsWith('}\n'), `${what}: JSON and a newline`)
    t.same(Object.keys(res.json ?? {}), ['error', 'status'], `${what}: {"error", "status"}`)
    t.equal(res.json?.status, status)
    t.match(res.json?.error, error, `${what}: ${String(res.json?.error)}`)
    t.match(res.headers.get('x-toxiproxy-request-id'), /^[0-9a-v]{20}$/)
  }

  // As Toxiproxy answers them.
  await apiError('unknown proxy', 'GET', '/proxies/nope', undefined, 404, /^proxy not found$/)
  await apiError('unknown toxic', 'GET', '/proxies/p/toxics/nope', undefined, 404, /^toxic not found$/)
  await apiError('name taken', 'POST', '/proxies', { name: 'p', listen: '127.0.0.1:0', upstream: echo.address }, 409, /^proxy already exists$/)
  await apiError('no name', 'POST', '/proxies', { upstream: echo.address }, 400, /^missing required field: name$/)
  await apiError('no upstream', 'POST', '/proxies', { name: 'q' }, 400, /^missing required field: upstream$/)
  await apiError('not JSON', 'POST', '/proxies', '{nope', 400, /^bad request body: /)
  await apiError('empty body', 'POST', '/proxies/p/toxics', '', 400, /^bad request body: EOF$/)
  await apiError('unknown toxic type', 'POST', '/proxies/p/toxics', { type: 'lag' }, 400, /^invalid toxic type$/)
  await apiError('unknown stream', 'POST', '/proxies/p/toxics', { type: 'latency', stream: 'sideways' }, 400, /^stream was invalid, can be either upstream or downstream$/)
  await call(server.url, 'POST', '/proxies/p/toxics', { type: 'latency' })
  await apiError('toxic name taken', 'POST', '/proxies/p/toxics', { type: 'latency' }, 409, /^toxic already exists$/)
  await apiError('listen address in use', 'POST', '/proxies', { name: 'busy', listen: takenAddress, upstream: echo.address }, 500,
    `listen tcp ${takenAddress}: bind: address already in use`)
  t.equal((await call(server.url, 'GET', '/proxies/busy')).status, 404, 'a proxy that could not listen is not kept')

  // Toxiproxy accepts these and then misbehaves; refused here, in its shape (docs/toxiproxy.md, differences).
  await apiError('toxicity 2', 'POST', '/proxies/p/toxics', { type: 'bandwidth', toxicity: 2 }, 400, /^bad request body: toxicity must be a number from 0 to 1$/)
  await apiError('negative latency', 'POST', '/proxies/p/toxics', { name: 'neg', type: 'latency', attributes: { latency: -5 } }, 400, /^bad request body: attribute latency must be zero or more$/)
  await apiError('fractional bytes', 'POST', '/proxies/p/toxics', { type: 'limit_data', attributes: { bytes: 1.5 } }, 400, /attribute bytes must be an integer/)
  await apiError('slicer variation ≥ average', 'POST', '/proxies/p/toxics', { type: 'slicer', attributes: { average_size: 10, size_variation: 10 } }, 400, /size_variation must be smaller than average_size/)
  await apiError('upstream without a port', 'POST', '/proxies', { name: 'noport', listen: '127.0.0.1:0', upstream: 'localhost' }, 400, /^bad request body: upstream must be host:port/)
  await apiError('upstream port 0', 'POST', '/proxies', { name: 'port0', listen: '127.0.0.1:0', upstream: '127.0.0.1:0' }, 400, /^bad request body: upstream must be host:port/)
  await apiError('listen without a port', 'POST', '/proxies', { name: 'nolisten', listen: '127.0.0.1', upstream: echo.address }, 400, /^bad request body: listen must be host:port/)
  await apiError('update: toxicity -1', 'POST', '/proxies/p/toxics/latency_downstream', { toxicity: -1 }, 400, /toxicity must be a number from 0 to 1/)
  await apiError('http_status outside 200–599', 'POST', '/proxies/p/toxics', { type: 'http_status', attributes: { status: 99 } }, 400, /attribute status must be at least 200/)
  await apiError('tls_bad_cert, unknown reason', 'POST', '/proxies/p/toxics', { type: 'tls_bad_cert', attributes: { reason: 'revoked' } }, 400, /reason must be one of self_signed, expired, wrong_name/)
  const list = await call(server.url, 'GET', '/proxies/p/toxics')
  t.same(list.json.map((x: any) => x.name), ['latency_downstream'], 'nothing refused was added')

  // The node client turns an error status into a ToxiproxyError.
  await t.rejects(api.get('nope'), new ToxiproxyError('Error', 'Request failed with status code 404'))

  // Populate: the error and the proxies made before it, as Populate writes them (application/json).
  const pop = await call(server.url, 'POST', '/populate', [
    { name: 'ok1', listen: '127.0.0.1:0', upstream: echo.address },
    { name: 'clash', listen: takenAddress, upstream: echo.address }
  ])
  t.equal(pop.status, 500)
  t.equal(pop.headers.get('content-type'), 'application/json')
  t.same(Object.keys(pop.json), ['error', 'status', 'proxies'])
  t.same(pop.json.proxies.map((p: any) => p.name), ['ok1'])
  const popMissing = await call(server.url, 'POST', '/populate', [{ name: 'x' }])
  t.equal(popMissing.status, 400)
  t.equal(popMissing.json.error, 'missing required field: upstream at proxy 1')

  // Routing and the browser guard.
  const browser = await call(server.url, 'GET', '/proxies', undefined, { 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64)' })
  t.equal(browser.status, 403)
  t.equal(browser.text, 'User agent not allowed\n')
  t.match(browser.headers.get('x-toxiproxy-request-id'), /^[0-9a-v]{20}$/)
  const wrongMethod = await call(server.url, 'PUT', '/proxies')
  t.equal(wrongMethod.status, 405)
  const unknown = await call(server.url, 'GET', '/nothing')
  t.equal(unknown.status, 404)
  t.equal(unknown.text, '404 page not found\n')
})

t.test('nothing of a deleted proxy is left: listener, client and upstream connections', async t => {
  const server = await startToxiproxy({ port: 0 })
  t.teardown(() => server.close())
  const api = new Toxiproxy(server.url)
  const before = echo.connections()
  const proxy = await api.createProxy({ name: 'leak', listen: '127.0.0.1:0', upstream: echo.address })
  const port = portOf(proxy.listen)
  // Three open connections, one with a toxic holding data.
  const sockets = await Promise.all([0, 1, 2].map(() => new Promise<net.Socket>(resolve => {
    const s = net.connect({ host: '127.0.0.1', port }, () => resolve(s))
    s.on('error', () => {})
  })))
  await proxy.addToxic({ type: 'latency', attributes: { latency: 60_000 } } as any)
  sockets[0]?.write('held by the toxic')
  await t.resolveMatch(new Promise(resolve => setTimeout(() => resolve(server.openConnections()), 200)), 4, 'three connections and the listener')
  t.equal(echo.connections() - before, 3, 'each dialled the upstream')
  const closed = sockets.map(s => new Promise(resolve => s.once('close', resolve)))
  await proxy.remove()
  await Promise.all(closed)
  t.pass('every client connection was closed')
  t.equal(server.openConnections(), 0, 'no connection or listener left')
  t.equal((await connectOutcome(port, 2000)).outcome, 'refused', 'the port is closed')
})

/** The CLI is built JavaScript: tap's loaders in NODE_OPTIONS would only slow each start (and its child's). */
const cliEnv = { ...process.env, NODE_OPTIONS: '' }

/** Starts `highproxy toxiproxy --port 0`; resolves the API URL it prints. */
function startCli (): { child: ReturnType<typeof spawn>, url: Promise<string>, exited: Promise<number | null> } {
  const child = spawn(process.execPath, [CLI, 'toxiproxy', '--host', '127.0.0.1', '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'], env: cliEnv })
  const exited = new Promise<number | null>(resolve => child.once('exit', code => resolve(code)))
  const url = new Promise<string>((resolve, reject) => {
    let err = ''
    child.stderr?.on('data', (d: Buffer) => {
      err += d.toString()
      const m = /API on (http:\/\/[\d.]+:\d+)/.exec(err)
      if (m !== null) resolve(m[1] as string)
    })
    setTimeout(() => reject(new Error(`no URL on stderr: ${err}`)), 20_000)
  })
  return { child, url, exited }
}

t.test('an upstream that refuses: the client is accepted, then closed without a byte (as Toxiproxy)', async t => {
  const server = await startToxiproxy({ port: 0 })
  t.teardown(() => server.close())
  const closedPort = await new Promise<number>(resolve => {
    const s = net.createServer().listen(0, '127.0.0.1', () => { const { port } = s.address() as net.AddressInfo; s.close(() => resolve(port)) })
  })
  const proxy = await new Toxiproxy(server.url).createProxy({ name: 'refused', listen: '127.0.0.1:0', upstream: `127.0.0.1:${closedPort}` })
  const res = await exchange(portOf(proxy.listen), 'anyone?', 7, 5000)
  t.equal(res.data.length, 0)
  t.not(res.ended, 'timeout', `closed (${res.ended})`)
  await new Promise(resolve => setTimeout(resolve, 100))
  t.equal(server.openConnections(), 1, 'only the listener is left')
})

t.test('highproxy toxiproxy: the CLI serves the API and stops on SIGTERM; a bad flag exits 2', async t => {
  const cli = startCli()
  t.teardown(() => { cli.child.kill('SIGKILL') })
  const api = new Toxiproxy(await cli.url)
  t.match(await api.getVersion(), /"version"/)
  const p = await api.createProxy({ name: 'cli', listen: '127.0.0.1:0', upstream: echo.address })
  t.equal((await exchange(portOf(p.listen), 'via the CLI', 11)).data.toString(), 'via the CLI')
  cli.child.kill('SIGTERM')
  t.equal(await cli.exited, 0)
  t.equal((await connectOutcome(portOf(p.listen), 2000)).outcome, 'refused', 'its proxies are gone with it')

  const bad = spawn(process.execPath, [CLI, 'toxiproxy', '--port', 'eighty'], { stdio: ['ignore', 'ignore', 'pipe'], env: cliEnv })
  let stderr = ''
  bad.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
  const code = await new Promise(resolve => bad.once('exit', resolve))
  t.equal(code, 2)
  t.match(stderr, /^highproxy: --port: "eighty" is not a port/)
  t.equal(stderr.trim().split('\n').length, 1, 'one line')

  const taken = net.createServer()
  await new Promise<void>(resolve => taken.listen(0, '127.0.0.1', () => resolve()))
  t.teardown(() => taken.close())
  const busy = spawn(process.execPath, [CLI, 'toxiproxy', '--port', String((taken.address() as net.AddressInfo).port)], { stdio: ['ignore', 'ignore', 'pipe'], env: cliEnv })
  let busyErr = ''
  busy.stderr.on('data', (d: Buffer) => { busyErr += d.toString() })
  t.equal(await new Promise(resolve => busy.once('exit', resolve)), 1, 'a port in use exits 1')
  t.match(busyErr, /^highproxy: cannot listen on 127\.0\.0\.1:\d+ \(toxiproxy\): address already in use\n$/)
})

t.test('highproxy toxiproxy killed with SIGKILL leaves no process and no listener behind', async t => {
  const cli = startCli()
  const url = await cli.url
  const pid = cli.child.pid as number
  const [worker] = childrenOf(pid)
  t.ok(worker !== undefined && alive(worker.pid), 'the API runs in a child process of its own')
  cli.child.kill('SIGKILL')
  await cli.exited
  for (let i = 0; i < 100 && worker !== undefined && alive(worker.pid); i++) await new Promise(resolve => setTimeout(resolve, 50))
  t.notOk(worker !== undefined && alive(worker.pid), 'it stopped when its parent died')
  t.equal((await connectOutcome(Number(new URL(url).port), 2000)).outcome, 'refused', 'the API port is closed')
})
