// listen.tls.acme, resolved and checked at start: every name a CA could issue for, an
// email a CA accepts, a directory URL, a storage directory this process can write. A
// mistake here is one line naming the key (exit 2), not an order that fails at 3 a.m.

import { accessSync, chmodSync, constants, mkdirSync, readFileSync, statSync } from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { durationMs } from './duration.js'
import type { AcmeConfig, ListenTlsInput } from './schema.js'
import { ConfigError } from '../status/errors.js'

export const DIRECTORIES: Readonly<Record<string, string>> = {
  letsencrypt: 'https://acme-v02.api.letsencrypt.org/directory',
  'letsencrypt-staging': 'https://acme-staging-v02.api.letsencrypt.org/directory'
}

/** An LDH label (RFC 1123): letters, digits, inner hyphens, 1-63 characters. */
const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/

/** Why a name cannot be ordered, or null when it can. */
function domainProblem (name: string): string | null {
  if (name.startsWith('*.')) return 'a wildcard needs the dns-01 challenge, which highproxy does not answer'
  if (name.length > 253) return 'longer than 253 characters'
  const labels = name.split('.')
  if (labels.length < 2) return 'not a fully qualified name (a CA issues for names like example.com)'
  if (!labels.every(l => LABEL.test(l))) return 'not a DNS name (letters, digits and inner hyphens between dots)'
  if (/^[0-9]+$/.test(labels[labels.length - 1] as string)) return 'an IP address, not a DNS name'
  return null
}

/** Where certificates live when `storage` is not given (documented in the schema). */
export function defaultStorage (env: NodeJS.ProcessEnv = process.env): string {
  const data = env.XDG_DATA_HOME !== undefined && env.XDG_DATA_HOME !== '' ? env.XDG_DATA_HOME : join(homedir(), '.local', 'share')
  return join(data, 'highproxy', 'acme')
}

/** Creates the storage directory (0700) and proves this process can write into it. */
function checkStorage (dir: string, key: string): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 })
    if (!statSync(dir).isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' })
    // Keys live here: nobody but this user may list or read them.
    chmodSync(dir, 0o700)
    accessSync(dir, constants.W_OK | constants.X_OK)
  } catch (err) {
    throw new ConfigError(key, `cannot write to ${dir} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`)
  }
}

export function resolveAcme (tls: ListenTlsInput): AcmeConfig | null {
  const acme = tls.acme
  if (acme === undefined) return null
  const domains: string[] = []
  acme.domains.forEach((raw, i) => {
    const name = raw.trim().toLowerCase().replace(/\.$/, '')
    const problem = domainProblem(name)
    if (problem !== null) throw new ConfigError(`listen.tls.acme.domains.${i}`, `"${raw}" cannot be ordered: ${problem}`)
    if (!domains.includes(name)) domains.push(name)
  })
  if (acme.email !== undefined && !/^[^@\s]+@[^@\s]+$/.test(acme.email)) {
    throw new ConfigError('listen.tls.acme.email', `"${acme.email}" is not an email address (it needs an @)`)
  }
  const directoryUrl = DIRECTORIES[acme.directory] ?? acme.directory
  let url: URL | null = null
  try { url = new URL(directoryUrl) } catch {}
  if (url === null || url.protocol !== 'https:') {
    throw new ConfigError('listen.tls.acme.directory', `expected an https:// directory URL, letsencrypt or letsencrypt-staging (got ${JSON.stringify(acme.directory)})`)
  }
  let directoryCa: string | null = null
  if (acme.directory_ca !== undefined) {
    try {
      directoryCa = readFileSync(acme.directory_ca, 'utf8')
    } catch (err) {
      throw new ConfigError('listen.tls.acme.directory_ca', `cannot read ${acme.directory_ca} (${(err as NodeJS.ErrnoException).code ?? 'error'})`)
    }
  }
  // http-01 is answered by the plain-HTTP listener; without one it cannot be.
  const available: Array<'http-01' | 'tls-alpn-01'> = tls.redirect === undefined ? ['tls-alpn-01'] : ['http-01', 'tls-alpn-01']
  const challenges = [...new Set(acme.challenges ?? available)]
  if (challenges.includes('http-01') && tls.redirect === undefined) {
    throw new ConfigError('listen.tls.acme.challenges', 'http-01 needs the plain-HTTP listener: set listen.tls.redirect.port (80 for a public CA)')
  }
  if (challenges.includes('http-01') && tls.redirect?.acme_dir !== undefined) {
    throw new ConfigError('listen.tls.redirect.acme_dir', 'give it (tokens written by another ACME client) or listen.tls.acme with http-01, not both')
  }
  const eab = acme.external_account_binding
  if (eab !== undefined && !/^[A-Za-z0-9_-]+={0,2}$/.test(eab.hmac)) {
    throw new ConfigError('listen.tls.acme.external_account_binding.hmac', 'expected the base64url HMAC key the CA gave')
  }
  const storage = acme.storage ?? defaultStorage()
  checkStorage(storage, acme.storage === undefined ? 'listen.tls.acme.storage (default)' : 'listen.tls.acme.storage')
  const retryFirstMs = durationMs(acme.retry.first)
  const retryMaxMs = durationMs(acme.retry.max)
  if (retryMaxMs < retryFirstMs) throw new ConfigError('listen.tls.acme.retry.max', 'shorter than retry.first')
  return {
    domains,
    email: acme.email ?? null,
    directoryUrl,
    directoryCa,
    storage,
    challenges,
    renewBeforeMs: acme.renew_before === undefined ? null : durationMs(acme.renew_before),
    retryFirstMs,
    retryMaxMs,
    eab: eab === undefined ? null : { kid: eab.kid, hmac: eab.hmac }
  }
}
