// CPU time of a process tree, from /proc. req/s between two Node proxies flips from run
// to run on a shared 2-core machine; the CPU a proxy's own processes spend per request
// does not, so that is what the bench compares.
//
// A target is its whole process tree: nginx's master and workers, highproxy's cluster
// primary and its `--workers` children. utime + stime of each live process, plus
// cutime + cstime (children that already exited and were reaped count there), in clock
// ticks of /proc/<pid>/stat.

import { execFileSync } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'

/** Clock ticks per second of /proc/<pid>/stat (USER_HZ, nearly always 100). */
export const CLK_TCK = (() => {
  try { return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100 } catch { return 100 }
})()
const US_PER_TICK = 1e6 / CLK_TCK

/** { ppid, ticks } of one process, or null when it is gone. */
function statOf (pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // The command name may hold spaces and parentheses: the fields start after the last ')'.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return { ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]) }
  } catch {
    return null
  }
}

/** Every live process on the machine by parent pid (one pass over /proc). */
function childrenByParent () {
  const byParent = new Map()
  for (const name of readdirSync('/proc')) {
    if (name.charCodeAt(0) < 48 || name.charCodeAt(0) > 57) continue
    const s = statOf(name)
    if (s === null) continue
    const list = byParent.get(s.ppid) ?? []
    list.push({ pid: Number(name), ticks: s.ticks })
    byParent.set(s.ppid, list)
  }
  return byParent
}

/** pid and its live descendants: [{ pid, ticks }]. */
export function processTree (pid) {
  const root = statOf(pid)
  if (root === null) return []
  const byParent = childrenByParent()
  const out = [{ pid, ticks: root.ticks }]
  for (let i = 0; i < out.length; i++) for (const c of byParent.get(out[i].pid) ?? []) out.push(c)
  return out
}

/** CPU µs spent so far by pid's whole tree (0 when it is gone). */
export function treeCpuUs (pid) {
  return processTree(pid).reduce((n, p) => n + p.ticks, 0) * US_PER_TICK
}

/**
 * Starts a measurement over the trees of `pids`; the function it returns gives the CPU µs
 * each spent since, as an array in the same order.
 */
export function cpuWindow (pids) {
  const before = pids.map(treeCpuUs)
  return () => pids.map((pid, i) => treeCpuUs(pid) - before[i])
}

/** The CPU resolution, for the notes: one clock tick in µs. */
export const TICK_US = US_PER_TICK
