// Fault injection on demand: `x-highproxy-fault: 522` (optionally `;percent=30`) makes
// the edge answer as if that fault happened, without touching the origin, so a client
// can rehearse its retry and error handling against every edge status.

import type { PoolConfig } from '../config/schema.js'
import { ORIGIN_FAULT_STATUSES, catalogEntry, type OriginFaultStatus } from '../errors/catalog.js'
import type { Classification, Phase } from '../errors/classify.js'
import { InjectedFaultError } from '../errors.js'
import type { FailureExtras } from './records.js'

export const FAULT_HEADER = 'x-highproxy-fault'

export interface FaultRequest {
  status: OriginFaultStatus
  /** Share of requests the fault applies to, 0–100. */
  percent: number
}

/** null when the header is absent or malformed (the caller logs and ignores it). */
export function parseFault (value: string | string[] | undefined): FaultRequest | null {
  if (typeof value !== 'string') return null
  const [statusPart = '', ...params] = value.split(';')
  const status = Number(statusPart.trim())
  if (!(ORIGIN_FAULT_STATUSES as readonly number[]).includes(status)) return null
  let percent = 100
  for (const param of params) {
    const [key, raw] = param.split('=')
    if (key?.trim() !== 'percent') return null
    percent = Number(raw?.trim())
    if (!Number.isFinite(percent) || percent < 0 || percent > 100) return null
  }
  return { status: status as OriginFaultStatus, percent }
}

export function applies (fault: FaultRequest, random: () => number = Math.random): boolean {
  return fault.percent >= 100 || random() * 100 < fault.percent
}

/** The phase each status would have failed in, had it been real. */
const PHASE: Record<OriginFaultStatus, Phase> = {
  520: 'response', 521: 'connect', 522: 'connect', 523: 'connect', 524: 'response', 525: 'tls', 526: 'tls', 530: 'dns'
}

export interface InjectedFailure {
  error: InjectedFaultError
  phase: Phase
  classification: Classification
  extras: FailureExtras
  /** 522 and 524 take as long as the real thing. */
  waitMs: number
}

export function injectedFailure (status: OriginFaultStatus, pool: PoolConfig): InjectedFailure {
  const waitMs = status === 522 ? pool.connectTimeoutMs : status === 524 ? pool.responseTimeoutMs : 0
  return {
    error: new InjectedFaultError(status),
    phase: PHASE[status],
    classification: { status, cause: status === 520 ? 'reset' : null, code: 'HPX_ERR_INJECTED', why: `injected: ${catalogEntry(status).title}`, known: true },
    extras: { injected: true, timings: status === 522 ? { connect_ms: waitMs } : {} },
    waitMs
  }
}
