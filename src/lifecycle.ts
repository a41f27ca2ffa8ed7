// How a highproxy process stops, and what the signals it gets mean:
//   SIGTERM, SIGINT   drain: no new connections, in-flight requests finish within the grace;
//                     a second one exits at once (close-with-grace)
//   SIGHUP            with a config file: reload it; with TLS certificate files (from flags
//                     too), read them again. With nothing to reload (the demo, or plain
//                     flags) it is what its name says, a hang-up: the terminal that
//                     started the process is gone, so it stops like SIGTERM.
// Fault signals (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGTRAP) keep their default
// action. close-with-grace listens to them too; a JavaScript listener on a fault signal
// makes libuv's handler catch the fault and return to the instruction that faulted, which
// faults again — and once libuv's signal pipe is closed at exit, the handler's read(-1)
// fails at once: the endless SIGSEGV loop at ~90% CPU seen after a terminal was closed.
// A dead terminal or a closed pipe on stdout/stderr (EIO, EPIPE) is never a reason to
// crash, spin or wedge: output is dropped from then on.

import closeWithGrace from 'close-with-grace'
import type { Logger } from 'pino'

export const FAULT_SIGNALS = ['SIGSEGV', 'SIGBUS', 'SIGFPE', 'SIGILL', 'SIGABRT', 'SIGTRAP'] as const

export type Hangup = 'reload' | 'stop'

/** SIGHUP reloads only when there is a config file, or certificate files, to read again. */
export const hangupMeans = (configFile: string | undefined, certificateFiles = false): Hangup =>
  (configFile === undefined || configFile === '') && !certificateFiles ? 'stop' : 'reload'

export interface ShutdownOptions {
  graceMs: number
  logger: Logger
  hangup: Hangup
  /** SIGHUP with a config file. */
  reload: () => void
}

/** Installs the stop signals; `drain` closes everything (it runs once). */
export function onShutdown (opts: ShutdownOptions, drain: (why: { signal?: string, err?: unknown }) => Promise<void>): void {
  const skip: Array<typeof FAULT_SIGNALS[number] | 'SIGHUP'> = [...FAULT_SIGNALS]
  if (opts.hangup === 'reload') {
    skip.push('SIGHUP')
    process.on('SIGHUP', opts.reload)
  }
  closeWithGrace({ delay: opts.graceMs, skip, logger: { error: (m: string) => opts.logger.error(m) } }, drain)
}

const noop = (): void => {}

/** Output to a terminal or pipe that is gone is dropped, not thrown. */
export function tolerateLostOutput (): void {
  process.stdout.on('error', noop)
  process.stderr.on('error', noop)
}
