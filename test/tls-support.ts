// What the TLS and HTTP/2 tests share: certificates made at test time (a CA of their
// own, and certificates it issued, written to a temporary directory for the config),
// and real clients: Debian's curl, Node's http2.connect, and a bare TLS handshake.

import { execFile } from 'node:child_process'
import { X509Certificate } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import http2 from 'node:http2'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import tls from 'node:tls'
import { issuedCertificate, labAuthority, type TestCertificate } from '../src/lab/certificates.js'

export interface CertFiles extends TestCertificate { certFile: string, keyFile: string, fingerprint: string }

export interface Pki {
  dir: string
  ca: TestCertificate
  caFile: string
  /** A certificate for `names` issued by the CA, written as `<label>.pem` / `<label>.key`. */
  issue: (label: string, names: string[]) => Promise<CertFiles>
  remove: () => void
}

export async function makePki (): Promise<Pki> {
  const dir = mkdtempSync(join(tmpdir(), 'hp-tls-'))
  const ca = await labAuthority()
  const caFile = join(dir, 'ca.pem')
  writeFileSync(caFile, ca.cert)
  return {
    dir,
    ca,
    caFile,
    async issue (label, names) {
      const c = await issuedCertificate(ca, { names })
      const certFile = join(dir, `${label}.pem`)
      const keyFile = join(dir, `${label}.key`)
      writeFileSync(certFile, c.cert)
      writeFileSync(keyFile, c.key)
      return { ...c, certFile, keyFile, fingerprint: new X509Certificate(c.cert).fingerprint256 }
    },
    remove: () => rmSync(dir, { recursive: true, force: true })
  }
}

export interface Answer { status: number, version: string, headers: Record<string, string>, body: string }

/** Debian's curl: `-i` output split into the status line, headers (lower-case names) and body. */
export function curl (args: string[]): Promise<Answer> {
  return new Promise((resolve, reject) => {
    execFile('curl', ['-sS', '-i', '--max-time', '10', ...args], { encoding: 'latin1', maxBuffer: 1 << 24 }, (err, stdout, stderr) => {
      if (err !== null) { reject(new Error(`curl failed: ${stderr}`)); return }
      const end = stdout.indexOf('\r\n\r\n')
      const [statusLine = '', ...lines] = stdout.slice(0, end).split('\r\n')
      const [version = '', status = '0'] = statusLine.split(' ')
      const headers: Record<string, string> = {}
      for (const l of lines) {
        const colon = l.indexOf(':')
        headers[l.slice(0, colon).toLowerCase()] = l.slice(colon + 1).trim()
      }
      resolve({ status: Number(status), version, headers, body: stdout.slice(end + 4) })
    })
  })
}

/** One request over a new HTTP/2 connection (Node's client), trusting `ca`. */
export function h2request (url: string, ca: string, headers: http2.OutgoingHttpHeaders = {}, body?: string | Buffer,
  servername?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(url, { ca, servername })
    session.on('error', reject)
    const req = session.request({ ':path': '/', ...headers }, { endStream: body === undefined })
    const chunks: Buffer[] = []
    let status = 0
    const out: Record<string, string> = {}
    req.on('response', h => {
      status = Number(h[':status'])
      for (const [k, v] of Object.entries(h)) if (!k.startsWith(':')) out[k] = Array.isArray(v) ? v.join(', ') : String(v)
    })
    req.on('data', (d: Buffer) => chunks.push(d))
    req.on('end', () => { session.close(); resolve({ status, version: 'HTTP/2', headers: out, body: Buffer.concat(chunks).toString() }) })
    req.on('error', err => { session.destroy(); reject(err) })
    if (body !== undefined) req.end(body)
  })
}

export interface Handshake { alpn: string | false | null, protocol: string | null, fingerprint: string, reused: boolean, session: Buffer | undefined }

/** A bare TLS handshake: what the server negotiated and which certificate it sent. */
export function handshake (port: number, opts: tls.ConnectionOptions = {}): Promise<Handshake> {
  return new Promise((resolve, reject) => {
    let session: Buffer | undefined
    const socket = tls.connect({ host: '127.0.0.1', port, ...opts }, () => {
      // A new session's ticket may come after the handshake (always, in TLS 1.3): wait
      // for it before leaving, so the next handshake can resume it.
      const done = (): void => {
        const facts = { alpn: socket.alpnProtocol, protocol: socket.getProtocol(), fingerprint: socket.getPeerX509Certificate()?.fingerprint256 ?? '', reused: socket.isSessionReused(), session }
        socket.end()
        resolve(facts)
      }
      if (session === undefined && !socket.isSessionReused()) socket.once('session', () => setImmediate(done))
      else done()
    })
    socket.on('session', s => { session = s })
    socket.on('error', reject)
  })
}
