// Every fault the lab can make, by its stable key, with the knobs it takes.

import type { TestCertificate } from './certificates.js'
import {
  dnsFailureOrigin, drowningOrigin, emptyOrigin, garbageOrigin, hugeHeadersOrigin, refusedOrigin, resetOrigin,
  silentOrigin, synDropOrigin, unreachableOrigin, type DrowningKnobs, type HugeHeadersKnobs, type ResetKnobs, type SilentKnobs
} from './faults.js'
import {
  keepaliveCutOrigin, refuseAfterOrigin, slowOrigin, trickleOrigin,
  type KeepaliveCutKnobs, type RefuseAfterKnobs, type SlowKnobs, type TrickleKnobs
} from './http-faults.js'
import type { LabOrigin } from './loopback.js'
import { expiredCertificateOrigin, plainOnTlsOrigin, tlsOrigin, wrongNameOrigin, type WrongNameKnobs } from './tls-faults.js'

/** A fault that has nothing to tune. */
export type NoKnobs = Record<string, never>

/** The knobs of each fault, by its key. */
export interface FaultKnobs {
  /** Reads the request, then resets the connection (RST). */
  '520-reset': ResetKnobs
  /** Reads the request, then closes the connection without a byte. */
  '520-empty': NoKnobs
  /** Answers with bytes that are not HTTP. */
  '520-garbage': NoKnobs
  /** Answers with response headers larger than an edge accepts (128 KiB). */
  '520-headers': HugeHeadersKnobs
  /** A port nobody listens on: connections are refused (RST to the SYN). */
  '521': NoKnobs
  /** Answers a few requests, then stops listening: new connections are refused. */
  '521-after': RefuseAfterKnobs
  /** A full accept queue: SYNs are dropped, connects time out. A child process, tethered to this one. */
  '522': NoKnobs
  /** A loopback address routed "unreachable" (needs CAP_NET_ADMIN; a guard process removes the route). */
  '523': NoKnobs
  /** Reads the request and never answers. */
  '524': SilentKnobs
  /** Plain HTTP where TLS is expected (its URL is https). */
  '525': NoKnobs
  /** TLS with a self-signed certificate. */
  '526': NoKnobs
  /** TLS with a certificate that expired (issued by the lab's CA, in `ca`). */
  '526-expired': NoKnobs
  /** TLS with a certificate for another host name (issued by the lab's CA, in `ca`). */
  '526-name': WrongNameKnobs
  /** A host name no resolver answers; refused by the local resolver, no query leaves the machine. */
  '530': NoKnobs
  /** Answers 200, after a fixed delay before the response headers. */
  'slow': SlowKnobs
  /** Answers 200 at once, then trickles its body: a few bytes at a time. */
  'trickle': TrickleKnobs
  /** Offers keep-alive, then closes a connection under the request after N on it. */
  'keepalive-cut': KeepaliveCutKnobs
  /**
   * Serves one request at a time, `service_ms` each, with a small listen backlog: under more
   * load than 1000 / service_ms req/s it queues, then the kernel drops SYNs. A child process.
   */
  'drowning': DrowningKnobs
}

export type FaultName = keyof FaultKnobs

export interface StartContext {
  /** The lab's CA, made on first use and shared by the faults it signs for. */
  authority: () => Promise<TestCertificate>
}

type Starters = { readonly [K in FaultName]: (knobs: FaultKnobs[K], ctx: StartContext) => Promise<LabOrigin> }

export const STARTERS: Starters = {
  '520-reset': resetOrigin,
  '520-empty': emptyOrigin,
  '520-garbage': garbageOrigin,
  '520-headers': hugeHeadersOrigin,
  '521': refusedOrigin,
  '521-after': refuseAfterOrigin,
  '522': () => synDropOrigin(),
  '523': unreachableOrigin,
  '524': silentOrigin,
  '525': plainOnTlsOrigin,
  '526': () => tlsOrigin(),
  '526-expired': async (_knobs, ctx) => expiredCertificateOrigin(await ctx.authority()),
  '526-name': async (knobs, ctx) => wrongNameOrigin(await ctx.authority(), knobs),
  '530': async () => dnsFailureOrigin(),
  'slow': slowOrigin,
  'trickle': trickleOrigin,
  'keepalive-cut': keepaliveCutOrigin,
  'drowning': knobs => drowningOrigin(knobs)
}

/** Every fault, in status order (as object keys, '521' would come before '520-reset'). */
export const FAULT_NAMES = [
  '520-reset', '520-empty', '520-garbage', '520-headers', '521', '521-after', '522', '523', '524',
  '525', '526', '526-expired', '526-name', '530', 'slow', 'trickle', 'keepalive-cut', 'drowning'
] as const satisfies readonly FaultName[]
