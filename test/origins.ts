// Origins the tests script byte by byte: raw TCP servers on loopback that frame each
// request and answer whatever the test writes.

import net from 'node:net'

export interface OriginRequest { method: string, url: string, headers: Record<string, string>, conn: number }

export interface ScriptedOrigin {
  url: string
  port: number
  /** Connections accepted so far. */
  connections: () => number
  /** Connections currently open. */
  open: () => number
  requests: OriginRequest[]
  /** `HTTP/1.1\r\n` occurrences in everything received. */
  requestLines: () => number
  close: () => Promise<void>
}

/**
 * A raw origin: frames each request (head, then a Content-Length body) and hands it to
 * `answer` with the socket, which writes whatever bytes the test wants.
 */
export async function scriptedOrigin (answer: (req: OriginRequest, socket: net.Socket) => void): Promise<ScriptedOrigin> {
  let connections = 0
  let received = ''
  const requests: OriginRequest[] = []
  const sockets = new Set<net.Socket>()
  const server = net.createServer(socket => {
    const conn = ++connections
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => {})
    let buf = ''
    socket.on('data', (d: Buffer) => {
      received += d.toString('latin1')
      buf += d.toString('latin1')
      for (;;) {
        const end = buf.indexOf('\r\n\r\n')
        if (end === -1) return
        const lines = buf.slice(0, end).split('\r\n')
        const [method = '', url = ''] = (lines[0] ?? '').split(' ')
        const headers: Record<string, string> = {}
        for (const l of lines.slice(1)) {
          const colon = l.indexOf(':')
          headers[l.slice(0, colon).toLowerCase()] = l.slice(colon + 1).trim()
        }
        const length = Number(headers['content-length'] ?? 0)
        if (buf.length < end + 4 + length) return
        buf = buf.slice(end + 4 + length)
        const req = { method, url, headers, conn }
        requests.push(req)
        answer(req, socket)
      }
    })
  })
  await new Promise<void>(resolve => server.listen({ host: '127.0.0.1', port: 0 }, resolve))
  const port = (server.address() as net.AddressInfo).port
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    connections: () => connections,
    open: () => sockets.size,
    requests,
    requestLines: () => received.split('HTTP/1.1\r\n').length - 1,
    close: () => new Promise(resolve => { for (const s of sockets) s.destroy(); server.close(() => resolve()) })
  }
}
