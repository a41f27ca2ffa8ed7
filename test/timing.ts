// Timing assertions on a shared 2-core machine.
//
// Upper bounds are never loosened for the proxy's sake, only for the machine's:
// - they add the time this process's event loop lost while the request ran (the sum of
//   every sample's delay beyond the 10 ms sampling interval): CPU starvation, not the proxy;
// - a bound missed on the first try gets one more try. A hiccup rarely strikes twice in a
//   row; a proxy that is late by design (coarse timers, queued connects) is late on both,
//   with an idle loop, so it still fails.
// Lower bounds ("never before the timeout") hold for every try.

import { monitorEventLoopDelay } from 'node:perf_hooks'
import { request } from 'undici'
import { client, type Got } from './helpers.js'

export function stallWatch (): () => number {
  const h = monitorEventLoopDelay({ resolution: 10 })
  h.enable()
  return () => {
    h.disable()
    return h.count === 0 ? 0 : Math.max(0, h.count * (h.mean / 1e6 - 10))
  }
}

export type Timed<T> = T & { late: number }

export async function timed<T> (fn: () => Promise<T>): Promise<Timed<T>> {
  const stall = stallWatch()
  const value = await fn()
  return Object.assign(value as object, { late: stall() }) as Timed<T>
}

export async function oneOfTwo<T> (first: T, again: () => Promise<T>, ok: (x: T) => boolean): Promise<T[]> {
  return ok(first) ? [first] : [first, await again()]
}

export const shown = (tries: Array<{ ms: number, late: number }>): string =>
  tries.map(x => `${x.ms.toFixed(1)} ms (loop stall ${x.late.toFixed(0)} ms)`).join(', retried: ')

/** GET with a client-side deadline, so a proxy that waits too long fails the test fast. */
export async function getWithin (url: string, deadlineMs: number, headers: Record<string, string> = {}): Promise<Got> {
  const start = performance.now()
  try {
    const res = await request(url, { dispatcher: client, headers, signal: AbortSignal.timeout(deadlineMs) })
    const body = await res.body.text()
    return { status: res.statusCode, headers: res.headers as Record<string, string>, body, ms: performance.now() - start }
  } catch (err) {
    if ((err as Error).name === 'TimeoutError') throw new Error(`no answer from the proxy within ${deadlineMs} ms`)
    throw err
  }
}
