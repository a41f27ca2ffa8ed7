// `highproxy toxiproxy [--host 127.0.0.1] [--port 8474]`: Toxiproxy's API until Ctrl-C.
//
// The API and its proxies run in a process of their own (main.ts), not in the CLI's: every
// chunk a proxy reads is a fresh buffer, and the collections they cause walk the whole
// heap, which in the CLI's process holds fastify, undici, pino and the rest. Measured (bench
// section 7): 2–4× the CPU per MiB piped in the CLI's process, level with a bare net + pipe
// in its own. This process only passes signals on and leaves with the child's exit code.

import { spawn } from 'node:child_process'

/** A bad flag is one line on stderr and exit 2; the child says why it could not listen (exit 1). */
export function runToxiproxy (flags: { host?: string, port?: string }, fail: (message: string, code: number) => never): void {
  const host = flags.host ?? '127.0.0.1'
  const portText = flags.port ?? '8474'
  const port = Number(portText)
  if (!/^\d+$/.test(portText) || port > 65535) fail(`--port: "${portText}" is not a port (0 to 65535)`, 2)
  if (host === '') fail('--host: must not be empty', 2)
  // Its own process group: a Ctrl-C reaches it once, from us. Its stdin is a pipe only we
  // hold: if we die by any means, it sees the end and stops (tethered-child.ts).
  const child = spawn(process.execPath, [...process.execArgv, new URL('./main.js', import.meta.url).pathname, host, String(port), '--tethered'],
    { stdio: ['pipe', 'inherit', 'inherit'], detached: true })
  child.stdin?.on('error', () => {})
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(signal, () => { child.kill(signal === 'SIGHUP' ? 'SIGTERM' : signal) })
  }
  child.once('exit', (code, signal) => process.exit(code ?? (signal === null ? 1 : 0)))
}
