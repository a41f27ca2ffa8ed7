// `--workers N`: N processes serving one port (node:cluster). The primary only forks,
// restarts a worker that crashed, and passes signals on; each worker is a full proxy.

import cluster, { type Worker } from 'node:cluster'
import type { Logger } from 'pino'

/** A worker that dies sooner than this after its start waits before it is replaced. */
const CRASH_LOOP_MS = 1000

export function runPrimary (count: number, logger: Logger): void {
  let stopping = false
  const started = new Map<Worker, number>()
  const fork = (): void => { started.set(cluster.fork(), Date.now()) }

  cluster.on('exit', (worker, code, signal) => {
    const lived = Date.now() - (started.get(worker) ?? 0)
    started.delete(worker)
    if (stopping) {
      if (started.size === 0) {
        logger.info('all workers stopped')
        logger.flush()
        process.exit(0)
      }
      return
    }
    logger.error({ pid: worker.process.pid, code, signal, lived_ms: lived }, 'worker died, starting another')
    setTimeout(fork, lived < CRASH_LOOP_MS ? CRASH_LOOP_MS : 0)
  })

  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) {
      // A second signal: no more waiting for in-flight requests.
      for (const w of started.keys()) w.process.kill('SIGKILL')
      process.exit(1)
    }
    stopping = true
    logger.info({ signal }, 'stopping workers')
    for (const w of started.keys()) w.process.kill(signal)
  }
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
  process.on('SIGHUP', () => { for (const w of started.keys()) w.process.kill('SIGHUP') })

  for (let i = 0; i < count; i++) fork()
  logger.info({ workers: count, pid: process.pid }, 'highproxy primary started')
}
