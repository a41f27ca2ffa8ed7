// What the admin listener answers from: one process's own state (here), or, with
// --workers, the whole set of workers as the primary sees it (cluster-view.ts). The
// listener itself (admin/server.ts) only routes and writes replies.

import type { Registry } from 'prom-client'
import type { StaleStore } from '../cache/stale-store.js'
import { originsBody, type OriginRow } from './origins.js'
import type { RayStore } from './rays.js'

export interface Reply { status: number, body: unknown }

export interface AdminView {
  contentType: string
  /** Liveness. */
  health: () => Promise<Reply>
  /** Readiness: 503 while starting or draining. */
  ready: () => Promise<Reply>
  /** Prometheus text exposition. */
  metrics: () => Promise<string>
  /** The failure records of a (valid) ray id. */
  ray: (id: string) => Promise<Reply>
  /** Always online's store: copies and bytes. */
  cache: () => Promise<Reply>
  /** Drops the copies of a route at a path (null: any). */
  purge: (route: string | null, path: string | null) => Promise<Reply>
  /** Each pool's origins: condition, since, evidence, in flight, limit (origins.ts). */
  origins: () => Promise<Reply>
}

export const UNKNOWN_RAY: Reply = { status: 404, body: { error: 'unknown ray id' } }

export interface LocalState {
  registry: Registry
  rays: RayStore
  cache: StaleStore
  /** False while draining (or not yet listening). */
  ready: () => boolean
  /** Every configured origin, now (none given: an empty list). */
  origins?: () => OriginRow[]
}

export function localView (state: LocalState): AdminView {
  return {
    contentType: state.registry.contentType,
    health: async () => ({ status: 200, body: { status: 'ok' } }),
    ready: async () => state.ready()
      ? { status: 200, body: { status: 'ready' } }
      : { status: 503, body: { status: 'draining' } },
    metrics: () => state.registry.metrics(),
    ray: async id => {
      const attempts = state.rays.get(id)
      return attempts.length === 0 ? UNKNOWN_RAY : { status: 200, body: { ray_id: id, attempts } }
    },
    cache: async () => ({ status: 200, body: state.cache.summary() }),
    purge: async (route, path) => ({ status: 200, body: { purged: state.cache.purge(route, path) } }),
    origins: async () => ({ status: 200, body: originsBody(state.origins?.() ?? []) })
  }
}
