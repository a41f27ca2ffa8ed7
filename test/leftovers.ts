// What a lab leaves on the machine (child processes, routes) and whether it is still
// there: for the tests that prove nothing of the lab outlives its owner.

import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'

/** Processes whose parent is `pid`, from ps. */
export function childrenOf (pid: number): Array<{ pid: number, args: string }> {
  return execFileSync('ps', ['-A', '-o', 'pid=,ppid=,args='], { encoding: 'utf8' }).split('\n')
    .map(l => /^\s*(\d+)\s+(\d+)\s+(.*)$/.exec(l))
    .filter((m): m is RegExpExecArray => m !== null && Number(m[2]) === pid)
    .map(m => ({ pid: Number(m[1]), args: m[3] as string }))
}

/** Whether `pid` is a live process (a zombie counts as gone: it has exited). */
export function alive (pid: number): boolean {
  try {
    process.kill(pid, 0)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false
    throw err
  }
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'))
  } catch {
    return false
  }
}

/** The lab's SYN-dropping child among `pid`'s children (its script listens with backlog 1). */
export const isSynDropChild = (p: { args: string }): boolean => p.args.includes('backlog: 1')

/** The local routing table, where the 523 fault's unreachable route lives ('' without iproute2). */
export function localRoutes (): string {
  try { return execFileSync('ip', ['route', 'show', 'table', 'local'], { encoding: 'utf8' }) } catch { return '' }
}
