// The process `highproxy toxiproxy` runs the API and its proxies in (see command.ts):
//   node dist/lab/toxiproxy/main.js <host> <port> [--tethered]
// It stops on SIGTERM or SIGINT; with --tethered also when its stdin ends: the parent that
// holds the other end of that pipe is gone, however it died.

import closeWithGrace from 'close-with-grace'
import { startToxiproxy } from './api.js'

const [host = '127.0.0.1', port = '8474', tethered] = process.argv.slice(2)
process.stdout.on('error', () => {})
process.stderr.on('error', () => {})
try {
  const server = await startToxiproxy({ host, port: Number(port) })
  process.stderr.write(`highproxy toxiproxy: Toxiproxy's API on ${server.url} (Ctrl-C to stop)\n`)
  const { close } = closeWithGrace({ delay: 5000 }, server.close)
  if (tethered === '--tethered') {
    process.stdin.on('end', () => { void close() })
    process.stdin.on('error', () => { void close() })
    process.stdin.resume()
  }
} catch (err) {
  const e = err as NodeJS.ErrnoException
  process.stderr.write(`highproxy: cannot listen on ${host}:${port} (toxiproxy): ${e.code === 'EADDRINUSE' ? 'address already in use' : e.message}\n`)
  process.exit(1)
}
