// The raw-socket clients' HTTP/1.1 answer reader (the storm client, the fixed-rate
// client): no HTTP library between the socket and the clock.

const HEADER_END = Buffer.from('\r\n\r\n')

/**
 * One complete HTTP/1.1 answer at the start of `buf`: { status, length }, null while
 * incomplete, { status, length: -1 } when it is delimited by the close (neither
 * content-length nor chunked), { error } for what these clients do not read.
 */
export function parseAnswer (buf) {
  const end = buf.indexOf(HEADER_END)
  if (end === -1) return null
  const head = buf.toString('latin1', 0, end)
  const status = Number(head.slice(9, 12))
  if (!Number.isInteger(status) || !head.startsWith('HTTP/1.')) return { error: 'not an HTTP/1.x answer' }
  const cl = /\r\ncontent-length:\s*(\d+)/i.exec(head)
  if (cl !== null) {
    const length = end + 4 + Number(cl[1])
    return buf.length < length ? null : { status, length }
  }
  if (!/\r\ntransfer-encoding:\s*chunked/i.test(head)) return { status, length: -1 }
  let at = end + 4
  for (;;) {
    const eol = buf.indexOf('\r\n', at, 'latin1')
    if (eol === -1) return null
    const size = parseInt(buf.toString('latin1', at, eol), 16)
    if (!Number.isFinite(size)) return { error: 'bad chunk size' }
    if (size === 0) return buf.length < eol + 4 ? null : { status, length: eol + 4 } // no trailers expected
    at = eol + 2 + size + 2
    if (buf.length < at) return null
  }
}
