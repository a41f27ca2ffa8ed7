// Child processes of the harness: started on loopback ports, waited for, and always
// ended (in `finally`, on SIGINT/SIGTERM, and on exit as a last resort).

import { spawn } from 'node:child_process'
import http from 'node:http'
import https from 'node:https'
import net from 'node:net'
import { readFileSync } from 'node:fs'
import os from 'node:os'
import { setTimeout as sleep } from 'node:timers/promises'
import { TICK_US, processTree, treeCpuUs } from './cpu.mjs'

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
 * or 'pipe'); stderr is kept (last 8 KiB) to explain a crash. `listed: false` leaves
 * short-lived helpers (each wrk run) out of startedPids.
 */
export function start (name, command, args, { stdout = 'ignore', env, raiseFdLimit = false, listed = true } = {}) {
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
  if (listed) startedPids.push(child.pid)
  proc.exited.then(() => children.delete(proc))
  return proc
}

/** SIGTERM, then SIGKILL if it has not exited within `ms`. */
export async function stop (proc, ms = 3000) {
  if (!proc.running) { await proc.exited; return }
  proc.child.kill('SIGTERM')
  const timer = setTimeout(() => { if (proc.running) proc.child.kill('SIGKILL') }, ms)
  await proc.exited
  clearTimeout(timer)
}

export async function stopAll () {
  await Promise.all([...children].map(p => stop(p, 2000)))
}

/** SIGKILL every child with its descendants: nginx's workers outlive a killed master. */
function killAllNow () {
  for (const p of children) {
    if (!p.running) continue
    for (const { pid } of processTree(p.pid).reverse()) {
      try { process.kill(pid, 'SIGKILL') } catch {}
    }
  }
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

/** The line of a child's stderr that says why it stopped (an ALERT, an error), for a one-line note. */
export function reasonOf (stderr) {
  const lines = stderr.split('\n').map(l => l.trim()).filter(Boolean)
  return lines.find(l => /alert|emerg|error|cannot|fatal/i.test(l)) ?? lines[lines.length - 1] ?? 'no output'
}

/**
 * Waits until `port` answers HTTP (any status), or throws with the child's stderr: its
 * reason on the first line (the notes show only that), the whole tail below it.
 */
export async function waitHttp (proc, port, path = '/', deadlineMs = 15_000) {
  const until = Date.now() + deadlineMs
  for (;;) {
    if (!proc.running) throw new Error(`${proc.name} exited before listening: ${reasonOf(proc.stderr)}\n${proc.stderr}`)
    try {
      return await get(port, path, {}, 2000)
    } catch (err) {
      if (Date.now() > until) throw new Error(`${proc.name} not answering on ${HOST}:${port}: ${err.message}\n${proc.stderr}`)
      await sleep(50)
    }
  }
}

/** One GET over TLS, any certificate accepted; resolves the status. */
function httpsStatus (port) {
  return new Promise((resolve, reject) => {
    const req = https.get({ host: HOST, port, path: '/', rejectUnauthorized: false, agent: false, timeout: 2000 }, res => {
      res.resume()
      res.on('end', () => resolve(res.statusCode))
    })
    req.on('timeout', () => req.destroy(new Error('timeout')))
    req.on('error', reject)
  })
}

/** waitHttp for a TLS listener. */
export async function waitHttps (proc, port, deadlineMs = 15_000) {
  const until = Date.now() + deadlineMs
  for (;;) {
    if (!proc.running) throw new Error(`${proc.name} exited before listening: ${reasonOf(proc.stderr)}\n${proc.stderr}`)
    try {
      return await httpsStatus(port)
    } catch (err) {
      if (Date.now() > until) throw new Error(`${proc.name} not answering TLS on ${HOST}:${port}: ${err.message}\n${proc.stderr}`)
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

/**
 * Machine-wide CPU ticks from /proc/stat: busy (user … softirq), steal (time the
 * hypervisor ran other machines on our vCPUs: a shared host's noise that no process
 * here shows), and the total. guest/guest_nice are already inside user/nice.
 */
function cpuTicks () {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1, 9).map(Number)
  const [user, nice, system, idle, iowait = 0, irq = 0, softirq = 0, steal = 0] = f
  return { busy: user + nice + system + irq + softirq, steal, total: user + nice + system + idle + iowait + irq + softirq + steal }
}

/**
 * Measures how busy the machine was with other work while the harness ran: all busy CPU
 * time (from /proc/stat) minus the harness's own tree's, and the hypervisor's steal. The
 * tree counts this process, its live descendants, and (as cutime/cstime) every child
 * that already exited and was reaped.
 */
export function noiseMeter () {
  const a = cpuTicks()
  const oursA = treeCpuUs(process.pid)
  return () => {
    const b = cpuTicks()
    const ours = (treeCpuUs(process.pid) - oursA) / TICK_US
    const cores = os.cpus().length
    const elapsed = (b.total - a.total) / cores // ticks of wall time
    return { othersCores: Math.max(0, (b.busy - a.busy - ours) / elapsed), oursCores: ours / elapsed, stealCores: (b.steal - a.steal) / elapsed }
  }
}

/** The machine's idle share (idle or waiting on I/O), in percent, from now until the returned function is called. */
export function idleMeter () {
  const a = cpuTicks()
  return () => {
    const b = cpuTicks()
    const total = b.total - a.total
    return total > 0 ? 100 * (total - (b.busy - a.busy) - (b.steal - a.steal)) / total : NaN
  }
}

/** How many cores other processes keep busy, and how many the hypervisor steals, while the harness is idle for `ms`. */
export async function busyCores (ms = 1000, cores = 1) {
  try {
    const a = cpuTicks()
    await sleep(ms)
    const b = cpuTicks()
    const total = b.total - a.total
    return { busy: ((b.busy - a.busy) / total) * cores, steal: ((b.steal - a.steal) / total) * cores }
  } catch {
    return null
  }
}
