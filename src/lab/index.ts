// `highproxy/lab`: the fault lab as a library, for other projects' tests. It starts the
// faults a test asks for, each for real on loopback, and closes all it started.

import { labAuthority } from './certificates.js'
import { FAULT_NAMES, STARTERS, type FaultKnobs, type FaultName, type StartContext } from './catalog.js'
import { healthyOrigin, type HealthyOriginOptions } from './healthy-origin.js'
import type { LabOrigin } from './loopback.js'
import type { ErrorCode } from '../status/errors.js'

export { FAULT_NAMES, type FaultKnobs, type FaultName, type NoKnobs } from './catalog.js'
export { UNRESOLVABLE_HOST, drowningOrigin, type DrowningKnobs, type HugeHeadersKnobs, type ResetKnobs, type SilentKnobs } from './faults.js'
export type { KeepaliveCutKnobs, RefuseAfterKnobs, SlowKnobs, TrickleKnobs } from './http-faults.js'
export type { HealthyOriginOptions, LabLink } from './healthy-origin.js'
export type { LabOrigin } from './loopback.js'
export type { WrongNameKnobs } from './tls-faults.js'

/** Fault keys, or fault keys with their knobs (`true`: the defaults). */
export type FaultSelection = readonly FaultName[] | { readonly [K in FaultName]?: FaultKnobs[K] | true }

/** The fault keys a selection names. */
export type Selected<S extends FaultSelection> = S extends readonly FaultName[] ? S[number] : keyof S & FaultName

export interface LabOptions<S extends FaultSelection = FaultSelection> {
  /** Which faults to start. Default: every one; those this machine cannot make are reported, not started. */
  faults?: S
  /** What the healthy origin (always started) reports. */
  healthy?: HealthyOriginOptions
}

export interface Lab<F extends FaultName = FaultName> {
  /** Each started origin's URL, by key, with `healthy`. */
  readonly urls: Readonly<Record<F | 'healthy', string>>
  /** Each started origin, by key: its status, description, availability and, for TLS, `ca`. */
  readonly origins: Readonly<Record<F | 'healthy', LabOrigin>>
  /** Closes every origin, child process and route the lab started. Safe to call twice. */
  close: () => Promise<void>
}

/** The `code` startLab rejects with when a fault named in `faults` cannot be made here (`reason` says why). */
export const LAB_UNAVAILABLE = 'HPX_ERR_LAB_UNAVAILABLE' satisfies ErrorCode
/** The `code` of startLab's TypeError for a fault the lab does not have. */
export const LAB_UNKNOWN_FAULT = 'HPX_ERR_LAB_UNKNOWN_FAULT' satisfies ErrorCode
/** The `code` startLab rejects with when a fault failed to start (its error is the `cause`). */
export const LAB_START = 'HPX_ERR_LAB_START' satisfies ErrorCode

const once = <T>(start: () => Promise<T>): () => Promise<T> => {
  let started: Promise<T> | undefined
  return () => (started ??= start())
}

function entries (faults: FaultSelection | undefined): Array<[FaultName, unknown]> {
  const list: Array<[string, unknown]> = faults === undefined || Array.isArray(faults)
    ? ((faults ?? FAULT_NAMES) as readonly string[]).map(name => [name, {}])
    : Object.entries(faults).map(([name, knobs]) => [name, knobs === true ? {} : knobs])
  for (const [name] of list) {
    if (!Object.hasOwn(STARTERS, name)) {
      throw Object.assign(new TypeError(`unknown lab fault "${name}"; the lab has ${FAULT_NAMES.join(', ')}`), { code: LAB_UNKNOWN_FAULT })
    }
  }
  return list as Array<[FaultName, unknown]>
}

/**
 * Starts the healthy origin and the faults asked for. Rejects (closing what it started)
 * if one fails to start, or if one named in `faults` cannot be made on this machine
 * (error code `HPX_ERR_LAB_UNAVAILABLE`).
 */
export async function startLab<const S extends FaultSelection = readonly FaultName[]> (options: LabOptions<S> = {}): Promise<Lab<Selected<S>>> {
  const wanted = entries(options.faults)
  const ctx: StartContext = { authority: once(labAuthority) }
  // Async, so that a starter that throws at once (bad knobs) rejects like one that fails
  // later, and what had started is closed again.
  const start = async (name: FaultName, knobs: unknown): Promise<LabOrigin> =>
    await (STARTERS[name] as (knobs: unknown, ctx: StartContext) => Promise<LabOrigin>)(knobs, ctx)
  const settled = await Promise.allSettled([healthyOrigin(options.healthy), ...wanted.map(([name, knobs]) => start(name, knobs))])
  const started = settled.flatMap(s => s.status === 'fulfilled' ? [s.value] : [])
  const close = once(async () => { await Promise.all(started.map(o => o.close())) })

  const failedAt = settled.findIndex(s => s.status === 'rejected')
  const failed = settled[failedAt] as PromiseRejectedResult | undefined
  const missing = options.faults === undefined ? undefined : started.find(o => !o.available)
  if (failed !== undefined || missing !== undefined) {
    await close()
    if (failed !== undefined) {
      const name = failedAt === 0 ? 'healthy' : (wanted[failedAt - 1] as [FaultName, unknown])[0]
      const reason = failed.reason as { message?: unknown }
      throw Object.assign(new Error(`lab fault ${name} could not start: ${String(reason?.message ?? reason)}`, { cause: failed.reason }),
        { code: LAB_START, fault: name })
    }
    throw Object.assign(new Error(`lab fault ${missing?.key ?? ''} cannot be made here: ${missing?.reason ?? ''}`),
      { code: LAB_UNAVAILABLE, reason: missing?.reason })
  }
  type Key = Selected<S> | 'healthy'
  return {
    urls: Object.fromEntries(started.map(o => [o.key, o.url])) as Record<Key, string>,
    origins: Object.fromEntries(started.map(o => [o.key, o])) as Record<Key, LabOrigin>,
    close
  }
}

// The Toxiproxy-compatible API (docs/toxiproxy.md): its own server, TCP proxies and toxics.
export { startToxiproxy, TOXIPROXY_VERSION, type ToxiproxyOptions, type ToxiproxyServer } from './toxiproxy/api.js'
