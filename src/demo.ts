// `npm start` with nothing configured: the proxy in front of a built-in origin, plus
// every fault of the lab behind /lab/<status>, with timeouts short enough to try by hand.

import type { Config, RouteConfig } from './config/schema.js'
import { startFaults, type LabOrigin } from './lab/faults.js'
import { healthyOrigin, type LabLink } from './lab/healthy-origin.js'

export const DEMO_CONNECT_TIMEOUT_MS = 3000
export const DEMO_RESPONSE_TIMEOUT_MS = 5000

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
  let links: LabLink[] = []
  const healthy = await healthyOrigin({ rayHeader: base.edge.rayHeader, labLinks: () => links })
  const faults = await startFaults()
  const route = (name: string, path: string, origin: string): RouteConfig => ({
    name,
    host: '*',
    path,
    origin: new URL(origin),
    stripPrefix: true,
    hostHeader: 'origin',
    connectTimeoutMs: DEMO_CONNECT_TIMEOUT_MS,
    responseTimeoutMs: DEMO_RESPONSE_TIMEOUT_MS,
    tls: { verify: true, ca: undefined, servername: undefined },
    faultInjection: true
  })
  const seen = new Set<string>()
  const faultRoutes: RouteConfig[] = []
  for (const f of faults) {
    const status = f.key.split('-')[0] as string
    const path = pathFor(f, !seen.has(status))
    seen.add(status)
    links.push({ path, status: f.status, description: f.description, available: f.available, reason: f.reason })
    if (f.available) faultRoutes.push(route(`lab-${f.key}`, path, f.url))
  }
  // Longer paths first: /lab/520/empty must not be taken by /lab/520.
  faultRoutes.sort((a, b) => b.path.length - a.path.length)
  links = [{ path: '/', status: null, description: 'the healthy built-in origin', available: true }, ...links]
  const config: Config = {
    ...base,
    edge: { ...base.edge, routes: [...faultRoutes, { ...route('demo-origin', '/', healthy.url), stripPrefix: false }] },
    connectTimeoutMs: DEMO_CONNECT_TIMEOUT_MS,
    responseTimeoutMs: DEMO_RESPONSE_TIMEOUT_MS
  }
  return {
    config,
    links,
    close: async () => { await Promise.all([healthy, ...faults].map(o => o.close())) }
  }
}
