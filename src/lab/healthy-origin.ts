// The built-in healthy origin of the demo and the tests: says it was reached through
// the proxy, echoes what it received, and streams on request.

import http from 'node:http'
import { escapeHtml } from '../page/render.js'
import { serveOnLoopback, type LabOrigin } from './loopback.js'

export interface LabLink { path: string, status: number | null, description: string, available: boolean, reason?: string | undefined }

export interface HealthyOriginOptions {
  /** Ray header name to report back (lower case). */
  rayHeader?: string
  /** Links for the demo's `/lab` listing. */
  labLinks?: () => LabLink[]
}

function labPage (links: LabLink[]): string {
  const rows = links.map(l => `<tr><td>${l.status ?? 200}</td><td>${l.available ? `<a href="${escapeHtml(l.path)}">${escapeHtml(l.path)}</a>` : escapeHtml(l.path)}</td>` +
    `<td>${escapeHtml(l.available ? l.description : `unavailable: ${l.reason ?? ''}`)}</td></tr>`).join('\n')
  return `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>highproxy fault lab</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:900px;margin:40px auto;padding:0 16px}td{padding:4px 12px;border-bottom:1px solid #ddd}</style></head>
<body><h1>highproxy fault lab</h1><p>Each link reaches a real faulty origin through the proxy.</p><table>
<tr><th>status</th><th>path</th><th>the fault</th></tr>
${rows}
</table></body></html>\n`
}

export async function healthyOrigin (opts: HealthyOriginOptions = {}): Promise<LabOrigin> {
  const rayHeader = opts.rayHeader ?? 'cf-ray'
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://origin')
    if (url.pathname === '/lab' && opts.labLinks !== undefined) {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(labPage(opts.labLinks()))
      return
    }
    if (url.pathname === '/echo') {
      // Counts the body as it streams; never holds it whole.
      let bytes = 0
      req.on('data', (chunk: Buffer) => { bytes += chunk.length })
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/json', 'x-origin-secret': 'internal', connection: 'keep-alive', 'keep-alive': 'timeout=3' })
        res.end(JSON.stringify({ method: req.method, url: req.url, headers: req.headers, bodyBytes: bytes }))
      })
      return
    }
    if (url.pathname === '/slow') {
      const timer = setTimeout(() => res.end('slow but fine\n'), Number(url.searchParams.get('ms') ?? 1000))
      res.on('close', () => clearTimeout(timer))
      return
    }
    if (url.pathname === '/pipe') {
      res.writeHead(200, { 'content-type': 'application/octet-stream' })
      req.pipe(res)
      return
    }
    if (url.pathname === '/stream') {
      const chunks = Number(url.searchParams.get('chunks') ?? 10)
      const size = Number(url.searchParams.get('size') ?? 1024)
      const dieAfter = Number(url.searchParams.get('die_after') ?? -1)
      res.writeHead(200, { 'content-type': 'application/octet-stream' })
      let sent = 0
      const tick = (): void => {
        if (sent === dieAfter) { req.socket.resetAndDestroy(); return }
        if (sent === chunks) { res.end(); return }
        sent++
        res.write(Buffer.alloc(size, 97))
        setTimeout(tick, 5)
      }
      tick()
      return
    }
    const ray = req.headers[rayHeader]
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' })
    res.end(ray === undefined
      ? 'Hello from the highproxy demo origin. This request did NOT come through the proxy.\n'
      : `Hello from the highproxy demo origin. This response came through the proxy: ${rayHeader} ${String(ray)}, ` +
        `X-Forwarded-For ${String(req.headers['x-forwarded-for'])}, X-Forwarded-Host ${String(req.headers['x-forwarded-host'])}.\n`)
  })
  return serveOnLoopback(server, { key: 'healthy', status: null, description: 'a healthy origin: answers 200' })
}
