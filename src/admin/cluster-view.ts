// The admin view of a primary with workers (--workers N): one answer for the whole set.
//
//   /metrics   every worker's registry, summed by prom-client's AggregatorRegistry.aggregate
//              (each metric by its own aggregator: sum, but the min for highproxy_origin_up;
//              see metrics.ts), plus the primary's highproxy_cluster_* gauges
//   /rays/<id> asks every worker; the one that served the request has the records
//   /origins   every worker's view of each origin, merged (origins.ts): the worst condition
//              any worker sees, and each worker's own
//   /cache     every worker's store (each worker keeps its own copies), summed, and each by pid
//   DELETE /cache   purges in every worker; the count is the sum
//   /healthz   200 while every running worker answers a ping
//   /readyz    200 once every expected worker listens; 503 while starting or draining
//
// A worker that does not answer within ipc.ts's short timeout is named in the answer
// (and in highproxy_cluster_workers_unanswered), not waited for. prom-client's own
// clusterMetrics() is not used for that reason: it fails the whole scrape after 5 s when
// one worker is stuck, and does not say which.

import type { Worker } from 'node:cluster'
import type { Logger } from 'pino'
import { AggregatorRegistry, Counter, Gauge, Registry } from 'prom-client'
import type { StoreSummary } from '../cache/stale-store.js'
import { WorkerAsker, type Answers, type Question } from './ipc.js'
import { mergedOrigins, type OriginRow } from './origins.js'
import { UNKNOWN_RAY, type AdminView } from './view.js'

export interface WorkerSet {
  /** How many workers the primary keeps running. */
  expected: number
  stopping: () => boolean
  /** The workers alive now, and whether each has said it listens. */
  running: () => Array<{ worker: Worker, listening: boolean }>
  /** Workers that died and were replaced, since the start. */
  restarts: () => number
}

export function clusterView (set: WorkerSet, logger: Logger, asker = new WorkerAsker()): AdminView {
  const own = new Registry()
  const registers = [own]
  let unansweredLast = 0
  void new Gauge({
    name: 'highproxy_cluster_workers',
    help: 'Worker processes running (--workers).',
    registers,
    collect () { this.set(set.running().length) }
  })
  void new Gauge({
    name: 'highproxy_cluster_workers_unanswered',
    help: 'Workers that did not answer this scrape in time: their counts are missing from it.',
    registers,
    collect () { this.set(unansweredLast) }
  })
  void new Counter({
    name: 'highproxy_cluster_worker_restarts_total',
    help: 'Workers that died and were replaced.',
    registers,
    collect () {
      this.reset()
      this.inc(set.restarts())
    }
  })

  const askAll = async (question: Question): Promise<Answers> => {
    const answers = await asker.ask(set.running().map(r => r.worker), question)
    if (answers.unanswered.length > 0) logger.warn({ question: question.what, unanswered: answers.unanswered }, 'workers did not answer in time')
    return answers
  }

  return {
    contentType: own.contentType,

    metrics: async () => {
      const { answers, unanswered } = await askAll({ what: 'metrics' })
      unansweredLast = unanswered.length
      const registries = answers.map(a => a.value as object[])
      return AggregatorRegistry.aggregate([...registries, await own.getMetricsAsJSON()]).metrics()
    },

    ray: async id => {
      const { answers, unanswered } = await askAll({ what: 'ray', ray: id })
      const found = answers.find(a => (a.value as unknown[]).length > 0)
      if (found !== undefined) return { status: 200, body: { ray_id: id, attempts: found.value, worker: found.pid } }
      if (unanswered.length === 0) return UNKNOWN_RAY
      return { status: 503, body: { error: 'unknown to the workers that answered; some did not answer in time', unanswered } }
    },

    cache: async () => {
      const { answers, unanswered } = await askAll({ what: 'cache' })
      const workers = answers.map(a => ({ pid: a.pid, ...(a.value as StoreSummary) }))
      const sum = (k: 'entries' | 'bytes'): number => workers.reduce((n, w) => n + w[k], 0)
      return { status: unanswered.length === 0 ? 200 : 503, body: { entries: sum('entries'), bytes: sum('bytes'), workers, unanswered } }
    },

    origins: async () => {
      const { answers, unanswered } = await askAll({ what: 'origins' })
      const body = mergedOrigins(answers.map(a => ({ pid: a.pid, rows: a.value as OriginRow[] })))
      return { status: unanswered.length === 0 ? 200 : 503, body: { ...body, unanswered } }
    },
    purge: async (route, path) => {
      const { answers, unanswered } = await askAll({ what: 'purge', route, path })
      const purged = answers.reduce((n, a) => n + (a.value as number), 0)
      return { status: unanswered.length === 0 ? 200 : 503, body: { purged, unanswered } }
    },

    health: async () => {
      const running = set.running().length
      const { answers, unanswered } = await askAll({ what: 'ping' })
      const workers = { running, answered: answers.length, unanswered }
      return running > 0 && unanswered.length === 0
        ? { status: 200, body: { status: 'ok', workers } }
        : { status: 503, body: { status: running === 0 ? 'no workers' : 'unresponsive', workers } }
    },

    ready: async () => {
      const workers = { expected: set.expected, listening: set.running().filter(r => r.listening).length }
      if (set.stopping()) return { status: 503, body: { status: 'draining', workers } }
      if (workers.listening < set.expected) return { status: 503, body: { status: 'starting', workers } }
      return { status: 200, body: { status: 'ready', workers } }
    }
  }
}
