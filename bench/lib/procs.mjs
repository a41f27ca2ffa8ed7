// Child processes of the harness: started on loopback ports, waited for, and always
// ended (in `finally`, on SIGINT/SIGTERM, and on exit as a last resort).

import { spawn } from 'node:child_process'
import http from 'node:http'
import net from 'node:net'
import { readFileSync } from 'node:fs'
import os from 'node:os'
import { setTimeout as sleep } from 'node:timers/promises'

export const HOST = '127.0.0.1'

const children = new Set()
/** Every pid the harness started, for the record (and the smoke test's leak check). */
export const startedPids = []

/** A free loopback port (bound and released; the child binds it right after). */
export function freePort () {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once('error', reject)
    server.listen({ host: HOST, port: 0 }, () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
  })
}

/**
 * Start a child. stdout goes to /dev/null unless `stdout` is given (a file descriptor
 * or 'pipe'); stderr is kept (last 8 KiB) to explain a crash.
 */
export function start (name, command, args, { stdout = 'ignore', env, raiseFdLimit = false } = {}) {
  let file = command
  let argv = args
  if (raiseFdLimit) {
    // Raise the soft fd limit to the hard one, then become the command (same pid).
    file = '/bin/sh'
    argv = ['-c', 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$0" "$@"', command, ...args]
  }
  const child = spawn(file, argv, { stdio: ['ignore', stdout, 'pipe'], env: { ...process.env, ...env } })
  let stderr = ''
  child.stderr.on('data', chunk => { stderr = (stderr + chunk.toString()).slice(-8192) })
  const proc = {
    name,
    child,
    pid: child.pid,
    get stderr () { return stderr },
    exited: new Promise(resolve => child.once('exit', (code, signal) => resolve({ code, signal }))),
    get running () { return child.exitCode === null && child.signalCode === null },
    stop: (ms = 3000) => stop(proc, ms)
  }
  children.add(proc)
  startedPids.push(child.pid)
  proc.exited.then(() => children.delete(proc))
  return proc
}

/** CPU time (clock ticks) of the processes the harness ended, for the machine-noise estimate. */
let childTicks = 0

/** utime + stime of a live process, in clock ticks (0 if it is gone). */
export function cpuTicksOf (pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return Number(fields[11]) + Number(fields[12])
  } catch {
    return 0
  }
}

/** Count a child's CPU time before it goes (call while it is still alive). */
export function accountChild (pid) { childTicks += cpuTicksOf(pid) }

/** SIGTERM, then SIGKILL if it has not exited within `ms`. */
export async function stop (proc, ms = 3000) {
  if (!proc.running) { await proc.exited; return }
  accountChild(proc.pid)
  proc.child.kill('SIGTERM')
  const timer = setTimeout(() => { if (proc.running) proc.child.kill('SIGKILL') }, ms)
  await proc.exited
  clearTimeout(timer)
}

export async function stopAll () {
  await Promise.all([...children].map(p => stop(p, 2000)))
}

function killAllNow () {
  for (const p of children) if (p.running) p.child.kill('SIGKILL')
}

process.once('exit', killAllNow)
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.once(signal, () => {
    process.stderr.write(`\nbench: ${signal}, stopping ${children.size} child process(es)\n`)
    killAllNow()
    process.exit(130)
  })
}

/** One GET on loopback; resolves { status, body, ms }. */
export function get (port, path = '/', headers = {}, timeoutMs = 5000) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now()
    // A keep-alive client (as the load generator is), so the answer's Connection header is the server's choice.
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
    const req = http.get({ host: HOST, port, path, headers, agent, timeout: timeoutMs }, res => {
      const chunks = []
      res.on('data', c => chunks.push(c))
      res.on('end', () => {
        agent.destroy()
        resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString(), ms: performance.now() - t0 })
      })
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error(`GET ${path} timed out after ${timeoutMs} ms`)))
    req.on('error', err => { agent.destroy(); reject(err) })
  })
}

/** Waits until `port` answers HTTP (any status), or throws with the child's stderr. */
export async function waitHttp (proc, port, path = '/', deadlineMs = 15_000) {
  const until = Date.now() + deadlineMs
  for (;;) {
    if (!proc.running) throw new Error(`${proc.name} exited before listening:\n${proc.stderr}`)
    try {
      return await get(port, path, {}, 2000)
    } catch (err) {
      if (Date.now() > until) throw new Error(`${proc.name} not answering on ${HOST}:${port}: ${err.message}\n${proc.stderr}`)
      await sleep(50)
    }
  }
}

/** Resident set size of a process in bytes (VmRSS), or null when it is gone. */
export function rssBytes (pid) {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m === null ? null : Number(m[1]) * 1024
  } catch {
    return null
  }
}

function cpuTicks () {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number)
  const idle = f[3] + (f[4] ?? 0)
  return { busy: f.reduce((a, b) => a + b, 0) - idle, total: f.reduce((a, b) => a + b, 0) }
}

/**
 * Measures how busy the machine was with other work while the harness ran:
 * all CPU time (from /proc/stat) minus this process's and its children's.
 */
export function noiseMeter () {
  const a = cpuTicks()
  const selfA = process.cpuUsage()
  const childA = childTicks
  const liveA = [...children].reduce((n, p) => n + cpuTicksOf(p.pid), 0)
  return () => {
    const b = cpuTicks()
    const self = process.cpuUsage(selfA)
    const ours = (self.user + self.system) / 10_000 + (childTicks - childA) + [...children].reduce((n, p) => n + cpuTicksOf(p.pid), 0) - liveA
    const cores = os.cpus().length
    const elapsed = (b.total - a.total) / cores // ticks of wall time
    return { othersCores: Math.max(0, (b.busy - a.busy - ours) / elapsed), oursCores: ours / elapsed }
  }
}

/** How many cores other processes keep busy while the harness is idle for `ms`. */
export async function busyCores (ms = 1000, cores = 1) {
  try {
    const a = cpuTicks()
    await sleep(ms)
    const b = cpuTicks()
    return ((b.busy - a.busy) / (b.total - a.total)) * cores
  } catch {
    return null
  }
}
