// A client upload still in flight when the proxy answers: what a refused origin's
// answer must survive.

import http from 'node:http'

export interface Posted { status: number, headers: http.IncomingHttpHeaders, body: string, port: number }

/**
 * A POST whose body is still being sent, in pieces, when the origin refuses. On a
 * keep-alive connection: asked to close, a server may close while the client still sends.
 */
export function postInPieces (url: string, path: string, agent: http.Agent): Promise<Posted> {
  const { hostname, port } = new URL(url)
  return new Promise((resolve, reject) => {
    const req = http.request({ host: hostname, port, path, method: 'POST', agent, headers: { 'content-type': 'application/octet-stream' } }, res => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => { body += chunk })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body, port: res.socket.localPort ?? 0 }))
      res.on('error', reject)
    })
    req.on('error', reject)
    const piece = Buffer.alloc(64 * 1024, 'x')
    let sent = 0
    // Most of it goes out after the origin has refused: the answer must neither wait for it nor be lost.
    const next = (): void => {
      if (sent++ === 16) { req.end(); return }
      req.write(piece, () => setTimeout(next, 5))
    }
    next()
  })
}
