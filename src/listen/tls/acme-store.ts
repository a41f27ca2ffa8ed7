// Where ACME state lives between runs: one directory per ACME directory URL under
// `storage` (a staging certificate must never be served by a production edge), holding
// the account key and URL, each domain's certificate and key, the lock that makes one
// process the one that orders, and the challenge answers every worker serves. Every file
// is 0600 and every directory 0700; a file is written to a temporary name and renamed,
// so a reader (another worker, the next start) sees the old content or the new, never half.

import { X509Certificate } from 'node:crypto'
import { chmodSync, mkdirSync, readFileSync, readdirSync, renameSync, statSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'

const DIR_MODE = 0o700
const FILE_MODE = 0o600
/**
 * A lock not refreshed for this long is stale even when its pid is alive: after a
 * restart in a container, the old holder's pid can belong to another process (pid 1).
 * The holder refreshes it every poll (2 s).
 */
export const LOCK_STALE_MS = 30_000

/** `https://acme-v02.api.letsencrypt.org/directory` → `acme-v02.api.letsencrypt.org-directory`. */
export function directorySlug (url: string): string {
  const u = new URL(url)
  return `${u.host}${u.pathname}`.toLowerCase().replace(/[^a-z0-9.-]+/g, '-').replace(/-+$/, '')
}

export interface StoredPair { cert: string, key: string }

export class AcmeStore {
  readonly dir: string
  readonly http01Dir: string
  readonly tlsAlpnDir: string
  private readonly lockFile: string

  constructor (storage: string, directoryUrl: string) {
    this.dir = join(storage, directorySlug(directoryUrl))
    this.http01Dir = join(this.dir, 'http-01')
    this.tlsAlpnDir = join(this.dir, 'tls-alpn-01')
    this.lockFile = join(this.dir, 'lock')
  }

  /** Creates the directories (0700); throws the system error when it cannot. */
  prepare (): void {
    for (const d of [this.dir, this.http01Dir, this.tlsAlpnDir]) {
      mkdirSync(d, { recursive: true, mode: DIR_MODE })
      chmodSync(d, DIR_MODE)
    }
  }

  private write (file: string, data: string): void {
    const tmp = `${file}.${process.pid}.tmp`
    writeFileSync(tmp, data, { mode: FILE_MODE })
    // The mode is applied at creation only: a leftover temporary file keeps its own.
    chmodSync(tmp, FILE_MODE)
    renameSync(tmp, file)
  }

  private readOrNull (file: string): string | null {
    try {
      return readFileSync(file, 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
      throw err
    }
  }

  accountKey (): string | null { return this.readOrNull(join(this.dir, 'account.key')) }
  saveAccountKey (pem: string): void { this.write(join(this.dir, 'account.key'), pem) }

  accountUrl (): string | null {
    const text = this.readOrNull(join(this.dir, 'account.json'))
    if (text === null) return null
    try {
      const url = (JSON.parse(text) as { url?: unknown }).url
      return typeof url === 'string' ? url : null
    } catch {
      return null
    }
  }

  saveAccountUrl (url: string): void { this.write(join(this.dir, 'account.json'), JSON.stringify({ url }) + '\n') }

  private certFile (domain: string): string { return join(this.dir, `${domain}.crt`) }
  private keyFile (domain: string): string { return join(this.dir, `${domain}.key`) }

  /** The stored certificate (PEM chain) and key of a domain, or null. */
  certificate (domain: string): StoredPair | null {
    const cert = this.readOrNull(this.certFile(domain))
    const key = this.readOrNull(this.keyFile(domain))
    return cert === null || key === null ? null : { cert, key }
  }

  /** The key first: a reader that sees the new certificate also sees its key. */
  saveCertificate (domain: string, pair: StoredPair): void {
    this.write(this.keyFile(domain), pair.key)
    this.write(this.certFile(domain), pair.cert)
  }

  /** What changes when a certificate is replaced (mtime and size of its file); '' when none. */
  stamp (domain: string): string {
    try {
      const s = statSync(this.certFile(domain))
      return `${s.mtimeMs}:${s.size}`
    } catch {
      return ''
    }
  }

  saveHttpToken (token: string, keyAuthorization: string): void { this.write(join(this.http01Dir, token), keyAuthorization) }
  removeHttpToken (token: string): void { removeQuietly(join(this.http01Dir, token)) }

  saveAlpnCertificate (domain: string, pair: StoredPair): void { this.write(join(this.tlsAlpnDir, `${domain}.pem`), pair.key + pair.cert) }
  removeAlpnCertificate (domain: string): void { removeQuietly(join(this.tlsAlpnDir, `${domain}.pem`)) }

  /** The tls-alpn-01 answer for a name (key and certificate in one PEM), or null. */
  async alpnCertificate (domain: string): Promise<string | null> {
    try {
      return await readFile(join(this.tlsAlpnDir, `${domain}.pem`), 'utf8')
    } catch {
      return null
    }
  }

  /**
   * The lock that makes one process (of the workers, or of several edges sharing the
   * storage) the one that orders and renews: a file naming its pid. A lock whose process
   * is gone is taken over. Two processes taking over the same stale lock at once could
   * both believe they won; `holds` is asked again before every order, and only the pid
   * the file names goes on.
   */
  tryLock (): boolean {
    for (let i = 0; i < 2; i++) {
      try {
        writeFileSync(this.lockFile, `${process.pid}\n`, { flag: 'wx', mode: FILE_MODE })
        return true
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      }
      const pid = this.lockPid()
      if (pid === process.pid) return true
      if (pid !== null && alive(pid) && Date.now() - this.lockRefreshedAt() < LOCK_STALE_MS) return false
      // Stale (its process is gone, or unreadable): remove it and try once more.
      removeQuietly(this.lockFile)
    }
    return false
  }

  holds (): boolean { return this.lockPid() === process.pid }

  /** The holder's heartbeat. */
  refreshLock (): void {
    const now = new Date()
    try { utimesSync(this.lockFile, now, now) } catch {}
  }

  /** When the lock was last refreshed (ms since the epoch; 0 when unreadable). */
  private lockRefreshedAt (): number {
    try {
      return statSync(this.lockFile).mtimeMs
    } catch {
      return 0
    }
  }

  unlock (): void { if (this.holds()) removeQuietly(this.lockFile) }

  private lockPid (): number | null {
    const text = this.readOrNull(this.lockFile)
    const pid = text === null ? NaN : Number.parseInt(text, 10)
    return Number.isInteger(pid) && pid > 0 ? pid : null
  }

  /** Leftover challenge answers of an earlier run (an order cut by a stop). */
  clearChallenges (): void {
    for (const d of [this.http01Dir, this.tlsAlpnDir]) {
      for (const f of readdirSync(d)) removeQuietly(join(d, f))
    }
  }
}

function removeQuietly (file: string): void {
  try { unlinkSync(file) } catch {}
}

function alive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    // EPERM: it exists, as another user.
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** notBefore and notAfter of a PEM certificate (its first), in ms since the epoch. */
export function validity (certPem: string): { notBefore: number, notAfter: number } {
  const x509 = new X509Certificate(certPem)
  return { notBefore: Date.parse(x509.validFrom), notAfter: Date.parse(x509.validTo) }
}
