// The plain-HTTP listener beside the TLS one: every request gets 308 to https:// with the
// same host, path and query (308 keeps the method and body, unlike 301), except ACME
// HTTP-01 challenges (RFC 8555 §8.3), answered from a directory an external ACME client
// writes its tokens to, so certificates renew without a second web server. A token is
// base64url by definition: anything else under the challenge path is a 404, so no path
// built from the request ever leaves that directory.

import { readFile } from 'node:fs/promises'
import { createServer, STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { join } from 'node:path'
import { refusedAccess, type AccessLog } from '../../edge/access-log.js'
import { HOST } from '../../edge/admit.js'
import { newRayId } from '../../log/ray.js'
import { edgeHeaders } from '../../page/edge-headers.js'
import { writeToResponse } from '../../page/write.js'

const ACME_PREFIX = '/.well-known/acme-challenge/'
const TOKEN = /^[A-Za-z0-9_-]+$/
const NONE: readonly string[] = []

export interface RedirectOptions {
  host: string
  port: number
  /** The TLS listener's port: part of the Location unless it is 443. */
  httpsPort: number
  acmeDir: string | null
  rayHeader: string
  edgeName: string
  access: AccessLog
}

/** `example.com:80` → `example.com`; `[::1]:80` → `[::1]`. */
const hostname = (host: string): string => host.replace(/:[0-9]*$/, '')

export async function startRedirect (opts: RedirectOptions): Promise<Server> {
  const server = createServer({ requireHostHeader: false }, (req, res) => { void answer(opts, req, res) })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(opts.port, opts.host, () => { server.off('error', reject); resolve() })
  })
  return server
}

async function answer (opts: RedirectOptions, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const ray = newRayId()
  const host = req.headers.host ?? ''
  const url = req.url ?? ''
  const path = url.split('?', 1)[0] as string
  let status: number
  let reason: string
  let body = ''
  const headers = edgeHeaders(ray, opts, NONE, false, false)
  if (opts.acmeDir !== null && path.startsWith(ACME_PREFIX)) {
    body = await challenge(opts.acmeDir, path.slice(ACME_PREFIX.length))
    status = body === '' ? 404 : 200
    reason = 'acme_challenge'
    headers.push('content-type', status === 200 ? 'application/octet-stream' : 'text/plain; charset=utf-8')
    if (status === 404) body = 'no such ACME challenge token\n'
  } else if (!HOST.test(host) || !url.startsWith('/')) {
    status = 400
    reason = 'host_invalid'
    body = 'a redirect needs a valid Host and an origin-form target\n'
    headers.push('content-type', 'text/plain; charset=utf-8')
  } else {
    status = 308
    reason = 'https_redirect'
    const port = opts.httpsPort === 443 ? '' : `:${opts.httpsPort}`
    headers.push('location', `https://${hostname(host)}${port}${url}`, 'content-type', 'text/plain; charset=utf-8')
    body = `${status} ${STATUS_CODES[status] ?? ''}: this site is served over HTTPS\n`
  }
  headers.push('content-length', String(Buffer.byteLength(body)))
  writeToResponse(res, status, headers, body, req.method === 'HEAD')
  const record = refusedAccess(ray, status, reason, req.method ?? '', host, req.socket)
  record.path = path
  opts.access.refusal(record, req.socket, url)
}

/** The token file's content; '' for a token that is not base64url or has no file. */
async function challenge (dir: string, token: string): Promise<string> {
  if (!TOKEN.test(token)) return ''
  try {
    return await readFile(join(dir, token), 'utf8')
  } catch {
    return ''
  }
}
