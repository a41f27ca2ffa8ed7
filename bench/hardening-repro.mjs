// Reproductions of issue 14 items 1 (stray origin response) and 3 (pipelining fan-out),
// and issue 28 items 1 (`HTTP/2.0` request lines) and 2 (a request followed by garbage),
// against one highproxy build: node bench/hardening-repro.mjs <dist/cli.js> [--config file.yaml]
import net from 'node:net'
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'

const [cli, ...extra] = process.argv.slice(2)
if (!cli) { console.error('usage: hardening-repro.mjs <cli.js> [extra highproxy flags]'); process.exit(2) }

const freePort = () => new Promise(r => { const s = net.createServer().listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => r(p)) }) })
const withTimeout = (p, ms) => Promise.race([p, sleep(ms).then(() => 'hung')])

function startOrigin () {
  const o = { accepts: 0, requests: 0 }
  o.server = net.createServer(sock => {
    o.accepts++
    let buf = ''
    // One request at a time per connection, as a single-threaded origin serves them: a
    // request that arrives while /stray is still "busy" is answered after its STRAY.
    let busy = Promise.resolve()
    sock.on('error', () => {})
    sock.on('data', d => {
      buf += d.toString('latin1')
      let i
      while ((i = buf.indexOf('\r\n\r\n')) >= 0) {
        const head = buf.slice(0, i); buf = buf.slice(i + 4); o.requests++
        busy = busy.then(async () => {
          if (sock.destroyed) return
          if (head.startsWith('GET /stray')) {
            sock.write('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst')
            await sleep(100)
            if (!sock.destroyed) sock.write('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nSTRAY')
          } else {
            const body = 'ECHO ' + head.replace(/\r\n/g, '\n')
            sock.write(`HTTP/1.1 200 OK\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`)
          }
        })
      }
    })
  })
  return new Promise(r => o.server.listen(0, '127.0.0.1', () => { o.port = o.server.address().port; r(o) }))
}

async function startProxy (originPort) {
  const port = await freePort(); const admin = await freePort()
  const child = spawn(process.execPath, [cli, '--origin', `http://127.0.0.1:${originPort}`, '--port', String(port), '--log-format', 'json', '--admin-port', String(admin), ...extra], { stdio: ['ignore', 'pipe', 'pipe'] })
  const p = { child, port, lines: [], stderr: '' }
  let rest = ''
  child.stdout.on('data', d => { rest += d; const parts = rest.split('\n'); rest = parts.pop(); p.lines.push(...parts) })
  child.stderr.on('data', d => { p.stderr += d })
  p.exited = new Promise(r => child.on('exit', (code, sig) => r(code ?? sig)))
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise(r => { const s = net.connect(port, '127.0.0.1', () => { s.destroy(); r(true) }); s.on('error', () => r(false)) })
    if (ok) return p
    await sleep(100)
  }
  throw new Error('proxy did not start: ' + p.stderr)
}

const rss = pid => { try { return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) } catch { return null } }

function client (port) {
  const s = net.connect(port, '127.0.0.1'); s.got = ''
  s.on('data', d => { s.got += d.toString('latin1') }); s.on('error', () => {})
  return new Promise(r => s.on('connect', () => r(s)))
}

async function stray () {
  const origin = await startOrigin(); const proxy = await startProxy(origin.port)
  const r = { straySeen: 0, ownOnly: 0, cookieLeak: 0, rounds: 10 }
  for (let round = 0; round < 10; round++) {
    const c1 = await client(proxy.port)
    c1.write(`GET /stray?r=${round} HTTP/1.1\r\nHost: a\r\n\r\n`)
    await sleep(20)
    const c2 = await client(proxy.port)
    c2.write(`GET /c2?r=${round} HTTP/1.1\r\nHost: a\r\nCookie: secret=client2\r\n\r\n`)
    await sleep(10)
    c1.write(`GET /c1next?r=${round} HTTP/1.1\r\nHost: a\r\n\r\n`)
    await sleep(400)
    // Another client's response (or the stray) reaching a client is the leak; the stray
    // answering client 1's own next request on client 1's own origin connection is the
    // origin confusing only the client that asked.
    const crossed = c1.got.includes('/c2?') || c2.got.includes('STRAY') || c2.got.includes('/c1next') || c2.got.includes('first')
    if (crossed) r.straySeen++
    if (!crossed && c1.got.includes('STRAY')) r.ownOnly++
    if (c1.got.includes('secret=client2')) r.cookieLeak++
    c1.destroy(); c2.destroy()
  }
  await sleep(300)
  r.logged = proxy.lines.filter(l => /HPX_ERR_STRAY_RESPONSE|"msg":"[^"]*stray/i.test(l)).length
  r.originAccepts = origin.accepts
  proxy.child.kill('SIGTERM'); await withTimeout(proxy.exited, 10000)
  origin.server.close()
  return r
}

async function pipelined (proxy, conns, n) {
  const req = Array.from({ length: n }, (_, i) => `GET /p${i} HTTP/1.1\r\nHost: a\r\n\r\n`).join('')
  const socks = await Promise.all(Array.from({ length: conns }, () => client(proxy.port)))
  let peak = rss(proxy.child.pid)
  const timer = setInterval(() => { const v = rss(proxy.child.pid); if (v > peak) peak = v }, 50)
  const count = s => (s.got.match(/HTTP\/1\.1 \d{3}/g) || []).length
  const done = Promise.all(socks.map(s => new Promise(r => {
    const check = () => { if (count(s) >= n) r() }
    s.on('data', check); s.on('close', r)
  })))
  for (const s of socks) s.write(req)
  const res = await withTimeout(done, 60000)
  clearInterval(timer)
  const responses = socks.reduce((a, s) => a + count(s), 0)
  for (const s of socks) s.destroy()
  return { hung: res === 'hung', responses, peak }
}

async function fanout () {
  const origin = await startOrigin(); const proxy = await startProxy(origin.port)
  await sleep(500)
  const before = rss(proxy.child.pid)
  const a = await pipelined(proxy, 1, 1000)
  const acceptsA = origin.accepts
  const b = await pipelined(proxy, 10, 5000)
  await sleep(5000)
  const after = rss(proxy.child.pid)
  const access = proxy.lines.map(l => { try { return JSON.parse(l) } catch { return null } }).filter(j => j && j.msg === 'access')
  const statuses = {}
  for (const j of access) { const s = j.status ?? j.res?.statusCode ?? '?'; statuses[s] = (statuses[s] ?? 0) + 1 }
  proxy.child.kill('SIGTERM')
  const exit = await withTimeout(proxy.exited, 10000)
  if (exit === 'hung') proxy.child.kill('SIGKILL')
  origin.server.close()
  return { a, b, acceptsA, acceptsB: origin.accepts - acceptsA, access: access.length, statuses, before, peak: Math.max(a.peak, b.peak), after, exit }
}

/** Issue 28: `n` connections send `GET / HTTP/2.0`; what each got within 3 s, and what the log says. */
async function versionLines (n) {
  const origin = await startOrigin(); const proxy = await startProxy(origin.port)
  await sleep(500)
  const before = rss(proxy.child.pid)
  const socks = await Promise.all(Array.from({ length: n }, () => client(proxy.port)))
  const closed = socks.map(sk => new Promise(r => sk.on('close', () => r(true))))
  for (const sk of socks) sk.write('GET / HTTP/2.0\r\nHost: a\r\n\r\n')
  await sleep(3000)
  const answered = socks.filter(sk => /^HTTP\/1\.1 505/.test(sk.got)).length
  const closedCount = (await Promise.all(closed.map(c => withTimeout(c, 10)))).filter(c => c === true).length
  const held = rss(proxy.child.pid)
  for (const sk of socks) sk.destroy()
  await sleep(300)
  const access = proxy.lines.map(l => { try { return JSON.parse(l) } catch { return null } }).filter(j => j && j.msg === 'access')
  const errors = proxy.lines.filter(l => /"level":(50|"error")/.test(l)).length
  proxy.child.kill('SIGTERM'); await withTimeout(proxy.exited, 10000)
  origin.server.close()
  return { n, answered, closed: closedCount, lines505: access.filter(j => j.status === 505).length, errors, before, held }
}

/** Issue 28: a POST and bytes that do not parse, in one write: the wire and the log, in order. */
async function garbageAfter () {
  const origin = await startOrigin(); const proxy = await startProxy(origin.port)
  const c = await client(proxy.port)
  c.write('POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\n1\r\nZ\r\n0\r\n\r\n')
  await withTimeout(new Promise(r => c.on('close', r)), 3000)
  await sleep(300)
  const wire = (c.got.match(/HTTP\/1\.1 (\d{3})/g) || []).map(x => Number(x.slice(9)))
  const access = proxy.lines.map(l => { try { return JSON.parse(l) } catch { return null } }).filter(j => j && j.msg === 'access')
  c.destroy()
  proxy.child.kill('SIGTERM'); await withTimeout(proxy.exited, 10000)
  origin.server.close()
  return { wire, lines: access.map(j => `${j.status}${j.refused ? ` (${j.refused})` : ''}`), originRequests: origin.requests }
}

if (process.env.ONLY_28) {
  const v = await versionLines(Number(process.env.ONLY_28) || 200)
  const g = await garbageAfter()
  const mb = k => k == null ? 'n/a' : (k / 1024).toFixed(1) + ' MB'
  console.log(`## ${cli} ${extra.join(' ')}\n`)
  console.log('| issue 28 | value |\n|---|---|')
  console.log(`| ${v.n} × \`GET / HTTP/2.0\`: answered 505 within 3 s | ${v.answered} |\n| … connections closed by the edge | ${v.closed} |\n| … 505 access lines | ${v.lines505} |\n| … error lines | ${v.errors} |\n| … RSS before / while held | ${mb(v.before)} / ${mb(v.held)} |`)
  console.log(`| POST + garbage in one write: statuses on the wire | ${JSON.stringify(g.wire)} |\n| … access lines | ${JSON.stringify(g.lines)} |\n| … requests the origin got | ${g.originRequests} |`)
  process.exit(0)
}

const s = await stray()
if (process.env.ONLY_STRAY) { console.log(s); process.exit(0) }
const f = await fanout()
const mb = k => k == null ? 'n/a' : (k / 1024).toFixed(1) + ' MB'
console.log(`## ${cli} ${extra.join(' ')}\n`)
console.log('| stray response (10 rounds) | value |\n|---|---|')
console.log(`| rounds where a client got another client's response or the stray | ${s.straySeen} |\n| rounds where only the asking client got the stray (its own connection) | ${s.ownOnly} |\n| rounds where client 2's cookie reached client 1 | ${s.cookieLeak} |\n| proxy log lines about stray | ${s.logged} |\n| origin accepts | ${s.originAccepts} |\n`)
console.log('| pipelining fan-out | value |\n|---|---|')
console.log(`| 1×1000: origin accepts | ${f.acceptsA} |\n| 1×1000: responses received | ${f.a.responses}${f.a.hung ? ' (hung)' : ''} |`)
console.log(`| 10×5000: origin accepts | ${f.acceptsB} |\n| 10×5000: responses received | ${f.b.responses}${f.b.hung ? ' (hung)' : ''} |`)
console.log(`| access lines | ${f.access} |\n| statuses in access lines | ${JSON.stringify(f.statuses)} |`)
console.log(`| RSS before / peak / 5 s after | ${mb(f.before)} / ${mb(f.peak)} / ${mb(f.after)} |\n| SIGTERM exit within 10 s (code) | ${f.exit} |`)
process.exit(0)
