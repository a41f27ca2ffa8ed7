// The front door as the CLI runs it: the TLS listener's certificates (a self-signed one
// made first when asked), the optional plain-HTTP redirect listener, and what a reload
// or a stop does to them.

import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Logger } from 'pino'
import type { EdgeConfig, FrontDoor } from '../../config/schema.js'
import { AccessLog } from '../../edge/access-log.js'
import { AcmeCertificates } from './acme-certificates.js'
import { AcmeManager, type AcmeHooks } from './acme.js'
import { AcmeStore } from './acme-store.js'
import { startRedirect } from './redirect.js'
import { withSelfSigned } from './selfsigned.js'
import { TlsFront } from './tls-listener.js'

export interface Front {
  tls: TlsFront
  /** Starts the redirect listener, when configured, once the TLS port is known. */
  listenRedirect: (httpsPort: number, edge: EdgeConfig) => Promise<void>
  /** Once the listeners are up (a CA's validation connects to them): ACME in the background. */
  startAcme: (hooks: AcmeHooks) => void
  /** Every certificate served and when it expires, by name (the expiry metric). */
  expiries: () => Array<{ name: string, notAfter: number }>
  readonly redirectUrl: string | null
  /** For the "listening" line: what each certificate is served for. */
  describe: () => { tls: { certificates: Array<{ names: string[], fingerprint: string }>, acme: string[], http2: boolean, min_version: string } }
  /** SIGHUP: new certificates, when the reloaded config still has TLS from files. */
  reload: (next: FrontDoor | null) => void
  close: () => Promise<void>
}

export async function startFront (config: FrontDoor, logger: Logger): Promise<Front> {
  const front = config.selfsigned ? await withSelfSigned(config) : config
  const tls = new TlsFront(front, logger)
  let redirect: Server | null = null
  let manager: AcmeManager | null = null
  const acme = front.acme
  const store = acme === null ? null : new AcmeStore(acme.storage, acme.directoryUrl)
  if (acme !== null && store !== null) {
    tls.acme = new AcmeCertificates(acme.domains, store, c => tls.contextFor(c), logger)
    manager = new AcmeManager(acme, tls.acme, logger, store)
    // Certificates already stored are served from the first handshake on.
    manager.loadStored()
  }
  let current = front
  return {
    tls,
    async listenRedirect (httpsPort, edge) {
      const r = front.redirect
      if (r === null) return
      // http-01 answers come from the storage every worker shares.
      const acmeDir = r.acmeDir ?? (acme?.challenges.includes('http-01') === true && store !== null ? store.http01Dir : null)
      redirect = await startRedirect({
        host: r.host, port: r.port, httpsPort, acmeDir, rayHeader: edge.rayHeader, edgeName: edge.edgeName, access: new AccessLog(logger, edge.logFields)
      })
    },
    startAcme (hooks) {
      manager?.start(hooks)
    },
    expiries: () => [
      ...current.certificates.flatMap(c => c.names.map(name => ({ name, notAfter: c.notAfter }))),
      ...(tls.acme?.expiries() ?? [])
    ],
    get redirectUrl () {
      const address = redirect?.address() as AddressInfo | null | undefined
      if (address === null || address === undefined) return null
      return `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`
    },
    describe: () => ({
      tls: {
        certificates: current.certificates.map(c => ({ names: c.names, fingerprint: c.fingerprint })),
        acme: acme?.domains ?? [],
        http2: front.http2.enabled,
        min_version: front.minVersion
      }
    }),
    reload (next) {
      if (next === null || next.selfsigned || config.selfsigned) return
      // listen.tls.acme is read at start only; a reload swaps the configured certificates.
      tls.reload(next)
      current = next
    },
    close: () => new Promise<void>(resolve => {
      manager?.stop()
      if (redirect === null) { resolve(); return }
      redirect.close(() => resolve())
      redirect.closeIdleConnections()
    })
  }
}
