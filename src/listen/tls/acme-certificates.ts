// What the TLS listener asks about ACME names: "which certificate for this name". An
// ACME name with a certificate gets it; one still waiting for its first certificate gets
// a context with no certificate at all, so the handshake fails with an alert
// (handshake_failure) and the client never sees another name's certificate; a
// connection offering only "acme-tls/1" for a name with a tls-alpn-01 challenge in
// flight gets the challenge's certificate (RFC 8737), read from the storage every worker
// shares.

import { createSecureContext, type SecureContext, type TLSSocket } from 'node:tls'
import type { Logger } from 'pino'
import type { ServerCertificate } from '../../config/schema.js'
import type { AcmeStore } from './acme-store.js'

export const ACME_TLS_ALPN = 'acme-tls/1'

/** How often the "no certificate yet" line is written for one name. */
const PENDING_LOG_MS = 60_000

const H2_FIRST = ['h2', 'http/1.1']
const H1_ONLY = ['http/1.1']

const kAcmeAlpn = Symbol('highproxy.acmeAlpn')
type Marked = TLSSocket & { [kAcmeAlpn]?: boolean }

export class AcmeCertificates {
  private readonly served = new Map<string, { certificate: ServerCertificate, context: SecureContext }>()
  private readonly pendingLogged = new Map<string, number>()
  /** A context without a certificate: OpenSSL ends the handshake with an alert. */
  private readonly none: SecureContext

  constructor (
    readonly domains: readonly string[],
    private readonly store: AcmeStore,
    private readonly contextOf: (c: { cert: string, key: string }) => SecureContext,
    private readonly log: Logger
  ) {
    this.none = createSecureContext({})
  }

  has (name: string): boolean { return this.domains.includes(name) }

  /** Serve this certificate for its domain from the next handshake on. */
  set (domain: string, certificate: ServerCertificate): void {
    this.served.set(domain, { certificate, context: this.contextOf(certificate) })
    this.pendingLogged.delete(domain)
  }

  certificate (domain: string): ServerCertificate | null { return this.served.get(domain)?.certificate ?? null }

  /** For the expiry metric: each ACME name with a certificate. */
  expiries (): Array<{ name: string, notAfter: number }> {
    return [...this.served].map(([name, s]) => ({ name, notAfter: s.certificate.notAfter }))
  }

  /**
   * ALPN is chosen before the certificate (OpenSSL calls the ALPN callback first): a
   * client that offers acme-tls/1 is a CA's validation, marked here for `pick`. Others
   * get what Node would choose itself, the server's order (h2 first when enabled).
   */
  alpn (socket: TLSSocket, protocols: string[], http2: boolean): string | undefined {
    if (protocols.includes(ACME_TLS_ALPN)) {
      (socket as Marked)[kAcmeAlpn] = true
      return ACME_TLS_ALPN
    }
    return (http2 ? H2_FIRST : H1_ONLY).find(p => protocols.includes(p))
  }

  /** A CA's tls-alpn-01 validation (marked by the ALPN callback). */
  isValidation (socket: TLSSocket): boolean { return (socket as Marked)[kAcmeAlpn] === true }

  /** The challenge's certificate for a validation connection; none when no challenge is in flight. */
  answerValidation (name: string, done: (err: Error | null, context?: SecureContext) => void): void {
    void this.challenge(name).then(context => { done(null, context ?? this.none) })
  }

  /** The context for an ACME name (done is called once). */
  pick (name: string, socket: TLSSocket, done: (err: Error | null, context?: SecureContext) => void): void {
    const served = this.served.get(name)
    if (served !== undefined) { done(null, served.context); return }
    const now = Date.now()
    if (now - (this.pendingLogged.get(name) ?? 0) >= PENDING_LOG_MS) {
      this.pendingLogged.set(name, now)
      this.log.warn({
        msg: 'tls handshake refused',
        error: { code: 'HPX_ERR_ACME_PENDING', message: `no certificate for ${name} yet: its ACME order has not completed` },
        server_name: name,
        client: { address: socket.remoteAddress ?? null, port: socket.remotePort ?? null }
      })
    }
    done(null, this.none)
  }

  private async challenge (name: string): Promise<SecureContext | null> {
    const pem = await this.store.alpnCertificate(name)
    if (pem === null) return null
    try {
      return createSecureContext({ cert: pem, key: pem })
    } catch {
      return null
    }
  }
}
