// The TLS front door: HTTPS on the listener's port, with ALPN offering h2 and http/1.1
// (fastify's `http2: true, https: { allowHTTP1: true }`), certificates picked by SNI,
// swapped on reload for new connections, and each connection stamped with what it
// negotiated (edge/client-link.ts). HTTP/1.1 over TLS keeps every limit of plain
// HTTP/1.1: Node hands those connections to its HTTP/1 parser with the server's own
// settings, which are set here since Node's HTTP/2 server does not take them as options.

import type { IncomingHttpHeaders } from 'node:http'
import type { Http2SecureServer, Http2Session, SecureServerOptions, ServerHttp2Stream } from 'node:http2'
import type { Socket } from 'node:net'
import { createSecureContext, type SecureContext, type TLSSocket } from 'node:tls'
import type { AcmeCertificates } from './acme-certificates.js'
import type { Logger } from 'pino'
import type { ClientLimits, FrontDoor, ServerCertificate } from '../../config/schema.js'
import { stampTls } from '../../edge/client-link.js'
import type { RefusalOptions } from '../client-errors.js'
import type { StreamHandler } from '../plugin.js'
import { refuseConnect } from './http2-connect.js'
import { watchFirstRequest } from './first-request.js'
import { FrameBudget } from './frame-budget.js'
import { answerPlainHttpOn } from './plain-http.js'
import { ResetGuard } from './reset-guard.js'

/** What the HTTP/1 parser of an HTTP/2 server reads from the server object. */
export interface Http1Settings {
  maxHeaderSize: number
  headersTimeout: number
  requestTimeout: number
  keepAliveTimeout: number
  connectionsCheckingInterval: number
  requireHostHeader: boolean
}

/** The names of a certificate set: exact names, and `*.example.com` kept as `.example.com`. */
class CertificateSet {
  private readonly exact = new Map<string, SecureContext>()
  private readonly wildcard = new Map<string, SecureContext>()
  /** The default certificate's own names (exact, and wildcards as `.example.com`). */
  private readonly defaultNames = new Set<string>()

  constructor (certificates: readonly ServerCertificate[], minVersion: FrontDoor['minVersion'], ciphers: string) {
    for (const name of certificates[0]?.names ?? []) this.defaultNames.add(name.startsWith('*.') ? name.slice(1) : name)
    // The first is the server's default context; the others are what SNI can pick. A
    // name on two certificates goes to the first that has it.
    for (const c of certificates.slice(1)) {
      const context = secureContextOf(c, minVersion, ciphers)
      for (const name of c.names) {
        const [map, key] = name.startsWith('*.') ? [this.wildcard, name.slice(1)] : [this.exact, name]
        if (!map.has(key)) map.set(key, context)
      }
    }
  }

  /** The context for a server name; undefined: the default certificate. */
  pick (servername: string): SecureContext | undefined {
    const name = servername.toLowerCase()
    return this.exact.get(name) ?? (this.wildcard.size === 0 ? undefined : this.wildcard.get(name.slice(name.indexOf('.'))))
  }

  /** Whether a configured certificate (the default included) carries this (lower-case) name. */
  covers (name: string): boolean {
    const parent = name.slice(name.indexOf('.'))
    return this.exact.has(name) || this.wildcard.has(parent) || this.defaultNames.has(name) || this.defaultNames.has(parent)
  }
}

export class TlsFront {
  private certificates: CertificateSet
  private server: Http2SecureServer | null = null
  private refusals: RefusalOptions | null = null
  /** Node's compatibility 'stream' listener(s), found when the server was made (attach). */
  private compatStream: Array<(...args: unknown[]) => void> = []
  private readonly sessions = new Set<Http2Session>()
  private readonly guard: ResetGuard
  private readonly frames: FrameBudget

  /** Certificates obtained by ACME (listen/tls/acme.ts fills it); null: no ACME. */
  acme: AcmeCertificates | null = null

  constructor (private config: FrontDoor, private readonly log: Logger) {
    if (config.certificates.length === 0 && config.acme === null) throw new Error('TlsFront needs a certificate (make the self-signed one first) or ACME names')
    this.certificates = new CertificateSet(config.certificates, config.minVersion, config.ciphers)
    this.guard = new ResetGuard(config.http2, log)
    this.frames = new FrameBudget(config.http2.maxIdleFrames, log)
  }

  get http2 (): boolean { return this.config.http2.enabled }
  get idleTimeoutMs (): number { return this.config.http2.idleTimeoutMs }

  /** Fastify's server options for this front door, with the HTTP/1 settings (for https without h2). */
  serverOptions (http1: Http1Settings, maxHeaderCount: number): SecureServerOptions & Partial<Http1Settings> {
    const h2 = this.config.http2
    return {
      ...contextOf(this.config),
      ...http1,
      allowHTTP1: true,
      // A handshake is part of the request's headers as far as a slowloris goes (Node's default: 120 s).
      handshakeTimeout: http1.headersTimeout,
      SNICallback: this.sniCallback(),
      // Only with tls-alpn-01: Node's own ALPN choice cannot see "acme-tls/1".
      ...(this.config.acme?.challenges.includes('tls-alpn-01') === true ? { ALPNCallback: this.alpnCallback() } : {}),
      settings: { maxConcurrentStreams: h2.maxConcurrentStreams, maxHeaderListSize: http1.maxHeaderSize },
      // Node resets a stream past this many header fields (pseudo-headers included);
      // below it, the edge's own check answers 431 as over HTTP/1.1.
      maxHeaderListPairs: 2 * maxHeaderCount + 8
    }
  }

  private sniCallback (): (this: TLSSocket, servername: string, done: (err: Error | null, context?: SecureContext) => void) => void {
    if (this.config.acme === null) return (servername, done) => done(null, this.certificates.pick(servername))
    const front = this
    return function (this: TLSSocket, servername, done) { front.pickWithAcme(this, servername, done) }
  }

  /** A configured certificate wins; then an ACME name's; then the default (none with ACME alone). */
  private pickWithAcme (socket: TLSSocket, servername: string, done: (err: Error | null, context?: SecureContext) => void): void {
    const acme = this.acme
    const name = servername.toLowerCase()
    // A CA's tls-alpn-01 validation first: it must see the challenge, also for a name a
    // configured certificate covers.
    if (acme !== null && acme.isValidation(socket)) acme.answerValidation(name, done)
    else if (acme === null || this.certificates.covers(name) || !acme.has(name)) done(null, this.certificates.pick(name))
    else acme.pick(name, socket, done)
  }

  /** Node calls it with the socket as `this`. */
  private alpnCallback (): (this: TLSSocket, info: { servername: string, protocols: string[] }) => string | undefined {
    const front = this
    return function (this: TLSSocket, { protocols }) {
      return front.acme === null ? undefined : front.acme.alpn(this, protocols, front.http2)
    }
  }

  /** A context for a certificate, with the listener's protocol floor (ACME's certificates). */
  contextFor (c: { cert: string, key: string }): SecureContext { return secureContextOf(c, this.config.minVersion, this.config.ciphers) }

  /** Once the server exists: stamps, HTTP/1 settings, sessions. */
  attach (server: Http2SecureServer, http1: Http1Settings, refusals: RefusalOptions): void {
    this.server = server
    this.refusals = refusals
    // Fastify made the server with its request handler (`createSecureServer(options,
    // handler)`), and Node, on that first 'request' listener, added its compatibility
    // listener for 'stream' (the one that turns each stream into a 'request'). Called right
    // after the server is made, before any plugin runs, these are the only 'stream'
    // listeners: remember exactly them, so serveStreams removes those and nothing another
    // part added, whatever comes later.
    if (server.listenerCount('request') === 0) throw new Error('TlsFront.attach: the server has no request listener yet (Node adds its HTTP/2 compatibility listener with the first one)')
    this.compatStream = server.listeners('stream') as Array<(...args: unknown[]) => void>
    Object.assign(server, http1)
    server.on('secureConnection', (socket: TLSSocket) => stampTls(socket))
    answerPlainHttpOn(server, refusals)
    if (!this.http2) return
    server.on('session', (session: Http2Session) => {
      this.sessions.add(session)
      session.once('close', () => this.sessions.delete(session))
      this.guard.watch(session)
      this.frames.watch(session)
      watchFirstRequest(session, http1.headersTimeout, refusals)
    })
  }

  /**
   * HTTP/2 streams go to the edge directly, not through Node's compatibility API and
   * Fastify's routing (edge/stream-request.ts says why): Node's compatibility listener,
   * found at attach, goes; HTTP/1.1 connections, which Node hands to 'request' itself, do
   * not need it. Any other 'stream' listener stays, whenever it was added.
   */
  serveStreams (serve: StreamHandler): void {
    const server = this.server
    const refusals = this.refusals
    if (server === null || refusals === null) throw new Error('serveStreams before attach')
    for (const listener of this.compatStream) server.off('stream', listener)
    this.compatStream = []
    server.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, _flags: number, rawHeaders: string[]) => {
      // Node's proxy of the TLS socket: where the connection's stamp and addresses are read.
      const socket = (stream.session as Http2Session).socket as Socket
      if (headers[':method'] === 'CONNECT') refuseConnect(stream, headers, socket, refusals)
      else serve(stream, headers, rawHeaders, socket)
    })
  }

  /** New certificates for new connections; connections already open keep theirs. */
  reload (config: FrontDoor): void {
    const server = this.server
    if (server === null) return
    this.certificates = new CertificateSet(config.certificates, config.minVersion, config.ciphers)
    // Session tickets issued before the reload still resume.
    server.setSecureContext({ ...contextOf(config), ticketKeys: server.getTicketKeys() })
    this.config = config
    this.log.info({ certificates: config.certificates.map(c => ({ names: c.names, fingerprint: c.fingerprint })) }, 'certificates reloaded')
  }

  /** Draining: every HTTP/2 session gets GOAWAY; its open streams may finish. */
  drain (): void {
    for (const session of this.sessions) if (!session.closed) session.close()
  }
}

function secureContextOf (c: { cert: string, key: string }, minVersion: FrontDoor['minVersion'], ciphers: string): SecureContext {
  return createSecureContext({ cert: c.cert, key: c.key, minVersion, ciphers })
}

/**
 * The default certificate, protocol floor and cipher list (listen.tls.ciphers); session tickets on.
 * With ACME names alone there is no default certificate: a client without SNI, or with
 * a name the edge has no certificate for, fails its handshake.
 */
function contextOf (config: FrontDoor): { cert?: string, key?: string, minVersion: FrontDoor['minVersion'], ciphers: string } {
  const first = config.certificates[0]
  const base = { minVersion: config.minVersion, ciphers: config.ciphers }
  return first === undefined ? base : { cert: first.cert, key: first.key, ...base }
}
