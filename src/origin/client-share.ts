// One client's share of an origin's connections (`connections.max_per_client`). The
// per-origin limit protects the origin; this protects the other visitors: without it, a
// single client (eleven HTTP/2 connections of 100 streams each, reading nothing) held
// every one of an origin's 1,024 connections, and everyone else waited 15 s for a 503.
// A client is its address (the one the edge decided is the client's, client-ip.ts). Each
// request in flight at an origin holds one connection, so its attempts are what is
// counted: past the share, a client's next request waits for one of its own to end (up
// to the pool's connect timeout, then HPX_ERR_CLIENT_SHARE, 503); nobody else waits
// behind it. A tunnelled WebSocket ends its attempt when it opens, and counts against
// `max_per_origin` only.

import { ClientShareError, withoutStack } from '../status/errors.js'

interface Waiter { resolve: () => void, reject: (err: Error) => void, timer: NodeJS.Timeout }

export class ClientShare {
  /** In-flight requests per client address. */
  private readonly held = new Map<string, number>()
  /** Requests of a client at its share, in order; at most `limit` of them wait. */
  private readonly waiting = new Map<string, Waiter[]>()

  constructor (readonly limit: number, private readonly waitMs: number) {}

  /** null: counted now; else a promise that resolves once counted, or rejects with ClientShareError. */
  enter (client: string): Promise<void> | null {
    const n = this.held.get(client) ?? 0
    if (n < this.limit) {
      this.held.set(client, n + 1)
      return null
    }
    let queue = this.waiting.get(client)
    if (queue === undefined) {
      queue = []
      this.waiting.set(client, queue)
    }
    if (queue.length >= this.limit) return Promise.reject(withoutStack(() => new ClientShareError(this.limit)))
    const waiters = queue
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        reject,
        timer: setTimeout(() => {
          const i = waiters.indexOf(waiter)
          if (i !== -1) waiters.splice(i, 1)
          if (waiters.length === 0 && this.waiting.get(client) === waiters) this.waiting.delete(client)
          reject(withoutStack(() => new ClientShareError(this.limit)))
        }, this.waitMs)
      }
      waiters.push(waiter)
    })
  }

  /** A request of `client` ended: its slot goes to its next waiting request, or is freed. */
  leave (client: string): void {
    const queue = this.waiting.get(client)
    const next = queue?.shift()
    if (next !== undefined) {
      if (queue?.length === 0) this.waiting.delete(client)
      clearTimeout(next.timer)
      next.resolve()
      return
    }
    const n = (this.held.get(client) ?? 1) - 1
    if (n <= 0) this.held.delete(client)
    else this.held.set(client, n)
  }

  /** In-flight requests of `client` (for tests and metrics). */
  of (client: string): number {
    return this.held.get(client) ?? 0
  }
}
