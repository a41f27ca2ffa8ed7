// timeouts.client_write once the edge has nothing more to write: the response is whole
// in the edge (an origin's last chunk, an edge page) but not out to a client that stopped
// reading. The attempt times a stall while the origin is still sending (attempt.ts); this
// times the rest, so a client with a flow-control window of 0 cannot hold a stream and
// its buffered bytes for ever.

import type { Exchange } from './exchange.js'

export function watchFlush (exchange: Exchange, ms: number): void {
  const timer = setTimeout(() => {
    if (exchange.finished || exchange.sink.completed) return
    exchange.clientStalled(ms)
    exchange.sink.cut()
  }, ms)
  exchange.sink.onClose(() => { clearTimeout(timer) })
}
