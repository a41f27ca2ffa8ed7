// The same exchanges against Shopify's Toxiproxy and against highproxy's, compared answer
// by answer: status, content type, and the JSON field by field (ports and request ids
// aside). Toxiproxy is not packaged; build its server from source (docs/toxiproxy.md, "A
// reference Toxiproxy") and give its path in TOXIPROXY_SERVER. Without it this file is
// skipped, saying so: the golden shapes in toxiproxy-api.test.ts still run.

import { spawn } from 'node:child_process'
import net from 'node:net'
import t, { type Test } from 'tap'
import { startToxiproxy } from '../../src/lab/index.js'
import { echoUpstream, exchange, portOf } from '../toxiproxy-support.js'

const freePort = (): Promise<number> => new Promise(resolve => {
  const s = net.createServer().listen(0, '127.0.0.1', () => {
    const { port } = s.address() as net.AddressInfo
    s.close(() => resolve(port))
  })
})

interface Seen { status: number, type: string | null, nosniff: string | null, requestId: boolean, body: unknown }

async function compare (t: Test, bin: string): Promise<void> {
  const echo = await echoUpstream()
  t.teardown(() => echo.close())
  const refPort = await freePort()
  const ref = spawn(bin, ['-host', '127.0.0.1', '-port', String(refPort)], { stdio: 'ignore' })
  t.teardown(() => { ref.kill('SIGKILL') })
  for (let i = 0; i < 100; i++) {
    if (await fetch(`http://127.0.0.1:${refPort}/version`).then(() => true, () => false)) break
    await new Promise(resolve => setTimeout(resolve, 100))
  }
  const ours = await startToxiproxy({ port: 0 })
  t.teardown(() => ours.close())
  const taken = net.createServer()
  await new Promise<void>(resolve => taken.listen(0, '127.0.0.1', () => resolve()))
  t.teardown(() => taken.close())
  const takenAddress = `127.0.0.1:${(taken.address() as net.AddressInfo).port}`

  /** One exchange, with what varies between runs (ports, ids) taken out. */
  const ask = async (base: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Seen> => {
    const res = await fetch(base + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) })
    const text = (await res.text()).replace(/127\.0\.0\.1:\d+/g, '127.0.0.1:PORT')
    let parsed: unknown = text
    // Toxiproxy's Proxy struct marshals its zerolog logger too ("Logger": {}): a field of its
    // implementation that no client reads; highproxy leaves it out (docs/toxiproxy.md).
    try { parsed = JSON.parse(text, (key, value: unknown) => key === 'Logger' ? undefined : value) } catch {}
    return { status: res.status, type: res.headers.get('content-type'), nosniff: res.headers.get('x-content-type-options'), requestId: res.headers.has('x-toxiproxy-request-id'), body: parsed }
  }

  const script: Array<[string, string, string, unknown?, Record<string, string>?]> = [
    ['create', 'POST', '/proxies', { name: 'a', listen: '127.0.0.1:0', upstream: echo.address }],
    ['list proxies', 'GET', '/proxies'],
    ['show proxy', 'GET', '/proxies/a'],
    ['name taken', 'POST', '/proxies', { name: 'a', listen: '127.0.0.1:0', upstream: echo.address }],
    ['no name', 'POST', '/proxies', { upstream: echo.address }],
    ['no upstream', 'POST', '/proxies', { name: 'x' }],
    ['listen in use', 'POST', '/proxies', { name: 'busy', listen: takenAddress, upstream: echo.address }],
    ['add latency', 'POST', '/proxies/a/toxics', { type: 'latency', attributes: { latency: 5 } }],
    ['toxic name taken', 'POST', '/proxies/a/toxics', { type: 'latency' }],
    ['unknown type', 'POST', '/proxies/a/toxics', { type: 'nope' }],
    ['unknown stream', 'POST', '/proxies/a/toxics', { type: 'latency', stream: 'sideways' }],
    ...['bandwidth', 'slow_close', 'timeout', 'reset_peer', 'slicer', 'limit_data'].map((type): [string, string, string, unknown] =>
      [`add ${type}`, 'POST', '/proxies/a/toxics', { type, stream: 'upstream', toxicity: 0.5 }]),
    ['list toxics', 'GET', '/proxies/a/toxics'],
    ['show toxic', 'GET', '/proxies/a/toxics/latency_downstream'],
    ['update toxic (POST)', 'POST', '/proxies/a/toxics/latency_downstream', { attributes: { jitter: 2 } }],
    ['update toxic (PATCH)', 'PATCH', '/proxies/a/toxics/latency_downstream', { toxicity: 0.25 }],
    ['unknown toxic', 'GET', '/proxies/a/toxics/nope'],
    ['delete toxic', 'DELETE', '/proxies/a/toxics/bandwidth_upstream'],
    ['unknown proxy', 'GET', '/proxies/nope'],
    ['disable (POST)', 'POST', '/proxies/a', { enabled: false }],
    ['enable (PATCH)', 'PATCH', '/proxies/a', { enabled: true }],
    ['populate', 'POST', '/populate', [{ name: 'b', listen: '127.0.0.1:0', upstream: echo.address }]],
    ['populate, missing upstream', 'POST', '/populate', [{ name: 'c' }]],
    ['browser', 'GET', '/proxies', undefined, { 'user-agent': 'Mozilla/5.0' }],
    ['reset', 'POST', '/reset'],
    ['after reset', 'GET', '/proxies'],
    ['delete proxy', 'DELETE', '/proxies/b'],
    ['after delete', 'GET', '/proxies']
  ]
  for (const [what, method, path, body, headers] of script) {
    const theirs = await ask(`http://127.0.0.1:${refPort}`, method, path, body, headers)
    const mine = await ask(ours.url, method, path, body, headers)
    t.same(mine, theirs, `${what}: ${method} ${path} answers as Toxiproxy's (${theirs.status})`)
  }

  // On the wire: the same toxics, the same effect through both.
  for (const [base, name] of [[`http://127.0.0.1:${refPort}`, 'Toxiproxy'], [ours.url, 'highproxy']] as const) {
    const p = await (await fetch(`${base}/proxies`, { method: 'POST', body: JSON.stringify({ name: 'wire', listen: '127.0.0.1:0', upstream: echo.address }) })).json() as { listen: string }
    const port = portOf(p.listen)
    const toxic = async (body: unknown): Promise<void> => { await fetch(`${base}/proxies/wire/toxics`, { method: 'POST', body: JSON.stringify(body) }) }
    const drop = async (n: string): Promise<void> => { await fetch(`${base}/proxies/wire/toxics/${n}`, { method: 'DELETE' }) }
    const base0 = (await exchange(port, 'x', 1)).ms
    await toxic({ name: 'l', type: 'latency', attributes: { latency: 400 } })
    const added = (await exchange(port, 'x', 1)).ms - base0
    t.ok(added >= 360 && added <= 480, `${name}: latency 400 adds ${added.toFixed(0)} ms`)
    await drop('l')
    await toxic({ name: 'cut', type: 'limit_data', attributes: { bytes: 100 } })
    const cut = await exchange(port, Buffer.alloc(1000, 'z'), 1000, 5000)
    t.equal(cut.data.length, 100, `${name}: limit_data cuts at 100 bytes`)
    await drop('cut')
    await toxic({ name: 'rst', type: 'reset_peer', attributes: { timeout: 0 } })
    t.equal((await exchange(port, 'x', 1, 5000)).ended, 'reset', `${name}: reset_peer resets`)
    await drop('rst')
    await toxic({ name: 'to', type: 'timeout', attributes: { timeout: 300 } })
    const held = await exchange(port, 'x', 1, 5000)
    t.same([held.data.length, held.ended], [0, 'end'], `${name}: timeout holds and closes (${held.ms.toFixed(0)} ms)`)
  }
}

const binary = process.env.TOXIPROXY_SERVER ?? ''
t.test('the same exchanges against Toxiproxy and highproxy',
  { skip: binary === '' ? 'TOXIPROXY_SERVER is not set: no reference Toxiproxy to compare with' : false },
  t => compare(t, binary))
