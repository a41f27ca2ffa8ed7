// `npm start` with nothing configured: the proxy in front of a built-in origin, plus
// every fault of the lab behind /lab/<status>, with timeouts short enough to try by hand.

import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { resolve, validate } from './config/load.js'
import type { Config } from './config/schema.js'
import type { LabLink } from './lab/healthy-origin.js'
import { FAULT_NAMES, startLab } from './lab/index.js'

export const DEMO_TIMEOUTS = { connect: '3s', response: '5s' }

export interface Demo {
  config: Config
  links: LabLink[]
  close: () => Promise<void>
}

/** /lab/520 for the first 520 fault, /lab/520/<kind> for each of them; /lab/<key> for the rest. */
function pathFor (key: string, first: boolean): string {
  const kind = /^(\d{3})-(.+)$/.exec(key)
  return kind === null ? `/lab/${key}` : first ? `/lab/${kind[1]}` : `/lab/${kind[1]}/${kind[2]}`
}

export async function startDemo (base: Config): Promise<Demo> {
  const links: LabLink[] = [{ path: '/', status: null, description: 'the healthy built-in origin', available: true }]
  const lab = await startLab({ healthy: { rayHeader: base.edge.rayHeader, labLinks: () => links } })
  const seen = new Set<string>()
  const routes: Array<Record<string, unknown>> = []
  // The certificates the lab's CA issued (expired, wrong name) are checked against that CA,
  // so each shows its own defect; untrusted, both would fail as "unknown issuer" first.
  const dir = await mkdtemp(join(tmpdir(), 'highproxy-demo-'))
  for (const f of FAULT_NAMES.map(name => lab.origins[name])) {
    const path = pathFor(f.key, !seen.has(String(f.status)))
    seen.add(String(f.status))
    links.push({ path, status: f.status, description: f.description, available: f.available, reason: f.reason })
    if (!f.available) continue
    let tls: { ca_file: string } | undefined
    if (f.ca !== undefined && f.key !== '526') {
      const caFile = join(dir, `${f.key}-ca.pem`)
      await writeFile(caFile, f.ca)
      tls = { ca_file: caFile }
    }
    routes.push({ name: `lab-${f.key}`, path, origin: f.url, strip_prefix: true, ...(tls === undefined ? {} : { tls }) })
  }
  // Longer paths first: /lab/520/empty must not be taken by /lab/520.
  routes.sort((a, b) => String(b.path).length - String(a.path).length)
  routes.push({ name: 'demo-origin', path: '/', origin: lab.urls.healthy })
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
    close: async () => {
      await lab.close()
      await rm(dir, { recursive: true, force: true })
    }
  }
}
