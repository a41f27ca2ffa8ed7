// `highproxy toxiproxy [--host 127.0.0.1] [--port 8474]`: Toxiproxy's API until Ctrl-C.

import closeWithGrace from 'close-with-grace'
import { startToxiproxy } from './api.js'

/** Starts the API; a bad flag or a port in use is one line on stderr and exit 2 or 1. */
export async function runToxiproxy (flags: { host?: string, port?: string }, fail: (message: string, code: number) => never): Promise<void> {
  const host = flags.host ?? '127.0.0.1'
  const portText = flags.port ?? '8474'
  const port = Number(portText)
  if (!/^\d+$/.test(portText) || port > 65535) fail(`--port: "${portText}" is not a port (0 to 65535)`, 2)
  if (host === '') fail('--host: must not be empty', 2)
  const server = await startToxiproxy({ host, port }).catch((err: NodeJS.ErrnoException) =>
    fail(`cannot listen on ${host}:${port} (toxiproxy): ${err.code === 'EADDRINUSE' ? 'address already in use' : err.message}`, 1))
  process.stderr.write(`highproxy toxiproxy: Toxiproxy's API on ${server.url} (Ctrl-C to stop)\n`)
  closeWithGrace({ delay: 5000 }, server.close)
}
