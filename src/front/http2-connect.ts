// CONNECT over HTTP/2 reaches the server's 'connect' listener with a response object
// where HTTP/1.1 gives a socket: the same 405 refusal, written as an HTTP/2 answer.

import type { IncomingMessage } from 'node:http'
import type { Http2ServerResponse } from 'node:http2'

export function connectOverHttp2 (_req: IncomingMessage, res: unknown, answer: { headers: string[], body: string }): void {
  const response = res as Http2ServerResponse
  // Node takes a flat name/value list here as on HTTP/1.1; its types know only objects.
  response.writeHead(405, answer.headers as unknown as Record<string, string>)
  response.end(answer.body)
}
