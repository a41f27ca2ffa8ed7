// `highproxy lab --json`: one real faulty origin per edge status on loopback, listed as
// JSON on the first stdout line, up until SIGTERM.

import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import net from 'node:net'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { request } from 'undici'
import { client } from '../helpers.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const CLI = join(ROOT, 'dist', 'cli.js')

interface Row { key: string, status: number, url: string, description: string, available: boolean, reason?: string }

const isLoopback = (hostname: string): boolean =>
  hostname === '[::1]' || (net.isIPv4(hostname) && hostname.startsWith('127.'))

function exited (child: ChildProcess): Promise<{ code: number | null, signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode })
  return new Promise(resolve => child.once('exit', (code, signal) => resolve({ code, signal })))
}

function within<T> (p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms) })
  ])
}

t.test('highproxy lab --json lists every fault on loopback and stops on SIGTERM', async t => {
  t.ok(existsSync(CLI), 'dist/cli.js exists (run `npm run build` first)')
  if (!existsSync(CLI)) return

  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('HIGHPROXY_')))
  const child = spawn(process.execPath, [CLI, 'lab', '--json'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] })
  let stderr = ''
  child.stderr?.on('data', (c: Buffer) => { stderr += c.toString() })
  // Whatever happens below, the lab does not outlive the test (SIGTERM lets it remove its
  // 523 route and kill its 522 child; SIGKILL only if it does not go).
  t.teardown(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return
    child.kill('SIGTERM')
    const gone = await Promise.race([exited(child), new Promise(resolve => setTimeout(resolve, 6000, null))])
    if (gone === null) { child.kill('SIGKILL'); await exited(child) }
  })

  const lines = createInterface({ input: child.stdout! })
  const first = await within(new Promise<string>((resolve, reject) => {
    lines.once('line', resolve)
    child.once('exit', code => reject(new Error(`lab exited (${code}) before printing: ${stderr}`)))
  }), 10_000, 'first line of `lab --json`')
  lines.close()
  const rows = JSON.parse(first) as Row[]
  t.ok(Array.isArray(rows), 'a JSON array')

  for (const status of [200, 520, 521, 522, 523, 524, 525, 526, 530]) {
    const mine = rows.filter(r => r.status === status)
    t.ok(mine.length > 0, `status ${status} is in the lab`)
    for (const row of mine) {
      t.type(row.description, 'string')
      t.ok(row.description.length > 0, `${row.key} is described`)
      if (!row.available) {
        t.type(row.reason, 'string', `${row.key} is unavailable and says why: ${row.reason ?? ''}`)
        t.ok((row.reason ?? '').length > 0)
        continue
      }
      const url = new URL(row.url)
      if (status === 530) {
        t.match(url.hostname, /\.invalid$/, `${row.key}: a name that cannot resolve (${row.url})`)
      } else {
        t.ok(isLoopback(url.hostname), `${row.key}: ${row.url} is on loopback`)
      }
    }
  }
  t.same(rows.filter(r => r.status === 520).map(r => r.key).sort(),
    ['520-empty', '520-garbage', '520-headers', '520-reset'], 'every 520 cause has its own origin')
  t.equal(rows.find(r => r.status === 525)?.url.startsWith('https://'), true, '525 is dialled as https')
  t.equal(rows.find(r => r.status === 526)?.url.startsWith('https://'), true, '526 is dialled as https')
  t.equal(new Set(rows.map(r => r.key)).size, rows.length, 'keys are unique')

  // Dial two of them for real.
  const healthy = rows.find(r => r.key === 'healthy')
  const res = await request(`${healthy?.url ?? ''}/`, { dispatcher: client, signal: AbortSignal.timeout(3000) })
  t.equal(res.statusCode, 200)
  t.match(await res.body.text(), /Hello from the highproxy demo origin/)

  const refused = new URL(rows.find(r => r.status === 521)?.url ?? '')
  const code = await new Promise<string>(resolve => {
    const socket = net.connect({ host: refused.hostname, port: Number(refused.port) })
    socket.setTimeout(2000, () => { socket.destroy(); resolve('TIMEOUT') })
    socket.once('connect', () => { socket.destroy(); resolve('CONNECTED') })
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'ERROR'))
  })
  t.equal(code, 'ECONNREFUSED', 'the 521 port refuses at once')

  // SIGTERM: the lab closes every origin and exits by itself, cleanly.
  t.ok(child.kill('SIGTERM'))
  const end = await within(exited(child), 6000, 'exit after SIGTERM')
  t.same(end, { code: 0, signal: null }, `exited with 0 after SIGTERM (stderr: ${stderr.trim()})`)
  const after = await new Promise<string>(resolve => {
    const socket = net.connect({ host: new URL(healthy?.url ?? '').hostname, port: Number(new URL(healthy?.url ?? '').port) })
    socket.once('connect', () => { socket.destroy(); resolve('CONNECTED') })
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'ERROR'))
  })
  t.equal(after, 'ECONNREFUSED', 'the healthy origin is gone with it')
})

t.test('highproxy lab (the table): each URL stands apart from its description, the 530 one too', async t => {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('HIGHPROXY_')))
  const child = spawn(process.execPath, [CLI, 'lab'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return
    child.kill('SIGTERM')
    const gone = await Promise.race([exited(child), new Promise(resolve => setTimeout(resolve, 6000, null))])
    if (gone === null) { child.kill('SIGKILL'); await exited(child) }
  })
  let out = ''
  await within(new Promise<void>(resolve => {
    child.stdout?.on('data', (c: Buffer) => { out += c.toString(); if (/keepalive-cut .*\n/.test(out)) resolve() })
  }), 15_000, 'the table of `lab`')
  const rows = out.split('\n').filter(l => /^\d{3} /.test(l))
  t.ok(rows.length >= 17, `${rows.length} rows`)
  const header = out.split('\n').find(l => l.startsWith('status'))
  const urlColumn = header?.indexOf('url') ?? -1
  const faultColumn = header?.indexOf('the fault') ?? -1
  for (const row of rows) {
    t.match(row, /^\d{3} +\S+ {2,}(https?:\/\/\S+) {2,}\S/, row)
    t.equal(row.indexOf('http'), urlColumn, `the URL in its column: ${row}`)
    t.ok(row.slice(faultColumn - 2, faultColumn) === '  ' && row[faultColumn] !== ' ', `the fault in its column, two spaces after the URL at least: ${row}`)
  }
  const dns = rows.find(r => r.includes('.invalid'))
  t.match(dns, /\.invalid {2,}host name under \.invalid/, 'the 530 URL and its description apart')
})
