// The state one edge request carries from route to log. Declared once; the plugin
// creates it in onRequest and every later step reads or fills it.

import type { DialedSocket } from '../origin/dial.js'
import type { PoolMember } from '../origin/pool.js'

export interface EdgeContext {
  /** 16 lowercase hex; the header value appends `-<EDGE>`. */
  ray: string
  /** performance.now() when the request arrived. */
  start: number
  /** Read once at arrival: the client socket may be gone by the time we answer. */
  clientIp: string
  /** The request target's path (absolute-form reduced to its path), set when it is routed. */
  path: string
  /** Which route served it (for logs and metrics), null before routing. */
  route: string | null
  /** The origin URL of the current attempt. */
  originUrl: string | null
  /** The socket the origin request went out on (from undici's sendHeaders channel). */
  socket: DialedSocket | null
  /** True when this request was the first on its socket, so the dial timings are its own. */
  socketFresh: boolean
  /** Time to the origin's response headers, from the request start. */
  ttfbMs: number | null
  /** Cancels the origin request: set once undici has it. */
  abortOrigin: ((reason?: Error) => void) | null
  clientAborted: boolean
  /** Node's parser refused the rest of this request (e.g. a bad chunk): the status it got. */
  clientError: number | null
  /** The origin failed after headers were sent: the client got a truncated body. */
  truncated: boolean
  attempt: number
  /** Origins this request already tried: a retry goes elsewhere. */
  tried: Set<PoolMember>
  /** The edge status we answered with, when we answered with one. */
  edgeStatus: number | null
  /** The access line is written exactly once, whichever way the request ends. */
  logged: boolean
}

export function newContext (ray: string, start: number, clientIp: string): EdgeContext {
  return {
    ray,
    start,
    clientIp,
    path: '',
    route: null,
    originUrl: null,
    socket: null,
    socketFresh: false,
    ttfbMs: null,
    abortOrigin: null,
    clientAborted: false,
    truncated: false,
    clientError: null,
    attempt: 0,
    tried: new Set(),
    edgeStatus: null,
    logged: false
  }
}
