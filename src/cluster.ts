// `--workers N`: N processes serving one port (node:cluster). The primary forks,
// restarts a worker that crashed, passes signals on, and holds the admin listener: one
// view over every worker (admin/cluster-view.ts), since a scrape that reached whichever
// worker took the connection would see only that worker's counters and rays.

import cluster, { type Worker } from 'node:cluster'
import type { Logger } from 'pino'
import type { AdminConfig } from './config/schema.js'
import { clusterView } from './admin/cluster-view.js'
import { onWorkerState } from './admin/ipc.js'
import { startAdmin, type AdminServer } from './admin/server.js'
import type { Hangup } from './lifecycle.js'
import { withNodeFlags } from './node-flags.js'

/** A worker that dies sooner than this after its start waits before it is replaced. */
const CRASH_LOOP_MS = 1000
/**
 * Workers that died in a row before they ever listened: past this the primary gives up and
 * exits 1. Such a worker cannot start (its config file was deleted or broken since, its port
 * taken…), and replacing it every second forever is a process spinning where its
 * supervisor (systemd, Kubernetes, a terminal) should be told (systemd's StartLimitBurst).
 */
const STILLBORN_LIMIT = 5

interface Running { started: number, listening: boolean }

/** Starts the admin listener (throws when it cannot listen), then the workers. */
export async function runPrimary (count: number, logger: Logger, adminConfig: AdminConfig, hangup: Hangup): Promise<void> {
  let stopping = false
  let restarts = 0
  let stillborn = 0
  let exitCode = 0
  const workers = new Map<Worker, Running>()
  const fork = (): void => {
    // A replacement due after a stop signal is not started.
    if (!stopping) workers.set(cluster.fork(), { started: Date.now(), listening: false })
  }

  onWorkerState((worker, state) => {
    const running = workers.get(worker)
    if (running !== undefined) running.listening = state === 'listening'
    if (state === 'listening') stillborn = 0
  })

  let admin: AdminServer | null = null
  if (adminConfig.enabled) {
    const view = clusterView({
      expected: count,
      stopping: () => stopping,
      running: () => [...workers].map(([worker, r]) => ({ worker, listening: r.listening })),
      restarts: () => restarts
    }, logger)
    admin = await startAdmin({ host: adminConfig.host, port: adminConfig.port, view, logger })
  }

  cluster.on('exit', (worker, code, signal) => {
    const running = workers.get(worker)
    const lived = Date.now() - (running?.started ?? 0)
    workers.delete(worker)
    if (stopping) {
      if (workers.size === 0) void allStopped()
      return
    }
    if (running?.listening !== true && ++stillborn >= STILLBORN_LIMIT) {
      logger.fatal({ pid: worker.process.pid, code, signal, in_a_row: stillborn },
        'workers keep dying before they listen: stopping (see the first worker error above)')
      giveUp()
      return
    }
    restarts++
    logger.error({ pid: worker.process.pid, code, signal, lived_ms: lived }, 'worker died, starting another')
    setTimeout(fork, lived < CRASH_LOOP_MS ? CRASH_LOOP_MS : 0)
  })

  // The admin listener stays up while the workers drain: /readyz says "draining" meanwhile.
  const allStopped = async (): Promise<void> => {
    await admin?.close()
    logger.info('all workers stopped')
    logger.flush()
    process.exit(exitCode)
  }

  // Stops the others and exits 1 once every worker is gone, so that a supervisor sees it.
  const giveUp = (): void => {
    stopping = true
    exitCode = 1
    for (const w of workers.keys()) w.process.kill('SIGTERM')
    if (workers.size === 0) void allStopped()
  }

  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) {
      // A second signal: no more waiting for in-flight requests.
      for (const w of workers.keys()) w.process.kill('SIGKILL')
      process.exit(1)
    }
    stopping = true
    logger.info({ signal }, 'stopping workers')
    for (const w of workers.keys()) w.process.kill(signal)
    if (workers.size === 0) void allStopped()
  }
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
  // A reload is each worker's; a hang-up with nothing to reload stops them all (a worker
  // that stopped on its own would be replaced).
  process.on('SIGHUP', () => {
    if (hangup === 'stop') stop('SIGHUP')
    else for (const w of workers.keys()) w.process.kill('SIGHUP')
  })

  // Workers serve the traffic: they run with the V8 flags the launchers give a single process.
  cluster.setupPrimary({ execArgv: withNodeFlags(process.execArgv, process.env.NODE_OPTIONS) })
  for (let i = 0; i < count; i++) fork()
  logger.info({ workers: count, pid: process.pid, admin: admin?.url ?? null }, 'highproxy primary started')
}
