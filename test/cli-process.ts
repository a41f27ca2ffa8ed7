// The CLI as a child process on loopback (--port 0 --admin-port 0, JSON logs), its log
// lines parsed as they come: what the process-level tests start.

import { spawn, type ChildProcess } from 'node:child_process'
import { onExit } from 'signal-exit'
import type { LogLine } from './helpers.js'

export const CLI = new URL('../dist/cli.js', import.meta.url).pathname

// The CLIs a test file started die with it. A test's teardown does not run when tap ends
// a file that timed out (SIGALRM, then SIGKILL): its proxies were left running, one of them
// a --workers primary replacing workers that could no longer read their deleted config.
// signal-exit runs this on SIGALRM and every other way out a handler can see.
const started = new Set<ChildProcess>()
onExit(() => { for (const child of started) child.kill('SIGKILL') })

export interface Running {
  child: ChildProcess
  logs: LogLine[]
  /** Resolves with the first log line matching, waiting up to `ms`. */
  waitFor: (m: (l: LogLine) => boolean, ms?: number) => Promise<LogLine>
  exited: Promise<number | null>
}

/** `env`: more environment variables for the process. */
export function start (args: string[], env: Record<string, string> = {}): Running {
  const child = spawn(process.execPath, [CLI, '--port', '0', '--admin-port', '0', '--log-format', 'json', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } })
  const logs: LogLine[] = []
  const waiters: Array<[(l: LogLine) => boolean, (l: LogLine) => void]> = []
  let buffer = ''
  child.stdout?.on('data', (d: Buffer) => {
    buffer += d.toString()
    let nl
    while ((nl = buffer.indexOf('\n')) !== -1) {
      const line = buffer.slice(0, nl)
      buffer = buffer.slice(nl + 1)
      if (!line.startsWith('{')) continue
      const parsed = JSON.parse(line) as LogLine
      logs.push(parsed)
      for (const w of [...waiters]) if (w[0](parsed)) { waiters.splice(waiters.indexOf(w), 1); w[1](parsed) }
    }
  })
  started.add(child)
  const exited = new Promise<number | null>(resolve => child.once('exit', code => { started.delete(child); resolve(code) }))
  const waitFor = (m: (l: LogLine) => boolean, ms = 8000): Promise<LogLine> => {
    const found = logs.find(m)
    if (found !== undefined) return Promise.resolve(found)
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('log line not seen')), ms)
      waiters.push([m, l => { clearTimeout(timer); resolve(l) }])
    })
  }
  return { child, logs, waitFor, exited }
}

export const listening = (l: LogLine): boolean => l.msg === 'highproxy listening'

/** A --workers run: the primary's line (with the admin URL) and every worker's listening line. */
export async function startWorkers (args: string[], count: number): Promise<Running & { admin: string, listen: string, pids: number[] }> {
  const p = start([...args, '--workers', String(count)])
  const primary = await p.waitFor(l => l.msg === 'highproxy primary started')
  const seen = new Set<number>()
  await p.waitFor(l => { if (listening(l)) seen.add(Number(l.pid)); return seen.size === count }, 15_000)
  const first = p.logs.find(listening) as LogLine
  return { ...p, admin: String(primary.admin), listen: String(first.listen), pids: [...seen] }
}
