// Ray ids: 16 lowercase hex from a pool of random bytes refilled in bulk, because
// asking the CSPRNG for 8 bytes per request costs more than the rest of the id.

import { randomFillSync } from 'node:crypto'

const POOL_IDS = 4096
const pool = Buffer.alloc(POOL_IDS * 8)
let offset = pool.length

export function newRayId (): string {
  if (offset >= pool.length) {
    randomFillSync(pool)
    offset = 0
  }
  const id = pool.toString('hex', offset, offset + 8)
  offset += 8
  return id
}

const RAY_ID = /^[0-9a-f]{16}$/

export function isRayId (value: string): boolean {
  return RAY_ID.test(value)
}

// The `cf-ray` value as a visitor copies it: the id, a dash and the edge's name (`edge.name`).
const RAY_HEADER = /^([0-9a-f]{16})-[A-Za-z0-9]{1,8}$/

/**
 * The ray id in what someone looks up: the bare id, or the whole `cf-ray` header value
 * (`<id>-HPX`, whatever the edge is named). Null when it is neither.
 */
export function rayIdIn (value: string): string | null {
  if (RAY_ID.test(value)) return value
  return RAY_HEADER.exec(value)?.[1] ?? null
}

/** The header value: `<16 hex>-<EDGE>`, Cloudflare's `cf-ray` shape. */
export function rayHeaderValue (ray: string, edge: string): string {
  return `${ray}-${edge}`
}
