// The front door as the CLI runs it: the TLS listener's certificates (a self-signed one
// made first when asked), the optional plain-HTTP redirect listener, and what a reload
// or a stop does to them.

import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Logger } from 'pino'
import type { EdgeConfig, FrontDoor } from '../config/schema.js'
import { AccessLog } from '../edge/access-log.js'
import { startRedirect } from './redirect.js'
import { withSelfSigned } from './selfsigned.js'
import { TlsFront } from './tls-listener.js'

export interface Front {
  tls: TlsFront
  /** Starts the redirect listener, when configured, once the TLS port is known. */
  listenRedirect: (httpsPort: number, edge: EdgeConfig) => Promise<void>
  readonly redirectUrl: string | null
  /** For the "listening" line: what each certificate is served for. */
  describe: () => { tls: { certificates: Array<{ names: string[], fingerprint: string }>, http2: boolean, min_version: string } }
  /** SIGHUP: new certificates, when the reloaded config still has TLS from files. */
  reload: (next: FrontDoor | null) => void
  close: () => Promise<void>
}

export async function startFront (config: FrontDoor, logger: Logger): Promise<Front> {
  const front = config.selfsigned ? await withSelfSigned(config) : config
  const tls = new TlsFront(front, logger)
  let redirect: Server | null = null
  return {
    tls,
    async listenRedirect (httpsPort, edge) {
      const r = front.redirect
      if (r === null) return
      redirect = await startRedirect({
        host: r.host, port: r.port, httpsPort, acmeDir: r.acmeDir, rayHeader: edge.rayHeader, edgeName: edge.edgeName, access: new AccessLog(logger, edge.logFields)
      })
    },
    get redirectUrl () {
      const address = redirect?.address() as AddressInfo | null | undefined
      if (address === null || address === undefined) return null
      return `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`
    },
    describe: () => ({
      tls: {
        certificates: front.certificates.map(c => ({ names: c.names, fingerprint: c.fingerprint })),
        http2: front.http2.enabled,
        min_version: front.minVersion
      }
    }),
    reload (next) {
      if (next === null || next.selfsigned || config.selfsigned) return
      tls.reload(next)
    },
    close: () => new Promise<void>(resolve => {
      if (redirect === null) { resolve(); return }
      redirect.close(() => resolve())
      redirect.closeIdleConnections()
    })
  }
}
