// Where the JSON log lines go: pino serializes them, this writes them to stdout in
// batches. It replaces sonic-boom as pino's destination for one measured reason: with
// `minLength` set, sonic-boom measures its whole pending buffer with Buffer.byteLength
// on every line, which flattens the buffered string each time — O(buffer) work and
// ~30 KB of garbage per request at 16 lines a batch; it made the access line cost more
// than the request it describes. Here a line is an array push; a batch is one join and
// one write. Lines are encoded straight into the batch's buffer, so a batch is encoded
// once, not joined and then encoded again.
//
// stdout on Linux is synchronous for files, pipes and terminals, so a write never
// queues unboundedly. A dead terminal or closed pipe (EIO, EPIPE) must never crash,
// spin or wedge shutdown: once stdout fails, lines are dropped.

import { writeSync } from 'node:fs'

const BATCH_BYTES = 32 * 1024
const BATCH_MS = 50

export class BatchedStdout {
  private batch = Buffer.allocUnsafe(BATCH_BYTES)
  private bytes = 0
  private timer: NodeJS.Timeout | null = null
  private broken = false

  constructor (private readonly out: NodeJS.WriteStream = process.stdout, private readonly fd = 1) {
    out.on('error', () => { this.broken = true })
    process.once('exit', () => this.flushSync())
  }

  write (line: string): boolean {
    if (this.broken) return true
    // A UTF-8 character is at most 3 bytes per UTF-16 unit.
    if (this.bytes + line.length * 3 > this.batch.length) {
      this.flushNow()
      if (line.length * 3 > this.batch.length) { this.send(Buffer.from(line)); return true }
    }
    this.bytes += this.batch.write(line, this.bytes)
    if (this.timer === null) this.timer = setTimeout(this.flushNow, BATCH_MS).unref()
    return true
  }

  /** pino's `logger.flush(cb)`. */
  flush (cb?: (err?: Error) => void): void {
    this.flushNow()
    cb?.()
  }

  /** At exit: nothing may be left behind, and nothing may be waited for. */
  flushSync (): void {
    if (this.bytes === 0 || this.broken) return
    const chunk = this.take()
    try { writeSync(this.fd, chunk) } catch { this.broken = true }
  }

  private readonly flushNow = (): void => {
    if (this.bytes === 0 || this.broken) return
    this.send(this.take())
  }

  private send (chunk: Buffer): void {
    try { this.out.write(chunk) } catch { this.broken = true }
  }

  /** The batch so far; the next one gets a buffer of its own (the stream may still hold this one). */
  private take (): Buffer {
    if (this.timer !== null) { clearTimeout(this.timer); this.timer = null }
    const chunk = this.batch.subarray(0, this.bytes)
    this.batch = Buffer.allocUnsafe(BATCH_BYTES)
    this.bytes = 0
    return chunk
  }
}
