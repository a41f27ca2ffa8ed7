// The one writer of edge-made answers: the error pages, the refusals, a stale copy, the
// redirect to HTTPS, a 101's head. Whatever the edge answers by itself goes out here,
// over what the client has: the edge's client sink (edge/sink.ts, for a request the
// edge serves), Node's ServerResponse (a request refused by the framework, the plain-
// HTTP listener), an HTTP/2 stream (a refused CONNECT), or a raw socket before or after
// any parser (raw-response.ts frames those). It takes plain values only: the headers
// are composed by the caller (edge-headers.ts, refusal.ts, respond.ts).

import type { OutgoingHttpHeaders, ServerResponse } from 'node:http'
import type { ServerHttp2Stream } from 'node:http2'
import type { Duplex } from 'node:stream'
import { rawResponse } from './raw-response.js'

/** What the edge writes a whole answer to: its client sinks have this shape. */
export interface AnswerOut {
  start (status: number, text: string, headers: string[]): void
  write (chunk: Buffer): boolean
  end (body?: string): void
}

/**
 * An answer through the edge's sink: `text` is the status line's reason (HTTP/2 has
 * none). `head`: a HEAD request gets the headers only.
 */
export function writeToSink (out: AnswerOut, status: number, text: string, headers: string[], body: string | Buffer, head: boolean): void {
  out.start(status, text, headers)
  if (head) out.end()
  else if (typeof body === 'string') out.end(body)
  else {
    if (body.length > 0) out.write(body)
    out.end()
  }
}

/** An answer through Node's ServerResponse, with Node's reason phrase for the status. */
export function writeToResponse (res: ServerResponse, status: number, headers: string[], body: string, head = false): void {
  res.writeHead(status, headers)
  res.end(head ? undefined : body)
}

const ignore = (): void => {}

/** An answer on an HTTP/2 stream nobody else answers: the stream's errors (a reset) are its own end. */
export function writeToStream (stream: ServerHttp2Stream, status: number, headers: string[], body: string): void {
  stream.on('error', ignore)
  stream.respond(headerObject(status, headers))
  stream.end(body)
}

/** A whole answer on a raw socket (no parser, or one past trusting): content-length framed, and the connection closes. */
export function writeToSocket (socket: Duplex, status: number, headers: string[], body: string): void {
  socket.end(rawResponse(status, headers, body))
}

/** A flat name/value list as HTTP/2's header object, with `:status`; repeated names become arrays. */
export function headerObject (status: number, flat: string[]): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = Object.create(null)
  out[':status'] = status
  for (let i = 0; i < flat.length; i += 2) {
    const name = (flat[i] as string).toLowerCase()
    const value = flat[i + 1] as string
    const prior = out[name]
    if (prior === undefined) out[name] = value
    else if (Array.isArray(prior)) prior.push(value)
    else out[name] = [prior as string, value]
  }
  return out
}
