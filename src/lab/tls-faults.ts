// The TLS faults: no TLS where it is expected (525), and certificates that fail strict
// verification each for one reason (526). Each origin names the PEM that issued its
// certificate (`ca`), so a test can trust it and see that reason alone.

import http from 'node:http'
import https from 'node:https'
import { issuedCertificate, selfSignedCertificate, type TestCertificate } from './certificates.js'
import { serveOnLoopback, type LabOrigin, type OriginFacts } from './loopback.js'

/** 525: a plain HTTP server, dialled as https. */
export const plainOnTlsOrigin = (): Promise<LabOrigin> =>
  serveOnLoopback(http.createServer((_req, res) => res.end('plain http\n')),
    { key: '525', status: 525, description: 'speaks plain HTTP where TLS is expected', scheme: 'https' })

function tlsServer (pems: TestCertificate, facts: Omit<OriginFacts, 'status' | 'scheme'>): Promise<LabOrigin> {
  const server = https.createServer({ cert: pems.cert, key: pems.key }, (_req, res) => res.end('hello over TLS\n'))
  return serveOnLoopback(server, { ...facts, status: 526, scheme: 'https' })
}

/** 526: TLS with a certificate; by default a self-signed one, which is then its own `ca`. */
export async function tlsOrigin (certificate?: TestCertificate): Promise<LabOrigin> {
  const pems = certificate ?? await selfSignedCertificate()
  return tlsServer(pems, { key: '526', description: 'TLS with a self-signed certificate', ca: pems.cert })
}

/** 526: a certificate from the lab's CA for the right names, whose validity ended yesterday. */
export async function expiredCertificateOrigin (authority: TestCertificate): Promise<LabOrigin> {
  const pems = await issuedCertificate(authority, { validDays: [-30, -1] })
  return tlsServer(pems, { key: '526-expired', description: 'TLS with a certificate that expired yesterday (issued by the lab CA)', ca: authority.cert })
}

export interface WrongNameKnobs {
  /** The only name the certificate is for. Default `wrong-host.example`. */
  hostname?: string
}

/** 526: a valid certificate from the lab's CA, for another host name than the one dialled. */
export async function wrongNameOrigin (authority: TestCertificate, { hostname = 'wrong-host.example' }: WrongNameKnobs = {}): Promise<LabOrigin> {
  const pems = await issuedCertificate(authority, { names: [hostname] })
  return tlsServer(pems, { key: '526-name', description: `TLS with a certificate for ${hostname} only (issued by the lab CA)`, ca: authority.cert })
}
