// Fault injection on demand: `x-highproxy-fault: 522` (optionally `;percent=30`) makes
// the edge answer as if that fault happened, without touching the origin, so a client
// can rehearse its retry and error handling against every edge status. The injected
// error carries the code of the real fault, so the classification table, the page, the
// failure line and the metrics are those of the real thing (with `injected: true`).

import type { PoolConfig } from '../config/schema.js'
import { ORIGIN_FAULT_STATUSES, type OriginFaultStatus } from '../status/catalog.js'
import { InjectedFaultError, type ErrorCode, type Phase } from '../status/errors.js'

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

/** The code and phase each status would have failed with, had it been real. */
const REAL: Record<OriginFaultStatus, { code: ErrorCode | string, phase: Phase }> = {
  520: { code: 'ECONNRESET', phase: 'response' },
  521: { code: 'ECONNREFUSED', phase: 'connect' },
  522: { code: 'HPX_ERR_CONNECT_TIMEOUT', phase: 'connect' },
  523: { code: 'EHOSTUNREACH', phase: 'connect' },
  524: { code: 'HPX_ERR_RESPONSE_TIMEOUT', phase: 'response' },
  525: { code: 'HPX_ERR_TLS_HANDSHAKE', phase: 'tls' },
  526: { code: 'HPX_ERR_TLS_CERT', phase: 'tls' },
  530: { code: 'HPX_ERR_DNS', phase: 'dns' }
}

export interface InjectedFailure {
  error: InjectedFaultError
  phase: Phase
  /** 522 and 524 take as long as the real thing. */
  waitMs: number
}

export function injectedFailure (status: OriginFaultStatus, pool: PoolConfig): InjectedFailure {
  const real = REAL[status]
  return {
    error: new InjectedFaultError(status, real.code, real.phase),
    phase: real.phase,
    waitMs: status === 522 ? pool.connectTimeoutMs : status === 524 ? pool.responseTimeoutMs : 0
  }
}
