// The log a person reads: the CLI at a pseudo-terminal (util-linux `script`), with no
// --log-format, picks the pretty format and prints one line per request and one per
// failed origin attempt, no JSON; colored unless NO_COLOR is set. The same lines go to a
// plain stream without colors.

import { spawn, spawnSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { Writable } from 'node:stream'
import t, { type Test } from 'tap'
import { refusedOrigin } from '../../src/lab/faults.js'
import { healthyOrigin } from '../../src/lab/healthy-origin.js'
import { createLogger } from '../../src/log/log.js'
import { CLI } from '../cli-process.js'
import { get, rayOf } from '../helpers.js'

const hasScript = spawnSync('script', ['--version']).status === 0
// eslint-disable-next-line no-control-regex
const ANSI = /\x1b\[[0-9;]*m/g
const plain = (s: string): string => s.replace(ANSI, '')

interface Terminal { output: () => string, waitFor: (re: RegExp, ms?: number) => Promise<RegExpExecArray>, stop: () => Promise<void> }

/** The CLI inside `script`, whose pty is its stdout; stdin stays open so script keeps running. */
function atTerminal (t: Test, args: string[], env: Record<string, string>): Terminal {
  const command = [process.execPath, CLI, ...args].map(a => `'${a}'`).join(' ')
  const { NO_COLOR: _n, FORCE_COLOR: _f, ...base } = process.env
  const child = spawn('script', ['-qfec', command, '/dev/null'], { env: { ...base, TERM: 'xterm-256color', ...env }, stdio: ['pipe', 'pipe', 'pipe'] })
  let out = ''
  const waiters: Array<() => void> = []
  child.stdout.on('data', (d: Buffer) => { out += d.toString(); for (const w of waiters.splice(0)) w() })
  const exited = new Promise<void>(resolve => child.once('exit', () => resolve()))
  // SIGTERM: script then ends the proxy too. A SIGKILL would leave it running: it would
  // get only a SIGHUP from the closed terminal, which it takes as a config reload.
  t.teardown(async () => {
    child.kill('SIGTERM')
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
    await exited
    clearTimeout(timer)
  })
  const waitFor = async (re: RegExp, ms = 8000): Promise<RegExpExecArray> => {
    const deadline = Date.now() + ms
    for (;;) {
      const m = re.exec(plain(out))
      if (m !== null) return m
      if (Date.now() > deadline) throw new Error(`not seen at the terminal: ${re}\n${plain(out)}`)
      await new Promise<void>(resolve => { waiters.push(resolve); setTimeout(resolve, 100) })
    }
  }
  return {
    output: () => out,
    waitFor,
    stop: async () => {
      const pid = Number((await waitFor(/\((\d+)\): highproxy listening/))[1])
      process.kill(pid, 'SIGTERM')
      await exited
    }
  }
}

async function origins (t: Test): Promise<string> {
  const healthy = await healthyOrigin()
  const refused = await refusedOrigin()
  t.teardown(async () => { await healthy.close(); await refused.close() })
  const file = `${t.testdir({})}/config.yaml`
  writeFileSync(file, `routes:\n  - { name: ok, path: /ok, origin: "${healthy.url}" }\n  - { name: down, path: /down, origin: "${refused.url}" }\n`)
  return file
}

const linesWith = (text: string, ray: string): string[] => plain(text).split(/\r?\n/).filter(l => l.includes(ray))

t.test('at a terminal: one line per request, one more for an origin failure, colored', { skip: hasScript ? false : 'util-linux script is not installed' }, async t => {
  const term = atTerminal(t, ['--config', await origins(t), '--port', '0', '--admin-port', '0'], {})
  const listen = (await term.waitFor(/highproxy listening on (http:\/\/[0-9.:]+)/))[1] as string
  const ok = await get(`${listen}/ok/hello?x=1`)
  const down = await get(`${listen}/down/checkout`)
  t.equal(ok.status, 200)
  t.equal(down.status, 521)
  await term.waitFor(new RegExp(`GET \\S+/down/checkout 521 .*${rayOf(down)}`))
  await term.waitFor(new RegExp(`GET \\S+/ok/hello 200 .*${rayOf(ok)}`))

  const okLines = linesWith(term.output(), rayOf(ok))
  t.equal(okLines.length, 1, 'one line for a request')
  t.match(okLines[0], new RegExp(`^\\[\\d\\d:\\d\\d:\\d\\d\\.\\d{3}\\] INFO: GET ${new URL(listen).host}/ok/hello 200 \\d+(\\.\\d)? ms · ray ${rayOf(ok)}$`),
    'time, method, host+path, status, duration, ray id')

  const downLines = linesWith(term.output(), rayOf(down))
  t.equal(downLines.length, 2, 'a failed attempt adds one line')
  t.match(downLines[0], /WARN: ✗ 521 connect 127\.0\.0\.1:\d+ — connection refused/, 'the failure: status, phase, address, why')
  t.match(downLines[1], /INFO: GET \S+\/down\/checkout 521 web_server_down \d+(\.\d)? ms · ray /, 'the status with its edge name')
  for (const line of [...okLines, ...downLines]) t.notMatch(line, /[{}]/, 'no JSON braces')
  t.notMatch(plain(term.output()), /ray_id|edge_status|duration_ms/, 'no record field printed on lines of its own')
  t.match(term.output(), /\x1b\[31m✗ 521/, 'colored: the failure in red') // eslint-disable-line no-control-regex
  await term.stop()
})

t.test('NO_COLOR: the same lines without colors', { skip: hasScript ? false : 'util-linux script is not installed' }, async t => {
  const term = atTerminal(t, ['--config', await origins(t), '--port', '0', '--admin-port', '0'], { NO_COLOR: '1' })
  const listen = (await term.waitFor(/highproxy listening on (http:\/\/[0-9.:]+)/))[1] as string
  const down = await get(`${listen}/down/x`)
  await term.waitFor(new RegExp(`521 web_server_down .*${rayOf(down)}`))
  t.notMatch(term.output(), ANSI, 'no escape sequences')
  await term.stop()
})

t.test('into a stream: plain text, the rewritten status beside the edge one, other lines as pino-pretty prints them', async t => {
  let text = ''
  const sink = new Writable({ write (chunk: Buffer, _enc, cb) { text += chunk.toString(); cb() } })
  const log = createLogger('info', 'pretty', sink)
  log.info({ msg: 'access', method: 'POST', host: 'a.test', path: '/api', status: 504, ray_id: '0123456789abcdef', duration_ms: 2000.1, route: 'api', edge_status: 522, ttfb_ms: null, connect_ms: null })
  log.info({ msg: 'access', method: 'GET', host: 'a.test', path: '/slow', status: 499, ray_id: '0123456789abcdee', duration_ms: 5, route: 'api', edge_status: null, ttfb_ms: null, connect_ms: null })
  log.warn({ msg: 'origin failure', edge_status: 530, ray_id: '0123456789abcdef', origin: { url: 'https://nx.invalid:8443', address: null, port: null }, phase: 'dns', why: 'the name did not resolve', attempt: 2, truncated: false, injected: true })
  log.warn({ msg: 'origin failure', edge_status: 520, ray_id: '0123456789abcdef', origin: { url: 'http://[::1]:9', address: '::1', port: 9 }, phase: 'body', why: 'reset', attempt: 1, truncated: true, injected: false })
  log.info({ routes: ['* → http://127.0.0.1:9000'] }, 'config reloaded')
  const lines = text.trimEnd().split('\n')
  t.match(lines[0], /INFO: POST a\.test\/api 504 \(edge 522 connection_timeout\) 2000\.1 ms · ray 0123456789abcdef$/)
  t.match(lines[1], /INFO: GET a\.test\/slow 499 client left 5 ms/)
  t.match(lines[2], /WARN: ✗ 530 dns https:\/\/nx\.invalid:8443 — the name did not resolve \(injected\) · attempt 2 · ray 0123456789abcdef$/)
  t.match(lines[3], /WARN: ✗ 520 body \[::1\]:9 — reset \(truncated\) · attempt 1/)
  t.match(lines[4], /INFO: config reloaded$/)
  t.match(lines[5], /^ {4}routes: \[$/, 'other lines keep their fields')
  t.notMatch(text, ANSI)
})

t.test('log.fields: cloudflare at a terminal: the same one line per request', async t => {
  let text = ''
  const sink = new Writable({ write (chunk: Buffer, _enc, cb) { text += chunk.toString(); cb() } })
  const log = createLogger('info', 'pretty', sink)
  log.info({
    msg: 'access', RayID: '0123456789abcdef', EdgeStartTimestamp: 1796163304358000000n, EdgeEndTimestamp: 1796163304370500000n, EdgeResponseStatus: 521,
    ClientRequestMethod: 'GET', ClientRequestHost: 'a.test', ClientRequestPath: '/x', highproxy: { edge_status: 521, route: 'a', pool: 'a', origin: null }
  })
  t.match(text.trimEnd(), /INFO: GET a\.test\/x 521 web_server_down 12\.5 ms · ray 0123456789abcdef$/)
})
