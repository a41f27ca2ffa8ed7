// The one writer of raw HTTP/1.1 heads: for sockets that never got (or no longer have)
// a ServerResponse — an upgrade request, a connection refused at the door, a request
// Node's parser gave up on. Every such answer closes its connection, but a 101, whose
// connection becomes the tunnel.

import { reasonPhrase } from '../status/catalog.js'

/** The status line and headers of an answer on a raw socket; `bodyBytes` null: the body ends at close. */
export function rawHead (status: number, headers: readonly string[], bodyBytes: number | null, text = reasonPhrase(status)): string {
  let head = statusAndHeaders(status, text, headers)
  if (bodyBytes !== null) head += `content-length: ${bodyBytes}\r\n`
  return `${head}connection: close\r\n\r\n`
}

/** The head of a 101: the origin's headers as the edge relays them, and the connection is upgraded. */
export function switchingHead (status: number, headers: readonly string[]): string {
  return `${statusAndHeaders(status, 'Switching Protocols', headers)}connection: upgrade\r\n\r\n`
}

function statusAndHeaders (status: number, text: string, headers: readonly string[]): string {
  let head = `HTTP/1.1 ${status} ${text}\r\n`
  for (let i = 0; i < headers.length; i += 2) head += `${headers[i] as string}: ${headers[i + 1] as string}\r\n`
  return head
}

/** A whole short answer: head and body in one write. */
export function rawResponse (status: number, headers: readonly string[], body: string): string {
  return rawHead(status, headers, Buffer.byteLength(body)) + body
}
