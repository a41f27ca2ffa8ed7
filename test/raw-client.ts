// A client that writes raw bytes on a fresh connection and reads back what comes: for
// requests no well-behaved client would send, and for answers on the wire as they are.

import net from 'node:net'

export interface Answer { text: string, status: number | null, headers: Record<string, string>, body: string, closed: boolean }

export function parseAnswer (text: string, closed: boolean): Answer {
  const m = /^HTTP\/1\.1 (\d{3})[^\r\n]*\r\n/.exec(text)
  const end = text.indexOf('\r\n\r\n')
  const headers: Record<string, string> = {}
  for (const line of text.slice(0, end === -1 ? text.length : end).split('\r\n').slice(1)) {
    const colon = line.indexOf(':')
    if (colon > 0) headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim()
  }
  let body = end === -1 ? '' : text.slice(end + 4)
  if (/chunked/i.test(headers['transfer-encoding'] ?? '')) body = dechunk(body)
  return { text, status: m === null ? null : Number(m[1]), headers, body, closed }
}

function dechunk (s: string): string {
  let out = ''
  for (let at = 0; at < s.length;) {
    const eol = s.indexOf('\r\n', at)
    const size = parseInt(s.slice(at, eol), 16)
    if (eol === -1 || !(size > 0)) break
    out += s.slice(eol + 2, eol + 2 + size)
    at = eol + 2 + size + 2
  }
  return out
}

/** Writes `data` on a fresh connection; collects until close or `quietMs` without a byte. */
export function raw (port: number, data: string | Buffer, quietMs = 500): Promise<Answer> {
  return new Promise(resolve => {
    const socket = net.connect({ host: '127.0.0.1', port }, () => socket.write(data))
    let out = ''
    let closed = false
    let timer = setTimeout(() => socket.destroy(), quietMs)
    socket.on('data', d => {
      out += d.toString('utf8')
      clearTimeout(timer)
      timer = setTimeout(() => socket.destroy(), quietMs)
    })
    socket.on('end', () => { closed = true })
    socket.on('error', () => {})
    socket.on('close', () => { clearTimeout(timer); resolve(parseAnswer(out, closed)) })
  })
}
