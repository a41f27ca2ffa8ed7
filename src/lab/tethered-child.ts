// A helper process that cannot outlive us. Its stdin is a pipe whose only writer is this
// process; the kernel closes it when we exit or die by any means, SIGKILL included, and
// the child takes that end-of-file as its cue to clean up and go. Node has no
// prctl(PR_SET_PDEATHSIG), and polling process.ppid missed a parent that died before the
// child first read it.

import { spawn, type ChildProcess } from 'node:child_process'

export interface TetheredChild {
  /** The child's first line on stdout: it is ready. */
  line: string
  pid: number
  /** Ends its stdin, as our death would, and waits until it has cleaned up and exited. */
  stop: () => Promise<void>
}

const exited = (child: ChildProcess): Promise<void> =>
  child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve()
    : new Promise(resolve => child.once('exit', () => resolve()))

/**
 * Starts `command` and waits for its first line; rejects with its stderr if it exits first.
 * Detached, so that a Ctrl-C sent to our process group cannot kill it before its cleanup.
 * NODE_OPTIONS is dropped: a test runner's preloads there (tap's) have nothing to do in
 * these helpers and only slow their start.
 */
export function startTethered (command: string, args: readonly string[]): Promise<TetheredChild> {
  const env = { ...process.env }
  delete env.NODE_OPTIONS
  const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'], detached: true, env })
  let stopping: Promise<void> | null = null
  const stop = (): Promise<void> => {
    if (stopping === null) {
      child.stdin?.end()
      stopping = exited(child)
    }
    return stopping
  }
  return new Promise((resolve, reject) => {
    let out = ''
    let err = ''
    child.stdin?.on('error', () => {}) // EPIPE once the child is gone: nothing left to tell it
    child.stderr?.on('data', (chunk: Buffer) => { err += chunk.toString() })
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString()
      const end = out.indexOf('\n')
      if (end >= 0) resolve({ line: out.slice(0, end), pid: child.pid as number, stop })
    })
    child.once('error', reject)
    // 'close', not 'exit': by then all of its stderr has been read.
    child.once('close', code => reject(Object.assign(new Error(err.trim() || `exited with ${String(code)}`), { exitCode: code })))
  })
}
