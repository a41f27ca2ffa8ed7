// deploy/kubernetes: every manifest parses, and the fields that make the scale-out work
// agree with each other and with highproxy's own config: selectors, ports, probes, the
// drain arithmetic, the autoscaler's target, the disruption budget, the scrape.

import { readFileSync, readdirSync } from 'node:fs'
import { join, posix } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { parseAllDocuments } from 'yaml'
import { loadConfig } from '../../src/config/load.js'

const DIR = fileURLToPath(new URL('../../deploy/kubernetes/', import.meta.url))

type Obj = Record<string, any>

function objects (file: string): Obj[] {
  const docs = parseAllDocuments(readFileSync(join(DIR, file), 'utf8'))
  const errors = docs.flatMap(d => d.errors.map(e => `${file}: ${e.message}`))
  if (errors.length > 0) throw new Error(errors.join('\n'))
  return docs.map(d => d.toJS() as Obj | null).filter((o): o is Obj => o !== null)
}

const kustomization = objects('kustomization.yaml')[0] as Obj
const resources = (kustomization.resources as string[]).flatMap(objects)
const one = (kind: string, name?: string): Obj => {
  const found = resources.filter(o => o.kind === kind && (name === undefined || o.metadata.name === name))
  if (found.length !== 1) throw new Error(`expected one ${kind} ${name ?? ''}, found ${found.length}`)
  return found[0] as Obj
}

const generator = (kustomization.configMapGenerator as Obj[])[0] as Obj
const [configKey, configFile] = (generator.files[0] as string).split('=') as [string, string]
const config = loadConfig({ flags: { config: join(DIR, configFile) }, env: {}, isTTY: false })

const deployment = one('Deployment')
const pod = deployment.spec.template.spec
const podLabels = deployment.spec.template.metadata.labels as Record<string, string>
const proxy = pod.containers.find((c: Obj) => c.name === 'highproxy') as Obj
const portNumber = (port: string | number): number =>
  typeof port === 'number' ? port : proxy.ports.find((p: Obj) => p.name === port)?.containerPort
const selects = (selector: Record<string, string>, labels: Record<string, string>): boolean =>
  Object.entries(selector).every(([k, v]) => labels[k] === v)

t.test('the kustomization lists every manifest, and its config loads', async t => {
  const manifests = readdirSync(DIR).filter(f => f.endsWith('.yaml') && f !== 'kustomization.yaml' && f !== configFile)
  t.same([...kustomization.resources].sort(), manifests.sort(), 'every manifest is applied')
  t.same(resources.map(o => o.kind).sort(), ['Deployment', 'HorizontalPodAutoscaler', 'PodDisruptionBudget', 'Service', 'Service', 'ServiceMonitor'])
  t.equal(generator.name, pod.volumes.find((v: Obj) => v.configMap !== undefined)?.configMap.name, 'the pods mount the generated ConfigMap')
  t.match(config.admin, { enabled: true, host: '0.0.0.0' }, 'admin on the pod IP: the kubelet and Prometheus come from outside')
  t.equal(config.listen.host, '0.0.0.0')
})

t.test('Deployment: one worker per pod, probes on the admin port, the drain fits the grace period', async t => {
  t.notOk('replicas' in deployment.spec, 'no replicas: the HPA owns the count')
  t.same(deployment.spec.selector.matchLabels, podLabels)
  t.equal(pod.securityContext.runAsNonRoot, true)
  t.equal(proxy.env.find((e: Obj) => e.name === 'HIGHPROXY_WORKERS')?.value, '1', 'one worker per pod: scale with replicas')
  const mount = proxy.volumeMounts.find((m: Obj) => m.name === pod.volumes.find((v: Obj) => v.configMap?.name === generator.name).name)
  t.equal(proxy.args[proxy.args.indexOf('--config') + 1], posix.join(mount.mountPath, configKey), '--config is the ConfigMap\'s file')
  t.equal(portNumber('http'), config.listen.port, 'the http port is the one the proxy listens on')
  t.equal(portNumber(proxy.readinessProbe.httpGet.port), config.admin.port, 'readiness on the admin port')
  t.equal(proxy.readinessProbe.httpGet.path, '/readyz')
  t.equal(portNumber(proxy.livenessProbe.httpGet.port), config.admin.port, 'liveness on the admin port')
  t.equal(proxy.livenessProbe.httpGet.path, '/healthz')
  const preStop = Number(proxy.lifecycle.preStop.exec.command[1])
  const done = preStop + config.shutdownGraceMs / 1000
  t.ok(pod.terminationGracePeriodSeconds > done, `terminationGracePeriodSeconds ${pod.terminationGracePeriodSeconds} > preStop ${preStop} s + drain ${config.shutdownGraceMs / 1000} s`)
  t.ok(proxy.resources.requests.cpu, 'a CPU request: the HPA\'s utilization is a share of it')
  t.equal(deployment.spec.strategy.rollingUpdate.maxUnavailable, 0, 'a rollout never goes below the current count')
})

t.test('Services: traffic to the proxy port; the admin port only on a headless Service', async t => {
  const traffic = one('Service', 'highproxy')
  const admin = one('Service', 'highproxy-admin')
  for (const s of [traffic, admin]) t.ok(selects(s.spec.selector, podLabels), `${s.metadata.name} selects the pods`)
  t.same(traffic.spec.ports.map((p: Obj) => portNumber(p.targetPort)), [config.listen.port], 'visitors reach only the proxy port')
  t.equal(admin.spec.clusterIP, 'None', 'headless: each replica scraped on its own')
  t.same(admin.spec.ports.map((p: Obj) => portNumber(p.targetPort)), [config.admin.port])
})

t.test('HPA and PDB: CPU from 3 replicas up; drains take one at a time', async t => {
  const hpa = one('HorizontalPodAutoscaler')
  t.match(hpa.spec.scaleTargetRef, { apiVersion: 'apps/v1', kind: 'Deployment', name: deployment.metadata.name })
  t.ok(hpa.spec.minReplicas >= 2 && hpa.spec.maxReplicas > hpa.spec.minReplicas, `replicas ${hpa.spec.minReplicas}..${hpa.spec.maxReplicas}`)
  t.match(hpa.spec.metrics, [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization' } } }])
  const pdb = one('PodDisruptionBudget')
  t.ok(selects(pdb.spec.selector.matchLabels, podLabels), 'the PDB covers the pods')
  t.ok(pdb.spec.maxUnavailable >= 1 && pdb.spec.maxUnavailable < hpa.spec.minReplicas, 'a drain can proceed and leaves replicas serving')
})

t.test('ServiceMonitor: /metrics of every replica through the admin Service', async t => {
  const monitor = one('ServiceMonitor')
  const admin = one('Service', 'highproxy-admin')
  t.equal(monitor.apiVersion, 'monitoring.coreos.com/v1')
  t.ok(selects(monitor.spec.selector.matchLabels, admin.metadata.labels), 'selects the admin Service')
  t.notOk(selects(monitor.spec.selector.matchLabels, one('Service', 'highproxy').metadata.labels), 'not the traffic Service')
  t.match(monitor.spec.endpoints, [{ port: admin.spec.ports[0].name, path: '/metrics' }])
  t.equal(admin.metadata.labels[monitor.spec.jobLabel], 'highproxy', 'job="highproxy", what the rules group by')
})
