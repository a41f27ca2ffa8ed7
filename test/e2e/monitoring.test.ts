// What ships for operators, held against a live proxy (--workers 2 on loopback, after
// real traffic): the metric list of docs/operations.md is what /metrics exports (names, types,
// labels); every metric the Grafana dashboard and the Prometheus rules read exists
// there; the rules pass promtool's check and unit tests, one per alert; the dashboard's
// queries parse; and the documented jq query finds a ray in the log lines.

import { spawnSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { parse as parseYaml } from 'yaml'
import { refusedOrigin } from '../../src/lab/faults.js'
import { healthyOrigin } from '../../src/lab/healthy-origin.js'
import { startWorkers } from '../cli-process.js'
import { accessFor, get, rayOf } from '../helpers.js'
import { samples, types } from '../prometheus-text.js'
import { listenFixedPort } from '../../src/lab/loopback.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const MONITORING = join(ROOT, 'deploy', 'monitoring')
const read = (...path: string[]): string => readFileSync(join(ROOT, ...path), 'utf8')
const has = (command: string): boolean => spawnSync(command, ['--version']).status === 0
const promtool = (...args: string[]): ReturnType<typeof spawnSync> => spawnSync('promtool', args, { cwd: MONITORING, encoding: 'utf8' })
const noPromtool = has('promtool') ? false : 'promtool is not installed (Debian: apt-get install prometheus; .ci/run does)'

type Obj = Record<string, any>

interface Rule { record?: string, alert?: string, expr: string, labels?: Record<string, string>, annotations?: Record<string, string> }
const rulesOf = (file: string): Rule[] => (parseYaml(read('deploy', 'monitoring', file)) as { groups: Array<{ rules: Rule[] }> }).groups.flatMap(g => g.rules)
const recording = rulesOf('recording-rules.yaml')
const alerts = rulesOf('alerts.yaml')
const dashboard = JSON.parse(read('deploy', 'monitoring', 'highproxy.dashboard.json')) as Obj
const panels = (dashboard.panels as Obj[]).filter(p => p.type !== 'row')
const dashboardExprs = panels.flatMap(p => (p.targets as Obj[]).map(x => String(x.expr)))
const variables = dashboard.templating.list as Obj[]

/** The metric names a PromQL expression reads: highproxy_* and recorded level:metric:ops. */
const metricsIn = (expr: string): string[] => [...expr.matchAll(/(?<![\w:])highproxy_[a-z0-9_]+(?![\w:])/g)].map(m => m[0])
const recordedIn = (expr: string): string[] => [...expr.matchAll(/\b[a-z_]+:[a-z0-9_]+:[a-z0-9_]+\b/g)].map(m => m[0])

/** The metric table of docs/operations.md: name → type and labels; and the families written with a `*`. */
function documented (): { metrics: Map<string, { type: string, labels: string[] }>, families: string[] } {
  const metrics = new Map<string, { type: string, labels: string[] }>()
  const families: string[] = []
  for (const line of read('docs', 'operations.md').split('\n')) {
    const cells = line.trim().split('|').map(c => c.trim())
    if (!(cells[1] ?? '').startsWith('`highproxy_')) continue
    const names = [...(cells[1] as string).matchAll(/`([^`]+)`/g)].map(m => m[1] as string)
    for (const name of names) {
      if (name.endsWith('*')) families.push(name.slice(0, -1))
      else metrics.set(name, { type: cells[2] as string, labels: [...(cells[3] as string).matchAll(/`([^`]+)`/g)].map(m => m[1] as string) })
    }
  }
  return { metrics, families }
}

t.test('monitoring assets against a live --workers 2 proxy', async t => {
  const healthy = await healthyOrigin()
  const refused = await refusedOrigin()
  // An origin that goes away once its page is stored: Always online's answers.
  const going = http.createServer((_req, res) => { res.end('kept') })
  // Outside the ephemeral range: once it is gone, no port-0 listener can answer in its place.
  await listenFixedPort(going)
  t.teardown(async () => { await healthy.close(); await refused.close(); going.close() })
  const file = `${t.testdir({})}/config.yaml`
  writeFileSync(file, [
    'pools:',
    // Adaptive concurrency on, so that its per-origin series exist (sequential requests: never shed).
    `  - { name: web, origins: ["${healthy.url}", "${refused.url}"], adaptive_concurrency: true }`,
    'routes:',
    '  - { name: pool, path: /pool, pool: web }',
    `  - { name: down, path: /down, origin: "${refused.url}" }`,
    `  - { name: stale, path: /stale, origin: "http://127.0.0.1:${(going.address() as AddressInfo).port}", stale_if_error: {} }`,
    `  - { name: ok, origin: "${healthy.url}" }`
  ].join('\n') + '\n')
  const p = await startWorkers(['--config', file], 2)
  t.teardown(() => { p.child.kill('SIGKILL') })
  for (const path of ['/pool/a', '/pool/b', '/down/c', '/ok/d', '/ok/e', '/down/f']) await get(`${p.listen}${path}`, { fresh: true })
  // Fresh connections take turns between the workers: each stores the page, then answers from it.
  for (let i = 0; i < 4; i++) await get(`${p.listen}/stale/page`, { fresh: true })
  await new Promise<void>(resolve => { going.close(() => resolve()); going.closeAllConnections() })
  const stale = await get(`${p.listen}/stale/page`, { fresh: true })
  t.equal(stale.body, 'kept', 'answered from the copy')
  await p.waitFor(accessFor(rayOf(stale)))
  const failed = await get(`${p.listen}/down/ray`, { fresh: true })
  await p.waitFor(accessFor(rayOf(failed)))
  const text = (await get(`${p.admin}/metrics`)).body
  const exported = types(text)
  const seen = samples(text)
  const known = new Set([...exported.keys(), ...seen.map(s => s.name)])
  const labelsOf = (name: string): string[] => [...new Set(seen
    .filter(s => s.name === name || s.name.replace(/_(bucket|sum|count)$/, '') === name)
    .flatMap(s => Object.keys(s.labels)).filter(l => l !== 'le'))].sort()

  t.test('docs/operations.md lists every metric /metrics exports, with its type and labels', async t => {
    const { metrics, families } = documented()
    t.ok(metrics.size >= 10, `${metrics.size} metrics in docs/operations.md`)
    for (const [name, doc] of metrics) {
      t.equal(exported.get(name), doc.type, `${name} is exported as a ${doc.type}`)
      // A labelled metric with no series in this run (certificate expiry: this proxy has
      // no TLS) shows its labels in the tests that make some (acme-refused.test.ts).
      if (!seen.some(s => s.name === name) && doc.labels.length > 0) continue
      t.same(labelsOf(name), [...doc.labels].sort(), `${name}{${doc.labels.join(',')}}`)
    }
    for (const name of exported.keys()) {
      if (families.some(f => name.startsWith(f))) continue
      t.ok(metrics.has(name), `${name} is in docs/operations.md`)
    }
    t.ok(families.every(f => [...exported.keys()].some(n => n.startsWith(f))), `families ${families.join(', ')} exist`)
  })

  t.test('every metric the dashboard and the rules read exists', async t => {
    const exprs = [...dashboardExprs, ...variables.map(v => String(v.query.query)), ...recording.map(r => r.expr), ...alerts.map(r => r.expr)]
    const records = new Set(recording.map(r => r.record))
    const read = [...new Set(exprs.flatMap(metricsIn))]
    t.ok(read.length >= 10, `${read.length} metric names read`)
    for (const name of read) t.ok(known.has(name), `${name} is in /metrics`)
    for (const name of new Set(exprs.flatMap(recordedIn))) t.ok(records.has(name), `${name} is a recording rule`)
  })

  t.test('the documented jq query finds a ray in the log lines', { skip: has('jq') ? false : 'jq is not installed' }, async t => {
    const filter = 'fromjson? | select(.ray_id == $ray)'
    t.match(read('docs', 'deploying.md'), `jq -cR --arg ray <ray id> '${filter}'`, 'the guide shows this query')
    const input = ['a line that is not JSON', ...p.logs.map(l => JSON.stringify(l))].join('\n') + '\n'
    const ran = spawnSync('jq', ['-cR', '--arg', 'ray', rayOf(failed), filter], { input, encoding: 'utf8' })
    t.equal(ran.status, 0, ran.stderr)
    const found = ran.stdout.trim().split('\n').map(l => JSON.parse(l) as Obj)
    t.same(found.map(l => l.msg), ['origin failure', 'access'], 'the failure line and the access line of that request')
    t.ok(found.every(l => l.ray_id === rayOf(failed)))
  })

  p.child.kill('SIGTERM')
  t.equal(await p.exited, 0)
})

t.test('the dashboard: datasource input, route and pool variables, the panels the issue asks for', async t => {
  t.match(dashboard.__inputs, [{ name: 'DS_PROMETHEUS', type: 'datasource', pluginId: 'prometheus' }])
  const ds = { type: 'prometheus', uid: '${DS_PROMETHEUS}' } // eslint-disable-line no-template-curly-in-string
  for (const p of panels) {
    t.same(p.datasource, ds, `${String(p.title)}: datasource from the input`)
    for (const target of p.targets as Obj[]) t.same(target.datasource, ds)
  }
  t.same(variables.map(v => v.name), ['route', 'pool'])
  for (const v of variables) t.same(v.datasource, ds, `$${String(v.name)} queries the input datasource`)
  const titles = panels.map(p => String(p.title))
  for (const want of [/^Requests by status$/, /^Edge errors by status$/, /521 vs 522 vs 524 per origin/, /connect latency/, /TTFB latency/, /^Pending connects$/, /^Origins up$/]) {
    t.ok(titles.some(title => want.test(title)), `a panel ${want}`)
  }
  t.ok(dashboardExprs.filter(e => /\$route|\$pool/.test(e)).length >= 6, 'the panels follow the variables')
  const ids = (dashboard.panels as Obj[]).map(p => p.id)
  t.equal(new Set(ids).size, ids.length, 'panel ids are unique')
})

t.test('promtool: the rules check, and every alert has a unit test that passes', { skip: noPromtool }, async t => {
  const check = promtool('check', 'rules', 'recording-rules.yaml', 'alerts.yaml')
  t.equal(check.status, 0, String(check.stdout) + String(check.stderr))
  const test = promtool('test', 'rules', 'rules.test.yaml')
  t.equal(test.status, 0, String(test.stdout) + String(test.stderr))
  const tested = new Set((parseYaml(read('deploy', 'monitoring', 'rules.test.yaml')) as { tests: Array<{ alert_rule_test: Array<{ alertname: string, exp_alerts: unknown[] }> }> })
    .tests.flatMap(x => x.alert_rule_test.filter(a => a.exp_alerts.length > 0).map(a => a.alertname)))
  for (const a of alerts) {
    t.ok(tested.has(a.alert as string), `${String(a.alert)} has a unit test in which it fires`)
    t.match(a.labels, { severity: /^(critical|warning|info)$/ }, `${String(a.alert)}: severity label`)
    t.match(a.annotations, { summary: String, description: String }, `${String(a.alert)}: summary and description`)
    t.match(a.alert, /^Highproxy[A-Z]\w+$/, 'CamelCase, prefixed')
  }
})

t.test('promtool: the dashboard\'s queries parse', { skip: noPromtool }, async t => {
  // Grafana's own variables, given values, make the queries plain PromQL for promtool.
  const asPromql = (e: string): string => e.replaceAll('$__rate_interval', '5m').replaceAll('$route', '.*').replaceAll('$pool', '.*')
  const rules = { groups: [{ name: 'dashboard', rules: dashboardExprs.map((expr, i) => ({ record: `dashboard:query:${i}`, expr: asPromql(expr) })) }] }
  const file = join(t.testdir({}), 'dashboard-queries.yaml')
  writeFileSync(file, JSON.stringify(rules))
  const check = promtool('check', 'rules', file)
  t.equal(check.status, 0, String(check.stdout) + String(check.stderr))
})
