// `npm start` with nothing configured: the proxy in front of a built-in origin, plus
// every fault of the lab behind /lab/<status>, with timeouts short enough to try by hand.

import { resolve, validate } from './config/load.js'
import type { Config } from './config/schema.js'
import { startFaults, type LabOrigin } from './lab/faults.js'
import { healthyOrigin, type LabLink } from './lab/healthy-origin.js'

export const DEMO_TIMEOUTS = { connect: '3s', response: '5s' }

export interface Demo {
  config: Config
  links: LabLink[]
  close: () => Promise<void>
}

/** /lab/520 for the first 520 fault, /lab/520/<kind> for each of them. */
function pathFor (origin: LabOrigin, first: boolean): string {
  const [status, kind] = origin.key.split('-')
  return first || kind === undefined ? `/lab/${status}` : `/lab/${status}/${kind}`
}

export async function startDemo (base: Config): Promise<Demo> {
  const links: LabLink[] = [{ path: '/', status: null, description: 'the healthy built-in origin', available: true }]
  const healthy = await healthyOrigin({ rayHeader: base.edge.rayHeader, labLinks: () => links })
  const faults = await startFaults()
  const seen = new Set<string>()
  const routes: Array<Record<string, unknown>> = []
  for (const f of faults) {
    const status = f.key.split('-')[0] as string
    const path = pathFor(f, !seen.has(status))
    seen.add(status)
    links.push({ path, status: f.status, description: f.description, available: f.available, reason: f.reason })
    if (f.available) routes.push({ name: `lab-${f.key}`, path, origin: f.url, strip_prefix: true })
  }
  // Longer paths first: /lab/520/empty must not be taken by /lab/520.
  routes.sort((a, b) => String(b.path).length - String(a.path).length)
  routes.push({ name: 'demo-origin', path: '/', origin: healthy.url })
  // The demo's routes go through the same schema as a config file's.
  const demo = resolve(validate({ routes, timeouts: DEMO_TIMEOUTS, fault_injection: true }), false)
  return {
    config: {
      ...base,
      edge: { ...base.edge, routes: demo.edge.routes, pools: demo.edge.pools },
      connectTimeoutMs: demo.connectTimeoutMs,
      responseTimeoutMs: demo.responseTimeoutMs
    },
    links,
    close: async () => { await Promise.all([healthy, ...faults].map(o => o.close())) }
  }
}
