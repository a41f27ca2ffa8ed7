// RFC 9209 Proxy-Status: which proxy answered and why, in a form any HTTP client can
// read from the headers alone. One list member per proxy; ours names the edge, the IANA
// error type the classification table chose, the pool as next hop (never an address),
// and for some types the parameters the registry defines (a DNS rcode, a TLS alert).
// Serialized with `structured-headers` (RFC 8941/9651): strings quoted and escaped, and
// nothing a client sent is ever reflected.

import { Token, isValidTokenStr, serializeList, type Item } from 'structured-headers'
import type { Classification } from '../status/classify.js'
import { causeChain, detailsOf } from '../status/errors.js'

export interface ProxyStatusOptions {
  /** The edge's name: a token when it can be one, a string otherwise. */
  edgeName: string
}

type Params = Map<string, string | number | Token>

/** getaddrinfo can only tell "no such name" from "no address for it" and "the resolver failed". */
const RCODES: Record<string, string> = {
  ENOTFOUND: 'NXDOMAIN',
  EAI_NONAME: 'NXDOMAIN',
  ENODATA: 'NOERROR',
  EAI_NODATA: 'NOERROR',
  ESERVFAIL: 'SERVFAIL',
  EAI_FAIL: 'SERVFAIL'
}

/** TLS alert descriptions (RFC 8446 §6, RFC 5246 §7.2) by the name OpenSSL gives them. */
const ALERTS: Record<string, number> = {
  close_notify: 0,
  unexpected_message: 10,
  bad_record_mac: 20,
  record_overflow: 22,
  handshake_failure: 40,
  bad_certificate: 42,
  unsupported_certificate: 43,
  certificate_revoked: 44,
  certificate_expired: 45,
  certificate_unknown: 46,
  illegal_parameter: 47,
  unknown_ca: 48,
  access_denied: 49,
  decode_error: 50,
  decrypt_error: 51,
  protocol_version: 70,
  insufficient_security: 71,
  internal_error: 80,
  inappropriate_fallback: 86,
  user_canceled: 90,
  missing_extension: 109,
  unsupported_extension: 110,
  unrecognized_name: 112,
  bad_certificate_status_response: 113,
  unknown_psk_identity: 115,
  certificate_required: 116,
  no_application_protocol: 120
}

const codeIn = (err: unknown, test: (code: string) => boolean): string | null => {
  for (const e of causeChain(err)) {
    const code = (e as { code?: unknown }).code
    if (typeof code === 'string' && test(code)) return code
  }
  return null
}

/** The registry's extra parameters of this error type, from the error that caused it. */
function typeParams (c: Pick<Classification, 'proxyStatus'>, err: unknown, params: Params): void {
  if (c.proxyStatus === 'dns_error') {
    const code = codeIn(err, k => k in RCODES)
    if (code !== null) params.set('rcode', RCODES[code] as string)
  } else if (c.proxyStatus === 'tls_alert_received') {
    // Node names the alert in its error code: ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION.
    const code = codeIn(err, k => k.includes('_ALERT_'))
    const name = code?.slice(code.indexOf('_ALERT_') + 7).toLowerCase() ?? null
    if (name !== null && name in ALERTS) {
      params.set('alert-id', ALERTS[name] as number)
      params.set('alert-message', name)
    }
  }
}

/**
 * How many failure members are kept at most: the table's texts and the pools make few, but
 * an origin's condition carries counts that change.
 */
const FAILURES_MAX = 256

/** A failure's words with the origin's condition after them, when there is one. */
const withNote = (c: Pick<Classification, 'proxyStatus' | 'why'>, note: string | null): Pick<Classification, 'proxyStatus' | 'why'> =>
  note === null ? c : { proxyStatus: c.proxyStatus, why: `${c.why}; ${note}` }

export class ProxyStatus {
  private readonly name: Token | string
  /** Members that depend on nothing but the status the origin sent: built once each. */
  private readonly relayed = new Map<number, string>()

  constructor (opts: ProxyStatusOptions) {
    this.name = isValidTokenStr(opts.edgeName) ? new Token(opts.edgeName) : opts.edgeName
  }

  /**
   * Members of failures whose type takes no parameter from the error: they depend only on
   * table texts, the pool, the edge's details and the origin's condition, so there are few
   * of them, and a 522 storm serialized the same one a thousand times.
   */
  private readonly failures = new Map<string, string>()
  /** The last failure's member and what it was made of. */
  private last: { proxyStatus: string | null, why: string, nextHop: string | null, receivedStatus: number | null, note: string | null,
    details: string | null, member: string } | null = null

  /** Our member for an answer the edge made itself. */
  forFailure (c: Pick<Classification, 'proxyStatus' | 'why'>, err: unknown, nextHop: string | null, receivedStatus: number | null = null,
    note: string | null = null): string {
    const details = detailsOf(err)
    if (c.proxyStatus === 'dns_error' || c.proxyStatus === 'tls_alert_received') {
      return this.failure(withNote(c, note), err, nextHop, receivedStatus, details)
    }
    // A storm answers one failure a thousand times: the same words as the last answer (the
    // condition's words are made once per change) are its member again, without building
    // and hashing a key. (The two types above take parameters from the error itself.)
    const last = this.last
    if (last !== null && last.proxyStatus === c.proxyStatus && last.why === c.why && last.nextHop === nextHop &&
      last.receivedStatus === receivedStatus && last.note === note && last.details === details) return last.member
    const key = `${c.proxyStatus ?? ''}\n${c.why}\n${nextHop ?? ''}\n${receivedStatus ?? ''}\n${note ?? ''}\n${details ?? ''}`
    let member = this.failures.get(key)
    if (member === undefined) {
      if (this.failures.size >= FAILURES_MAX) this.failures.clear()
      member = this.failure(withNote(c, note), err, nextHop, receivedStatus, details)
      this.failures.set(key, member)
    }
    this.last = { proxyStatus: c.proxyStatus, why: c.why, nextHop, receivedStatus, note, details, member }
    return member
  }

  private failure (c: Pick<Classification, 'proxyStatus' | 'why'>, err: unknown, nextHop: string | null, receivedStatus: number | null,
    extra: string | null): string {
    const params: Params = new Map()
    if (c.proxyStatus !== null) params.set('error', new Token(c.proxyStatus))
    if (nextHop !== null) params.set('next-hop', nextHop)
    if (receivedStatus !== null) params.set('received-status', receivedStatus)
    typeParams(c, err, params)
    // The why is the table's own text, never anything a client sent; so are the extra details.
    params.set('details', (extra === null ? c.why : `${c.why}; ${extra}`).replace(/\u2013/g, '-').replace(/[^\x20-\x7e]/g, ''))
    return this.member(params)
  }

  /** Our member for an origin's answer passed on: what status the origin sent. */
  forRelayed (originStatus: number): string {
    let member = this.relayed.get(originStatus)
    if (member === undefined) {
      member = this.member(new Map([['received-status', originStatus]]))
      this.relayed.set(originStatus, member)
    }
    return member
  }

  private member (params: Params): string {
    return serializeList([[this.name, params] as Item])
  }
}

/** Proxies closer to the origin listed first: ours is appended to what the origin sent. */
export function appendMember (existing: string | string[] | undefined, member: string): string {
  if (existing === undefined || existing === '') return member
  return `${Array.isArray(existing) ? existing.join(', ') : existing}, ${member}`
}
