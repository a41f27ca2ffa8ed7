// The copies Always online answers from: one store per process, bounded in bytes
// (lru-cache with a size calculation evicts the least recently used), shared by every
// route that turns stale_if_error on. A key is route, host and target; it holds the
// variants the origin's Vary asked for (a few at most: the oldest goes first).

import { LRUCache } from 'lru-cache'
import type { CopyTerms } from './copy-rules.js'

export interface StoredCopy {
  readonly route: string
  /** Path and query, as the client asked. */
  readonly target: string
  readonly status: number
  readonly text: string
  /** The origin's headers as relayed, flat, without the edge's own. */
  readonly headers: readonly string[]
  readonly body: Buffer
  readonly terms: CopyTerms
  /** Bytes charged to the store. */
  readonly size: number
}

/** Variants kept per key: `Vary: Accept-Language` needs a few, not one per client. */
const MAX_VARIANTS = 4
/** What a copy costs beyond its body and headers: the policy object, the key, the arrays. */
const OVERHEAD_BYTES = 1024

export interface StoreSummary { entries: number, bytes: number, max_bytes: number, max_entry_bytes: number }

export const copySize = (headers: readonly string[], body: Buffer): number => {
  let n = OVERHEAD_BYTES + body.length
  for (const h of headers) n += h.length
  return n
}

export class StaleStore {
  private readonly lru: LRUCache<string, StoredCopy[]> | null

  constructor (readonly maxBytes: number, readonly maxEntryBytes: number) {
    // lru-cache refuses a zero maxSize: a store of no bytes keeps nothing.
    this.lru = maxBytes === 0
      ? null
      : new LRUCache<string, StoredCopy[]>({
        maxSize: maxBytes,
        sizeCalculation: variants => variants.reduce((n, v) => n + v.size, 0)
      })
  }

  static key (route: string, host: string, target: string): string {
    return `${route}\n${host}\n${target}`
  }

  /** Variants stored under this key, most recent first. */
  get (key: string): readonly StoredCopy[] | undefined {
    return this.lru?.get(key)
  }

  /** Keeps a copy; one that matches the same selecting headers replaces the old one. */
  put (key: string, copy: StoredCopy, sameVariant: (old: StoredCopy) => boolean): void {
    if (this.lru === null) return
    const old = this.lru.get(key, { updateAgeOnGet: false }) ?? []
    const variants = [copy, ...old.filter(v => !sameVariant(v))].slice(0, MAX_VARIANTS)
    this.lru.set(key, variants)
  }

  summary (): StoreSummary {
    return { entries: this.entries(), bytes: this.lru?.calculatedSize ?? 0, max_bytes: this.maxBytes, max_entry_bytes: this.maxEntryBytes }
  }

  /** Copies of a route (all routes: null) at a path (`/a` any query, `/a?q` that target; null: any). */
  purge (route: string | null, path: string | null): number {
    if (this.lru === null) return 0
    let purged = 0
    for (const [key, variants] of this.lru.entries()) {
      const copy = variants[0] as StoredCopy
      if (route !== null && copy.route !== route) continue
      if (path !== null && copy.target !== path && (path.includes('?') || copy.target.split('?', 1)[0] !== path)) continue
      purged += variants.length
      this.lru.delete(key)
    }
    return purged
  }

  private entries (): number {
    let n = 0
    if (this.lru !== null) for (const variants of this.lru.values()) n += variants.length
    return n
  }
}
