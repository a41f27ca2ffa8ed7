// Start-up at a terminal is short (what listens where, how many routes, where to look;
// the demo's list to try stays on a 24-row screen), and a SIGHUP that changes what only a
// restart can apply (listen.*) says so in its line instead of "config reloaded".

import { spawn } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import t from 'tap'
import { healthyOrigin } from '../../src/lab/healthy-origin.js'
import { endOfLifeWarning } from '../../src/runtime-check.js'
import { CLI, listening, start } from '../cli-process.js'

t.test('pretty start-up of the demo: one line for the listener, the list to try fits 24 rows', async t => {
  const child = spawn(process.execPath, [CLI, '--port', '0', '--admin-port', '0', '--log-format', 'pretty'], { stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no demo list in 60 s: ${stderr}`)), 60_000)
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString()
      if (/in a browser for the list\n/.test(stderr)) { clearTimeout(timer); resolve() }
    })
  })
  // Both streams reach the same terminal: everything printed until the list is complete.
  const all = stdout.trimEnd().split('\n')
  const rows = all.length + stderr.trimEnd().split('\n').length
  t.ok(rows <= 24, `${rows} rows from start to the end of the list (${all.length} of log)`)
  // On an end-of-life Node (20), one warning line says so first (runtime-check.ts).
  const out = all.filter(l => !/WARN.*end-of-life/.test(l))
  t.equal(all.length - out.length, endOfLifeWarning(process.version) === null ? 0 : 1, 'the end-of-life warning when the runtime is past it')
  t.equal(out.length, 1, `one log line at start: ${stdout}`)
  t.match(out[0], /INFO \(\d+\): highproxy listening on http:\/\/127\.0\.0\.1:\d+ · \d+ routes · admin http:\/\/127\.0\.0\.1:\d+ \(\/healthz \/metrics \/rays\/<ray id>\)/)
  t.notMatch(stdout, /redirect: null|routes: \[/, 'no fields dumped')
  t.match(stderr, /Try:/)
  child.kill('SIGTERM')
  await new Promise(resolve => child.once('exit', resolve))
})

t.test('SIGHUP with a changed listen.*: the reload line names what waits for a restart', async t => {
  const a = await healthyOrigin()
  t.teardown(() => a.close())
  const file = `${t.testdir({})}/config.yaml`
  writeFileSync(file, `listen:\n  host: 127.0.0.1\n  backlog: 511\nroutes:\n  - origin: ${a.url}\n`)
  const p = start(['--config', file])
  t.teardown(() => { p.child.kill('SIGKILL') })
  await p.waitFor(listening, 30_000)

  writeFileSync(file, `listen:\n  host: 127.0.0.1\n  backlog: 511\nroutes:\n  - origin: ${a.url}\n    path: /a\n`)
  p.child.kill('SIGHUP')
  const plain = await p.waitFor(l => String(l.msg).startsWith('config reloaded'), 20_000)
  t.equal(plain.msg, 'config reloaded')
  t.same(plain.restart_needed, [], 'routes only: everything applied')

  writeFileSync(file, `listen:\n  host: 127.0.0.2\n  backlog: 100\nroutes:\n  - origin: ${a.url}\n`)
  p.child.kill('SIGHUP')
  const partial = await p.waitFor(l => String(l.msg).startsWith('config reloaded') && l !== plain, 20_000)
  t.equal(partial.level, 'warn', 'a warning')
  t.same(partial.restart_needed, ['listen.host', 'listen.backlog'])
  t.equal(partial.msg, 'config reloaded, except what needs a restart (not applied): listen.host, listen.backlog')
  t.match(String(p.logs.find(listening)?.listen), /^http:\/\/127\.0\.0\.1:/, 'still listening where it started')
})
