// `npm start` with nothing configured: the demo, run as a user runs it (node dist/cli.js;
// `npm run build` first). The proxy in front of the built-in origin and the fault lab,
// the URLs to try on stderr, and a clean exit on SIGTERM that leaves no child behind
// (the 522 lab origin is a child process). All traffic stays on 127.0.0.1.

import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { request } from 'undici'
import { get } from '../helpers.js'
import { alive, childrenOf, isSynDropChild, localRoutes } from '../leftovers.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const CLI = join(ROOT, 'dist', 'cli.js')
if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first`)

type Line = Record<string, any>

// No HIGHPROXY_* from the parent (the demo runs only with nothing configured), and not
// tap's process-tracking NODE_OPTIONS (it only slows the start). The admin listener
// gets a free port: its default, 9090, would collide with tests running side by side.
const env = {
  ...Object.fromEntries(Object.entries(process.env)
    .filter(([k]) => !k.startsWith('HIGHPROXY_') && !k.startsWith('_TAPJS_') && k !== 'NODE_OPTIONS')),
  HIGHPROXY_ADMIN_PORT: '0'
}

const child = spawn(process.execPath, [CLI, '--port', '0'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] })
const exited = new Promise<{ code: number | null, signal: NodeJS.Signals | null }>(resolve =>
  child.once('exit', (code, signal) => resolve({ code, signal })))
t.teardown(async () => {
  if (child.exitCode === null && child.signalCode === null) { child.kill('SIGKILL'); await exited }
})

const logs: Line[] = []
let stderr = ''
child.stderr.on('data', (c: Buffer) => { stderr += c.toString() })
let rest = ''
const listening = new Promise<Line>((resolve, reject) => {
  child.stdout.on('data', (c: Buffer) => {
    const parts = (rest + c.toString()).split('\n')
    rest = parts.pop() ?? ''
    for (const text of parts) {
      if (text.trim() === '') continue
      let line: Line
      try { line = JSON.parse(text) as Line } catch { line = { msg: '(not JSON)', text } }
      logs.push(line)
      if (line.msg === 'highproxy listening') resolve(line)
    }
  })
  void exited.then(({ code }) => reject(new Error(`the demo exited (${code}) before listening: ${stderr}`)))
  setTimeout(() => reject(new Error(`no "highproxy listening" line within 20 s: ${stderr}`)), 20_000).unref()
})

const ready = await listening
const base = String(ready.listen)
// stderr is written before the listening line, but by another stream: wait for its end.
const deadline = Date.now() + 5000
while (!stderr.includes('in a browser') && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 10))

// The 522 lab origin: a child node process.
const synDrop = childrenOf(child.pid as number).find(isSynDropChild)
// The 523 lab origin is an "unreachable" route on a 127.77.x.y address, when allowed.
const unreachable = /\b(127\.77\.\d+\.\d+)\b/.exec(JSON.stringify(ready.routes))?.[1]

// /lab/522 takes the demo's 3 s connect timeout: started now, checked below.
const begin522 = performance.now()
const lab522 = request(`${base}/lab/522`, { headers: { accept: 'application/json' }, signal: AbortSignal.timeout(10_000) })
  .then(async res => ({ status: res.statusCode, body: await res.body.text(), ms: performance.now() - begin522 }))
lab522.catch(() => {})

t.test('it listens on the port --port 0 picked, in JSON on stdout', async t => {
  t.match(base, /^http:\/\/127\.0\.0\.1:\d+$/)
  t.not(base, 'http://127.0.0.1:0')
  const routes = JSON.stringify(ready.routes)
  t.match(routes, 'http://127.0.0.1:', 'routes to loopback origins')
  for (const path of ['/lab/521', '/lab/522']) t.match(routes, path, `a ${path} route`)
})

t.test('GET / reaches the built-in origin through the proxy', async t => {
  const res = await get(`${base}/`)
  t.equal(res.status, 200)
  t.match(res.headers['cf-ray'], /^[0-9a-f]{16}-HPX$/)
  t.match(res.body, /came through the proxy/)
  t.match(res.body, res.headers['cf-ray'] as string, 'the origin saw the same ray id')
  t.notMatch(res.body, /NOT come through/)
})

t.test('GET /lab/521 answers 521 at once', async t => {
  const res = await get(`${base}/lab/521`, { headers: { accept: 'application/json' } })
  t.equal(res.status, 521)
  t.match(res.headers['cf-ray'], /^[0-9a-f]{16}-HPX$/)
  t.equal(JSON.parse(res.body).error_code, 521)
  t.ok(res.ms < 2000, `in ${res.ms.toFixed(0)} ms (no wait: refused at once)`)
})

t.test('GET /lab lists the lab as HTML', async t => {
  const res = await get(`${base}/lab`)
  t.equal(res.status, 200)
  t.match(res.headers['content-type'], /^text\/html/)
  for (const status of [520, 521, 522, 524, 525, 526, 530]) t.match(res.body, `href="/lab/${status}"`, `/lab/${status}`)
})

t.test('stderr lists the URLs to try', async t => {
  t.match(stderr, `highproxy demo: ${base} in front of`)
  t.match(stderr, /Try:/)
  for (const path of ['/', '/lab/520', '/lab/521', '/lab/522', '/lab/524', '/lab/525', '/lab/526', '/lab/530']) {
    t.match(stderr, `curl -i ${base}${path}`, path)
  }
  t.match(stderr, `${base}/lab in a browser`)
  t.match(stderr, 'connect timeout 3000 ms')
})

// Regression (src/cli.ts printDemo pads to 48 columns): with a 5-digit port, as --port 0
// always gives, "curl -i http://127.0.0.1:NNNNN/lab/520/garbage" is 48 characters long and
// once ran into its status: ".../lab/520/garbage520  answers…".
t.test('each line to try keeps the URL apart from its status', async t => {
  const tries = stderr.split('\n').filter(l => l.startsWith('  curl -i http'))
  t.ok(tries.length >= 10, `${tries.length} lines`)
  for (const line of tries) t.match(line, /^ {2}curl -i \S+ +(\d{3}|-H) /, line.trim())
})

t.test('GET /lab/522 answers 522 after the demo\'s 3 s connect timeout', async t => {
  const res = await lab522
  t.equal(res.status, 522)
  t.equal(JSON.parse(res.body).error_code, 522)
  t.ok(res.ms >= 2900 && res.ms < 8000, `in ${res.ms.toFixed(0)} ms`)
})

t.test('each 526 case shows what its label says, not an unknown issuer', async t => {
  for (const [path, label, code] of [
    ['/lab/526', /self-signed/, 'DEPTH_ZERO_SELF_SIGNED_CERT'],
    ['/lab/526/expired', /expired/, 'CERT_HAS_EXPIRED'],
    ['/lab/526/name', /wrong-host\.example only/, 'ERR_TLS_CERT_ALTNAME_INVALID']
  ] as const) {
    t.match(stderr.split('\n').find(l => l.includes(`${base}${path} `)), label, `${path} is labelled ${String(label)}`)
    const res = await get(`${base}${path}`, { headers: { accept: 'application/json' } })
    t.equal(res.status, 526, path)
    const ray = String(res.headers['cf-ray']).slice(0, 16)
    const deadline = Date.now() + 5000
    let failure: Line | undefined
    while ((failure = logs.find(l => l.msg === 'origin failure' && l.ray_id === ray)) === undefined && Date.now() < deadline) {
      await new Promise(resolve => setTimeout(resolve, 20))
    }
    t.match(failure, { edge_status: 526, error: { code: 'HPX_ERR_TLS_CERT', cause: { code } } }, `${path}: ${code}`)
  }
})

t.test('SIGTERM: exit 0, and no lab child or route left behind', async t => {
  t.ok(synDrop !== undefined, 'the 522 lab child was running')
  if (synDrop !== undefined) t.ok(alive(synDrop.pid), `pid ${synDrop.pid} alive before`)
  if (unreachable !== undefined) t.match(localRoutes(), unreachable, `route to ${unreachable} before`)

  child.kill('SIGTERM')
  const { code, signal } = await exited
  t.equal(code, 0, 'exit 0')
  t.equal(signal, null)
  t.ok(logs.some(l => l.signal === 'SIGTERM'), 'logs the SIGTERM it got')
  // Checked at once: the child also leaves by itself when its parent is gone (its stdin
  // ends), a moment later, which would hide a shutdown that forgot it.
  if (synDrop !== undefined) t.notOk(alive(synDrop.pid), `522 lab child ${synDrop.pid} is gone`)
  if (unreachable !== undefined) t.notMatch(localRoutes(), unreachable, `route to ${unreachable} removed`)
  t.same(childrenOf(child.pid as number), [], 'no process left whose parent was the demo')
})
