// A budget for HTTP/2 frames that move no request forward: WINDOW_UPDATE, PING,
// SETTINGS, PRIORITY, empty DATA. Node's nghttp2 cuts floods of frames that need an
// answer (PING and SETTINGS acks pile up) and of empty DATA, but a WINDOW_UPDATE flood
// (800k frames in 10 s) only cost CPU, 5–8 s of it, until client_headers ended the
// connection. Node reports no WINDOW_UPDATE to JavaScript, so the budget is kept in
// bytes: every second, what the connection's socket read, less what carried requests
// forward (header blocks, bounded from above by their decoded fields, and the body bytes
// the edge read), is control traffic. More than `maxIdleFrames` × 9 bytes of it (9 bytes:
// the smallest frame) in one second, and the connection gets GOAWAY ENHANCE_YOUR_CALM and
// one warn line, as for rapid reset. Body bytes not read yet are bounded by the
// connection's flow-control window (64 KiB), well inside the default budget. A client that
// downloads returns WINDOW_UPDATEs for what it read (two 13-byte frames per half window,
// 32 KiB with the default windows): every 512 bytes the edge wrote credit it 1 byte (64
// bytes per 32 KiB, for 26), so a fast download is never taken for a flood.
// One timer for every session; none while no HTTP/2 connection is open.

import { constants, type Http2Session } from 'node:http2'
import type { Socket } from 'node:net'
import type { Logger } from 'pino'
import { countProgress, type Progress } from '../../edge/stream-request.js'
import { sendAway } from './reset-guard.js'

/** The smallest HTTP/2 frame: a frame header with no payload. */
const FRAME_BYTES = 9
const TICK_MS = 1000

/** Bytes the edge writes per byte of control traffic a downloading client may answer with. */
const WRITE_CREDIT = 512

interface Watched { read: number, written: number, progress: Progress }

export class FrameBudget {
  private readonly sessions = new Map<Http2Session, Watched>()
  private timer: NodeJS.Timeout | null = null

  constructor (private readonly maxIdleFrames: number, private readonly log: Logger) {}

  watch (session: Http2Session): void {
    if (this.maxIdleFrames === 0) return
    this.sessions.set(session, { read: bytesRead(session), written: bytesWritten(session), progress: countProgress(session) })
    session.once('close', () => {
      this.sessions.delete(session)
      if (this.sessions.size === 0 && this.timer !== null) { clearInterval(this.timer); this.timer = null }
    })
    if (this.timer === null) {
      this.timer = setInterval(() => { this.tick() }, TICK_MS)
      this.timer.unref()
    }
  }

  private tick (): void {
    const budget = this.maxIdleFrames * FRAME_BYTES
    for (const [session, watched] of this.sessions) {
      const read = bytesRead(session)
      const written = bytesWritten(session)
      const idle = read - watched.read - watched.progress.bytes - (written - watched.written) / WRITE_CREDIT
      watched.read = read
      watched.written = written
      watched.progress.bytes = 0
      if (idle <= budget || session.destroyed || session.closed) continue
      const socket = session.socket as Socket | undefined
      this.log.warn({
        msg: 'http2 connection cut',
        error: { code: 'HPX_ERR_FRAME_FLOOD', message: `about ${Math.round(idle / FRAME_BYTES)} frames in one second that moved no request forward (budget ${this.maxIdleFrames})` },
        why: 'a client flooding frames that carry no request (WINDOW_UPDATE, PING, SETTINGS, PRIORITY, empty DATA): GOAWAY ENHANCE_YOUR_CALM, connection closed',
        client: { address: socket?.remoteAddress ?? null, port: socket?.remotePort ?? null }
      })
      sendAway(session, constants.NGHTTP2_ENHANCE_YOUR_CALM)
    }
  }
}

/** What the session's socket has read so far (TLS plaintext: the HTTP/2 frames themselves). */
function bytesRead (session: Http2Session): number {
  return (session.socket as Socket | undefined)?.bytesRead ?? 0
}

/** What the session's socket has written so far. */
function bytesWritten (session: Http2Session): number {
  return (session.socket as Socket | undefined)?.bytesWritten ?? 0
}
