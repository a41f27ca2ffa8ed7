// The edge's own certificates, for its clients: read from PEM files and checked once
// (at start and on SIGHUP), so a missing file or a key that belongs to another
// certificate is one line naming the key, never a listener that fails its handshakes.
// Each certificate is picked by the names it carries itself: its subjectAltName DNS
// names, or its CN when it has none (SNI never carries an IP address, RFC 6066 §3).

import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto'
import { readFileSync } from 'node:fs'
import type { ServerCertificate } from './schema.js'
import { ConfigError } from '../status/errors.js'

function read (file: string, key: string): string {
  try {
    return readFileSync(file, 'utf8')
  } catch (err) {
    throw new ConfigError(key, `cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`)
  }
}

/** `DNS:a.example, IP Address:127.0.0.1, DNS:*.b.example` → the DNS names; else the CN. */
function namesOf (x509: X509Certificate): string[] {
  const dns = (x509.subjectAltName ?? '').split(', ').filter(n => n.startsWith('DNS:')).map(n => n.slice(4).toLowerCase())
  if (dns.length > 0) return dns
  const cn = /^CN=(.+)$/m.exec(x509.subject)
  return cn === null ? [] : [(cn[1] as string).toLowerCase()]
}

/** A certificate and its key from PEM text; `certKey` and `keyKey` name where they came from. */
export function certificateOf (cert: string, key: string, certKey: string, keyKey: string): ServerCertificate {
  let x509: X509Certificate
  try {
    x509 = new X509Certificate(cert)
  } catch (err) {
    throw new ConfigError(certKey, `not a PEM certificate (${(err as Error).message})`)
  }
  let privateKey: KeyObject
  try {
    privateKey = createPrivateKey(key)
  } catch (err) {
    throw new ConfigError(keyKey, `not a PEM private key (${(err as Error).message})`)
  }
  if (!x509.checkPrivateKey(privateKey)) throw new ConfigError(keyKey, `does not match the certificate of ${certKey}`)
  return { cert, key, names: namesOf(x509), fingerprint: x509.fingerprint256, notAfter: Date.parse(x509.validTo) }
}

/** A certificate and key from their files. */
export function readCertificate (certFile: string, keyFile: string, certKey: string, keyKey: string): ServerCertificate {
  return certificateOf(read(certFile, certKey), read(keyFile, keyKey), `${certKey} (${certFile})`, `${keyKey} (${keyFile})`)
}
