// Who the client is. An edge trusts no one by default: the client is the TCP peer, and
// the X-Forwarded-For the origin gets starts at that peer. Behind a load balancer the
// operator lists its addresses in `client_ip.trusted_proxies`: for a request from such
// a peer, the client is the rightmost address of X-Forwarded-For that is not trusted
// (nginx's realip with `real_ip_recursive on`, Envoy's xff_num_trusted_hops), and the
// chain it sent is kept. proxy-addr (fastify's own, from jshttp) does the walk.

import proxyaddr from '@fastify/proxy-addr'
import type { IncomingMessage } from 'node:http'
import type { ClientLink } from './client-link.js'
import type { ClientFacts, ClientRequest } from './exchange.js'

export type Trust = (address: string, hop: number) => boolean

/** The trust function for a list of addresses and CIDRs; throws on one that is not. */
export function compileTrust (trusted: readonly string[]): Trust | null {
  return trusted.length === 0 ? null : proxyaddr.compile([...trusted])
}

export function clientFacts (req: ClientRequest, trust: Trust | null, link: ClientLink): ClientFacts {
  const peer = req.socket.remoteAddress ?? ''
  const { scheme, protocol, tls, log } = link
  if (trust === null || !trust(peer, 0)) {
    return { ip: peer, peer, forwardedFor: peer, forwardedProto: scheme, scheme, protocol, tls, log }
  }
  const prior = req.headers['x-forwarded-for']
  const proto = req.headers['x-forwarded-proto']
  return {
    // proxy-addr reads the peer and X-Forwarded-For only, which every request has.
    ip: proxyaddr(req as IncomingMessage, trust),
    peer,
    forwardedFor: prior === undefined || prior === '' ? peer : `${prior}, ${peer}`,
    forwardedProto: typeof proto === 'string' && proto !== '' ? proto : scheme,
    scheme,
    protocol,
    tls,
    log
  }
}
