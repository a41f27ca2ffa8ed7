// listen.tls and listen.http2, resolved: certificates read and checked, durations in ms.
// TLS is on when a default certificate is given (cert and key), `selfsigned` asks for
// one, or `acme` names domains to obtain certificates for; the other keys only mean
// something then, and saying otherwise is an error.

import { createSecureContext } from 'node:tls'
import { durationMs } from './duration.js'
import type { ConfigInput, FrontDoor } from './schema.js'
import { ConfigError } from '../status/errors.js'
import { resolveAcme } from './acme.js'
import { readCertificate } from './certificates.js'

export function resolveFrontDoor (listen: ConfigInput['listen']): FrontDoor | null {
  const tls = listen.tls
  if (tls.cert !== undefined && tls.key === undefined) throw new ConfigError('listen.tls.key', 'needed with listen.tls.cert')
  if (tls.key !== undefined && tls.cert === undefined) throw new ConfigError('listen.tls.cert', 'needed with listen.tls.key')
  if (tls.selfsigned && tls.cert !== undefined) throw new ConfigError('listen.tls.selfsigned', 'give listen.tls.cert and key, or selfsigned, not both')
  const acme = resolveAcme(tls)
  const on = tls.cert !== undefined || tls.selfsigned || acme !== null
  if (!on) {
    for (const key of ['sni', 'hsts', 'redirect'] as const) {
      const value = tls[key]
      if (value !== undefined && !(Array.isArray(value) && value.length === 0)) throw new ConfigError(`listen.tls.${key}`, 'needs TLS: give listen.tls.cert and key (or selfsigned, or acme)')
    }
    return null
  }
  const certificates = tls.cert === undefined ? [] : [readCertificate(tls.cert, tls.key as string, 'listen.tls.cert', 'listen.tls.key')]
  tls.sni.forEach((pair, i) => certificates.push(readCertificate(pair.cert, pair.key, `listen.tls.sni.${i}.cert`, `listen.tls.sni.${i}.key`)))
  const h2 = listen.http2
  return {
    certificates,
    selfsigned: tls.selfsigned,
    minVersion: tls.min_version,
    ciphers: checkedCiphers(tls.ciphers),
    hsts: tls.hsts ?? null,
    redirect: tls.redirect === undefined
      ? null
      : { port: tls.redirect.port, host: tls.redirect.host ?? listen.host, acmeDir: tls.redirect.acme_dir ?? null },
    acme,
    http2: {
      enabled: h2.enabled,
      maxConcurrentStreams: h2.max_concurrent_streams,
      idleTimeoutMs: durationMs(h2.idle_timeout),
      maxClientResets: h2.max_client_resets,
      clientResetWindowMs: durationMs(h2.client_reset_window),
      maxIdleFrames: h2.max_idle_frames
    }
  }
}

/** A cipher list OpenSSL accepts and that leaves at least one suite; otherwise exit 2 naming the key. */
function checkedCiphers (ciphers: string): string {
  try {
    createSecureContext({ ciphers })
  } catch (err) {
    throw new ConfigError('listen.tls.ciphers', `OpenSSL accepts no cipher in "${ciphers}" (${(err as Error).message})`)
  }
  return ciphers
}
