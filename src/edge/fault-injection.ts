// Fault injection on demand: `x-highproxy-fault: 522` (optionally `;percent=30`) makes
// the edge answer as if that fault happened, without touching the origin, so a client
// can rehearse its retry and error handling against every edge status.

import { ORIGIN_FAULT_STATUSES, type OriginFaultStatus } from '../errors/catalog.js'

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
