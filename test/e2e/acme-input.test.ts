// ACME input the edge cannot use: configuration mistakes (one line naming the key, exit
// 2, before anything listens), and a directory nobody answers at (not a mistake: a warn
// line per try and retries, never a crash). No CA needed.

import { spawn } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { DOMAIN, msg, startOrigin } from '../acme-setup.js'
import { CLI, start } from '../cli-process.js'
import { get, type LogLine } from '../helpers.js'
import { freePort } from '../pebble.js'

const originUrl = await startOrigin(t)

t.test('bad input: one line naming the key, exit 2', async t => {
  const dir = t.testdir({ 'a-file': 'x' })
  const run = (args: string[]): Promise<{ code: number | null, stderr: string }> => new Promise(resolve => {
    const child = spawn(process.execPath, [CLI, '--origin', originUrl, '--port', '0', '--admin-port', '0', ...args], { stdio: ['ignore', 'ignore', 'pipe'] })
    let stderr = ''
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
    child.once('exit', code => resolve({ code, stderr }))
  })
  const storage = ['--acme-storage', join(dir, 'store')]
  const cases: Array<[string, string[], RegExp]> = [
    ['an invalid domain', ['--acme-domain', 'bad_name.example', ...storage], /listen\.tls\.acme\.domains\.0.*bad_name\.example/],
    ['a wildcard', ['--acme-domain', '*.example.com', ...storage], /listen\.tls\.acme\.domains\.0.*dns-01/],
    ['an email without @', ['--acme-domain', 'example.com', '--acme-email', 'ops.example.com', ...storage], /listen\.tls\.acme\.email.*@/],
    ['an email without domains', ['--acme-email', 'ops@example.com', ...storage], /listen\.tls\.acme/],
    ['storage that is not writable', ['--acme-domain', 'example.com', '--acme-storage', join(dir, 'a-file', 'acme')], /listen\.tls\.acme\.storage.*ENOTDIR/],
    ['a directory that is not https', ['--acme-domain', 'example.com', '--acme-directory', 'http://127.0.0.1:1/dir', ...storage], /listen\.tls\.acme\.directory/],
    ['http-01 without the plain-HTTP listener', ['--config', join(dir, 'http01.yaml')], /listen\.tls\.acme\.challenges.*redirect/]
  ]
  writeFileSync(join(dir, 'http01.yaml'), JSON.stringify({ listen: { tls: { acme: { domains: ['example.com'], challenges: ['http-01'], storage: join(dir, 'store') } } } }))
  const results = await Promise.all(cases.map(([, args]) => run(args)))
  for (const [i, [name, , expected]] of cases.entries()) {
    const r = results[i] as { code: number | null, stderr: string }
    t.equal(r.code, 2, `${name}: exit 2`)
    t.equal(r.stderr.trim().split('\n').length, 1, `${name}: one line (${r.stderr.trim()})`)
    t.match(r.stderr, expected, name)
  }
})

t.test('a directory that does not answer: a warn line per try and retries, never a crash', async t => {
  const dir = t.testdir({})
  const dead = await freePort()
  mkdirSync(join(dir, 'store'))
  const p = start(['--origin', originUrl, '--acme-domain', DOMAIN, '--acme-directory', `https://127.0.0.1:${dead}/dir`, '--acme-storage', join(dir, 'store'),
    '--config', writeConfig(dir)])
  t.teardown(async () => { if (p.child.exitCode === null) { p.child.kill('SIGTERM'); await p.exited } })
  const first = await p.waitFor(l => l.msg === 'acme: order failed' && l.acme.failures === 1, 30_000)
  t.equal(first.error.cause, 'ECONNREFUSED')
  t.equal(first.problem, null)
  await p.waitFor(l => l.msg === 'acme: order failed' && l.acme.failures === 2, 30_000)
  t.equal(p.child.exitCode, null, 'still running')
  const ok = await get(`http://127.0.0.1:${String((p.logs.find(msg('highproxy listening'), 30_000) as LogLine).redirect).split(':').pop() ?? ''}/x`)
  t.equal(ok.status, 308, 'plain HTTP keeps working')
})

/** retry.first of 1s (no flag for it) and a plain-HTTP listener on a port of its own. */
function writeConfig (dir: string): string {
  const file = join(dir, 'retry.yaml')
  writeFileSync(file, JSON.stringify({ listen: { tls: { redirect: { port: 0 }, acme: { domains: [DOMAIN], retry: { first: '1s' } } } } }))
  return file
}
