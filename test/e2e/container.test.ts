// The container image, as far as it can be checked without a container engine (none
// here): the Dockerfile is parsed, its runtime stage's files are laid out in a directory
// the way its COPY lines put them in the image (the build stage's output is this repo's
// dist/ and node_modules/: run `npm run build` first; `npm test` does), and its
// ENTRYPOINT + CMD runs there with the ENV it sets: as it is, as a non-root user, and
// probed by its HEALTHCHECK command. The docs/sidecar examples are checked against the
// config loader and against each other. All traffic stays on 127.0.0.1.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, readFileSync, symlinkSync } from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import { dirname, join, posix, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Script } from 'node:vm'
import t, { type Test } from 'tap'
import { Agent, request } from 'undici'
import { parse as parseYaml, parseAllDocuments } from 'yaml'
import { loadConfig } from '../../src/config/load.js'
import { durationMs } from '../../src/config/duration.js'
import { healthyOrigin } from '../../src/lab/healthy-origin.js'
import { refusedPort } from '../../src/lab/loopback.js'
import { NODE_FLAGS } from '../../src/node-flags.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const SIDECAR = join(ROOT, 'docs', 'sidecar')

if (!existsSync(join(ROOT, 'dist', 'cli.js'))) throw new Error('dist/cli.js is missing: run `npm run build` first')

// ---- the Dockerfile, parsed ----

interface Instruction { op: string, args: string }
interface Stage { name: string | undefined, from: string, body: Instruction[] }

/** Instructions by stage: continuation lines joined, comments and directives dropped. */
function parseDockerfile (text: string): Stage[] {
  const instructions: Instruction[] = []
  let buffer = ''
  for (const raw of text.split('\n')) {
    if (/^\s*#/.test(raw)) continue
    const line = raw.replace(/\s+$/, '')
    if (line.endsWith('\\')) { buffer += line.slice(0, -1) + ' '; continue }
    buffer += line
    const match = /^\s*([A-Za-z]+)\s+([\s\S]*)$/.exec(buffer)
    if (match !== null) instructions.push({ op: (match[1] as string).toUpperCase(), args: (match[2] as string).trim() })
    buffer = ''
  }
  const stages: Stage[] = []
  for (const i of instructions) {
    if (i.op === 'FROM') {
      const [from, as, name] = i.args.split(/\s+/)
      stages.push({ from: from as string, name: as?.toUpperCase() === 'AS' ? name : undefined, body: [] })
    } else {
      stages.at(-1)?.body.push(i)
    }
  }
  return stages
}

/** The exec (JSON) form; anything else is refused (a shell form would make /bin/sh PID 1). */
function execForm (args: string, what: string): string[] {
  let parsed: unknown
  try { parsed = JSON.parse(args) } catch { throw new Error(`${what} is not in exec form: ${args}`) }
  if (!Array.isArray(parsed) || !parsed.every(a => typeof a === 'string')) throw new Error(`${what} is not a JSON array of strings`)
  return parsed
}

/** `ENV a=b c=d` (and the old `ENV key value`). */
function envOf (stage: Stage): Record<string, string> {
  const env: Record<string, string> = {}
  for (const i of stage.body.filter(i => i.op === 'ENV')) {
    const tokens = i.args.split(/\s+/)
    if (!(tokens[0] as string).includes('=')) { env[tokens[0] as string] = tokens.slice(1).join(' '); continue }
    for (const token of tokens) {
      const eq = token.indexOf('=')
      env[token.slice(0, eq)] = token.slice(eq + 1).replace(/^"(.*)"$/, '$1')
    }
  }
  return env
}

interface Copy { from: string | undefined, sources: string[], dest: string, workdir: string }

/** COPY lines with the WORKDIR in force where each appears. */
function copiesOf (stage: Stage): Copy[] {
  let workdir = '/'
  const copies: Copy[] = []
  for (const i of stage.body) {
    if (i.op === 'WORKDIR') workdir = posix.resolve(workdir, i.args)
    if (i.op !== 'COPY' && i.op !== 'ADD') continue
    const words = i.args.startsWith('[') ? execForm(i.args, 'COPY') : i.args.split(/\s+/)
    const flags = words.filter(w => w.startsWith('--'))
    const paths = words.filter(w => !w.startsWith('--'))
    const from = flags.find(f => f.startsWith('--from='))?.slice('--from='.length)
    copies.push({ from, sources: paths.slice(0, -1), dest: paths.at(-1) as string, workdir })
  }
  return copies
}

const lastArgs = (stage: Stage, op: string): string | undefined => stage.body.filter(i => i.op === op).at(-1)?.args

const stages = parseDockerfile(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'))
const runtime = stages.at(-1) as Stage
const build = stages.find(s => s.name !== undefined && copiesOf(runtime).some(c => c.from === s.name))
const WORKDIR = posix.resolve('/', lastArgs(runtime, 'WORKDIR') ?? '/')
const IMAGE_ENV = envOf(runtime)
const START = [...execForm(lastArgs(runtime, 'ENTRYPOINT') ?? '[]', 'ENTRYPOINT'), ...execForm(lastArgs(runtime, 'CMD') ?? '[]', 'CMD')]
const HEALTHCHECK = (() => {
  const args = lastArgs(runtime, 'HEALTHCHECK') ?? ''
  const cmd = /(?:^|\s)CMD\s+(.*)$/.exec(args)
  return cmd === null ? [] : execForm(cmd[1] as string, 'HEALTHCHECK CMD')
})()
const DOCKERIGNORE = readFileSync(join(ROOT, '.dockerignore'), 'utf8').split('\n').map(l => l.trim()).filter(l => l !== '' && !l.startsWith('#'))

/**
 * An image command as run here: `node` is this node, and it starts through `env -u
 * NODE_OPTIONS`. tap wraps child_process and puts its process-tracking --import back
 * into NODE_OPTIONS of every child, whatever env is given; the image has no such hook,
 * and under another uid the hook's exit handler (writing .tap/processinfo under the
 * child's cwd) fails and turns exit code 0 into 1.
 */
const asInImage = (argv: string[]): string[] =>
  ['env', '-u', 'NODE_OPTIONS', ...(argv[0] === 'node' ? [process.execPath, ...argv.slice(1)] : argv)]

// ---- the runtime stage, laid out on disk ----

/**
 * A directory standing for the image's WORKDIR: each runtime COPY puts its sources where
 * the image would have them. From the build stage, dist/ and package.json are the repo's
 * (what `npm run build` made); node_modules is a link to the repo's (the image has the
 * production part of the same lockfile). If a COPY is missing, the start below fails.
 */
function layOut (dir: string): void {
  const buildWorkdir = build === undefined ? '/' : posix.resolve('/', lastArgs(build, 'WORKDIR') ?? '/')
  for (const copy of copiesOf(runtime)) {
    const dest = posix.resolve(copy.workdir, copy.dest)
    if (relative(WORKDIR, dest).startsWith('..')) throw new Error(`COPY outside ${WORKDIR}: ${dest}`)
    for (const source of copy.sources) {
      const inRepo = copy.from === undefined ? source : posix.relative(buildWorkdir, posix.resolve(buildWorkdir, source))
      const target = join(dir, relative(WORKDIR, copy.sources.length > 1 || copy.dest.endsWith('/') ? posix.join(dest, posix.basename(source)) : dest))
      mkdirSync(dirname(target), { recursive: true })
      if (inRepo === 'node_modules') symlinkSync(join(ROOT, 'node_modules'), target, 'dir')
      else cpSync(join(ROOT, inRepo), target, { recursive: true })
    }
  }
}

// ---- running it ----

type Env = Record<string, string>
type Line = Record<string, any>

/** The image's ENV on top of this environment without HIGHPROXY_*, tap's hooks or NODE_OPTIONS. */
function imageEnv (env: Env): NodeJS.ProcessEnv {
  const clean = Object.fromEntries(Object.entries(process.env)
    .filter(([k]) => !k.startsWith('HIGHPROXY_') && !k.startsWith('_TAPJS_') && k !== 'NODE_OPTIONS'))
  return { ...clean, ...IMAGE_ENV, ...env }
}

/** A port free now and outside the ephemeral range: no port-0 listener beside this test can take it. */
const freePort = (): Promise<number> => refusedPort()

interface Running {
  child: ChildProcess
  /** From the "highproxy listening" line. */
  url: string
  pid: number
  adminPort: number
  logs: Line[]
  stderr: () => string
  /** Resolves with the first log line matching, waiting up to `ms`. */
  waitForLog: (match: (l: Line) => boolean, ms?: number) => Promise<Line>
  stop: (signal?: NodeJS.Signals) => Promise<number | null>
}

/**
 * Runs `prefix` + the image's start command in `cwd` with the image's env and `env`, on
 * loopback, the admin listener on a port free a moment ago (given the same way the image
 * would get it: HIGHPROXY_ADMIN_PORT, also what the healthcheck reads). Should another
 * process take that port in between, it starts again on another.
 */
async function startImage (t: Test, cwd: string, env: Env, prefix: string[] = []): Promise<Running> {
  for (let attempt = 1; ; attempt++) {
    const adminPort = await freePort()
    const [command, ...args] = [...prefix, ...asInImage(START)] as [string, ...string[]]
    const child = spawn(command, args, {
      cwd,
      env: imageEnv({ HIGHPROXY_HOST: '127.0.0.1', HIGHPROXY_PORT: '0', HIGHPROXY_ADMIN_PORT: String(adminPort), ...env }),
      stdio: ['ignore', 'pipe', 'pipe']
    })
    const exited = new Promise<number | null>(resolve => child.once('exit', code => resolve(code)))
    t.teardown(async () => {
      if (child.exitCode === null && child.signalCode === null) { child.kill('SIGKILL'); await exited }
    })
    const logs: Line[] = []
    const waiters = new Set<{ match: (l: Line) => boolean, resolve: (l: Line) => void }>()
    let stderr = ''
    let rest = ''
    child.stderr.on('data', (c: Buffer) => { stderr += c.toString() })
    const listening = new Promise<Line>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`not listening after 10 s; stderr: ${stderr}`)), 10_000)
      child.stdout.on('data', (c: Buffer) => {
        const parts = (rest + c.toString()).split('\n')
        rest = parts.pop() ?? ''
        for (const text of parts) {
          if (text.trim() === '') continue
          let line: Line
          try { line = JSON.parse(text) as Line } catch { line = { msg: '(not JSON)', text } }
          logs.push(line)
          for (const w of [...waiters]) if (w.match(line)) { waiters.delete(w); w.resolve(line) }
          if (line.msg === 'highproxy listening') { clearTimeout(timer); resolve(line) }
        }
      })
      void exited.then(code => { clearTimeout(timer); reject(new Error(`exited ${code}; stderr: ${stderr}`)) })
    })
    try {
      const line = await listening
      const stop = async (signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> => {
        if (child.exitCode === null && child.signalCode === null) child.kill(signal)
        return exited
      }
      const waitForLog = (match: (l: Line) => boolean, ms = 5000): Promise<Line> => {
        const found = logs.find(match)
        if (found !== undefined) return Promise.resolve(found)
        return new Promise((resolve, reject) => {
          const timer = setTimeout(() => { waiters.delete(waiter); reject(new Error(`log line not seen in ${ms} ms; stderr: ${stderr}`)) }, ms)
          const waiter = { match, resolve: (l: Line) => { clearTimeout(timer); resolve(l) } }
          waiters.add(waiter)
        })
      }
      return {
        child, url: String(line.listen), pid: Number(line.pid), adminPort: Number(new URL(String(line.admin)).port), logs,
        stderr: () => stderr, waitForLog, stop
      }
    } catch (err) {
      if (attempt < 3 && /address already in use/.test(stderr)) continue
      throw err
    }
  }
}

const client = new Agent({ keepAliveTimeout: 10, pipelining: 0 })
t.teardown(() => client.close())

async function get (url: string): Promise<{ status: number, headers: Record<string, string>, body: string }> {
  const res = await request(url, { dispatcher: client, signal: AbortSignal.timeout(5000) })
  return { status: res.statusCode, headers: res.headers as Record<string, string>, body: await res.body.text() }
}

interface Ran { code: number | null, stderr: string }

/** The image's HEALTHCHECK command, run in the image layout with the image's env and `env`. */
function healthcheck (cwd: string, env: Env): Promise<Ran> {
  const [command, ...args] = asInImage(HEALTHCHECK) as [string, ...string[]]
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env: imageEnv(env), stdio: ['ignore', 'ignore', 'pipe'] })
    let stderr = ''
    child.stderr.on('data', (c: Buffer) => { stderr += c.toString() })
    const timer = setTimeout(() => child.kill('SIGKILL'), 8000)
    child.once('error', reject)
    child.once('close', code => { clearTimeout(timer); resolve({ code, stderr }) })
  })
}

/** Uid and Gid lines of /proc/<pid>/status: [real, effective, saved, filesystem]. */
function ids (pid: number): { uid: number[], gid: number[], groups: string } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const field = (name: string): string => new RegExp(`^${name}:\\s*(.*)$`, 'm').exec(status)?.[1]?.trim() ?? ''
  return { uid: field('Uid').split(/\s+/).map(Number), gid: field('Gid').split(/\s+/).map(Number), groups: field('Groups') }
}

const hasCommand = (name: string): boolean => spawnSync(name, ['--version'], { stdio: 'ignore' }).error === undefined

// One layout for every run below (under .tap/fixtures, removed at the end).
const LAYOUT = t.testdir({})
layOut(LAYOUT)

t.test('the Dockerfile', async t => {
  t.ok(stages.length >= 2, 'multi-stage')
  t.ok(build, 'the runtime stage copies from a named build stage')
  const runs = build?.body.filter(i => i.op === 'RUN').map(i => i.args).join('\n') ?? ''
  t.match(runs, /npm ci\b/, 'the build stage runs npm ci')
  t.match(runs, /npm run build\b/, 'and the build')
  t.match(runs, /npm prune --omit=dev\b/, 'and drops the dev dependencies')
  t.notOk(runtime.body.some(i => i.op === 'RUN' && /npm (ci|install)/.test(i.args)), 'the runtime stage installs nothing')

  const user = lastArgs(runtime, 'USER') ?? ''
  t.match(user, /^[0-9]+(:[0-9]+)?$/, 'USER is numeric (Kubernetes runAsNonRoot can check it)')
  t.not(Number(user.split(':')[0]), 0, 'and not root')

  t.same(IMAGE_ENV, { NODE_ENV: 'production', HIGHPROXY_HOST: '0.0.0.0', HIGHPROXY_LOG_FORMAT: 'json' }, 'ENV')
  const exposed = runtime.body.filter(i => i.op === 'EXPOSE').flatMap(i => i.args.split(/\s+/))
  t.ok(exposed.includes('8080') && exposed.includes('9090'), `EXPOSE 8080 9090 (${exposed.join(' ')})`)
  t.same(START, ['node', ...NODE_FLAGS, 'dist/cli.js'], 'ENTRYPOINT + CMD, exec form (node is PID 1 and gets the signals), with highproxy\'s V8 flags')
  t.same(HEALTHCHECK, ['node', 'docker/healthcheck.mjs'], 'HEALTHCHECK, exec form, no curl or wget')
  t.match(readFileSync(join(ROOT, 'docker', 'healthcheck.mjs'), 'utf8'), /HIGHPROXY_ADMIN_PORT \|\| '9090'/, 'the healthcheck defaults to port 9090')
  // A supported LTS line (Node 20 is end-of-life since 2026-04-30): the image and the examples.
  t.match(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'), /^ARG NODE_IMAGE=node:24-bookworm-slim$/m, 'the image is built on Node 24')
  for (const example of ['docker-compose.yaml', 'kubernetes.yaml']) {
    const text = readFileSync(join(ROOT, 'docs', 'sidecar', example), 'utf8')
    t.notMatch(text, /node:(1\d|20|21|23)\b/, `${example}: no end-of-life Node image`)
  }

  t.test('every COPY source from the build context exists and is not in .dockerignore', async t => {
    const fromContext = stages.flatMap(s => copiesOf(s)).filter(c => c.from === undefined).flatMap(c => c.sources)
    t.ok(fromContext.length > 0)
    for (const source of fromContext) {
      t.ok(existsSync(join(ROOT, source)), `${source} exists`)
      t.notOk(DOCKERIGNORE.some(p => source === p || source.startsWith(`${p}/`)), `${source} is sent to the build`)
    }
    for (const p of ['.git', 'node_modules', 'dist', '.tap', 'bench/results']) t.ok(DOCKERIGNORE.includes(p), `.dockerignore: ${p}`)
  })

  t.test('the runtime stage holds what the proxy needs', async t => {
    for (const path of ['package.json', 'dist/cli.js', 'templates/error.html', 'config.example.yaml', 'node_modules/fastify', HEALTHCHECK[1] as string]) {
      t.ok(existsSync(join(LAYOUT, path)), path)
    }
    for (const path of ['src', 'test', 'bench', 'tsconfig.json', 'package-lock.json']) t.notOk(existsSync(join(LAYOUT, path)), `no ${path}`)
  })
})

t.test('the image start command, with the image env, serves through the proxy', async t => {
  const origin = await healthyOrigin()
  t.teardown(() => origin.close())
  const proxy = await startImage(t, LAYOUT, { HIGHPROXY_ORIGIN: origin.url })
  t.match(proxy.url, /^http:\/\/127\.0\.0\.1:\d+$/, 'on loopback (HIGHPROXY_HOST=0.0.0.0 of the image overridden for the test)')

  const res = await get(`${proxy.url}/hello`)
  t.equal(res.status, 200)
  t.match(res.headers['cf-ray'], /^[0-9a-f]{16}-HPX$/)
  t.match(res.body, /came through the proxy/)
  const access = await proxy.waitForLog(l => l.msg === 'access' && l.path === '/hello')
  t.match(access, { status: 200, ray_id: res.headers['cf-ray']?.slice(0, 16) }, 'a JSON access line (HIGHPROXY_LOG_FORMAT=json)')

  t.test('the HEALTHCHECK command exits 0 against it', async t => {
    const ran = await healthcheck(LAYOUT, { HIGHPROXY_ADMIN_PORT: String(proxy.adminPort) })
    t.equal(ran.code, 0, ran.stderr)
    t.equal((await get(`http://127.0.0.1:${proxy.adminPort}/readyz`)).status, 200, '/readyz 200 while serving')
  })

  t.test('SIGTERM: drains (nothing in flight) and exits 0', async t => {
    t.equal(await proxy.stop('SIGTERM'), 0, proxy.stderr())
    t.ok(proxy.logs.some(l => l.msg === 'stopped'), 'logged "stopped"')
  })
})

/** How to run as uid 65534 when this runs as root; null and why when it cannot. */
function dropRoot (): { prefix: string[], uid: number, skip: string | false } {
  const uid = process.getuid?.() ?? -1
  if (uid !== 0) return { prefix: [], uid, skip: uid === -1 ? 'no uids on this platform' : false }
  if (hasCommand('setpriv')) return { prefix: ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'], uid: 65534, skip: false }
  if (hasCommand('runuser')) return { prefix: ['runuser', '-u', 'nobody', '--'], uid: 65534, skip: false }
  return { prefix: [], uid, skip: 'running as root, and neither setpriv nor runuser is installed to drop to uid 65534' }
}

const drop = dropRoot()

t.test('runs as a non-root user', { skip: drop.skip }, async t => {
  const { prefix, uid: expected } = drop
  const origin = await healthyOrigin()
  t.teardown(() => origin.close())
  const proxy = await startImage(t, LAYOUT, { HIGHPROXY_ORIGIN: origin.url }, prefix)

  const { uid, gid, groups } = ids(proxy.pid)
  t.same(uid, [expected, expected, expected, expected], `uid ${expected} (real, effective, saved, fs)`)
  t.not(uid[1], 0, 'not root')
  if (prefix.length > 0) {
    t.same(gid, [65534, 65534, 65534, 65534], 'gid 65534')
    t.equal(groups.split(/\s+/).filter(g => g === '0').length, 0, 'no supplementary group 0')
  }

  const res = await get(`${proxy.url}/`)
  t.equal(res.status, 200)
  t.match(res.body, /came through the proxy/)

  const ran = await healthcheck(LAYOUT, { HIGHPROXY_ADMIN_PORT: String(proxy.adminPort) })
  t.equal(ran.code, 0, `the HEALTHCHECK passes against it too ${ran.stderr}`)
  t.equal(await proxy.stop('SIGTERM'), 0, `exits 0 on SIGTERM ${proxy.stderr()} ${JSON.stringify(proxy.logs.slice(-3))}`)
})

t.test('the HEALTHCHECK command fails when /healthz does not answer 2xx', async t => {
  t.test('nothing listens on the admin port: exit 1', async t => {
    const port = await freePort()
    const ran = await healthcheck(LAYOUT, { HIGHPROXY_ADMIN_PORT: String(port) })
    t.equal(ran.code, 1)
    t.match(ran.stderr, `http://127.0.0.1:${port}/healthz: ECONNREFUSED`)
  })

  t.test('something answers 503: exit 1', async t => {
    const server = http.createServer((_req, res) => res.writeHead(503).end())
    await new Promise<void>(resolve => server.listen({ host: '127.0.0.1', port: 0 }, () => resolve()))
    t.teardown(() => new Promise<void>(resolve => server.close(() => resolve())))
    const ran = await healthcheck(LAYOUT, { HIGHPROXY_ADMIN_PORT: String((server.address() as net.AddressInfo).port) })
    t.equal(ran.code, 1)
    t.match(ran.stderr, /HTTP 503/)
  })
})

t.test('docs/sidecar', async t => {
  const load = (file: string): ReturnType<typeof loadConfig> => loadConfig({ flags: { config: join(SIDECAR, file) }, env: {}, isTTY: false })
  const compose = load('highproxy.compose.yaml')
  const k8s = load('highproxy.k8s.yaml')

  t.test('the highproxy config files load', async t => {
    for (const [name, config, origin] of [['compose', compose, 'http://app:3000'], ['k8s', k8s, 'http://127.0.0.1:3000']] as const) {
      t.same(config.listen, { host: '0.0.0.0', port: 8080, backlog: 4096 }, `${name}: listens on every interface of the container, port 8080`)
      t.match(config.admin, { enabled: true, host: '0.0.0.0', port: 9090 }, `${name}: admin reachable by a probe from outside the container`)
      t.same(config.edge.routes.map(r => r.pool.origins.map(o => o.origin)), [[origin]], `${name}: one route to ${origin}`)
    }
  })

  /** The stand-in app's program, from its `node -e <source>` command. */
  const appSource = (t: Test, command: unknown): string => {
    const argv = command as string[]
    t.same(argv.slice(0, 2), ['node', '-e'], 'the stand-in app is node -e <source>')
    return argv[2] as string
  }

  t.test('docker-compose.yaml', async t => {
    const doc = parseYaml(readFileSync(join(SIDECAR, 'docker-compose.yaml'), 'utf8')) as Record<string, any>
    const proxy = doc.services.highproxy
    t.ok(existsSync(join(SIDECAR, proxy.build.context, 'Dockerfile')), 'builds this repo\'s Dockerfile')
    const configPath = proxy.command[proxy.command.indexOf('--config') + 1] as string
    t.ok(proxy.volumes.includes(`./highproxy.compose.yaml:${configPath}:ro`), `mounts highproxy.compose.yaml at ${configPath}`)
    t.ok(proxy.ports.includes('8080:8080'), 'publishes 8080')
    t.ok(proxy.ports.includes('127.0.0.1:9090:9090'), 'publishes admin on the host loopback only')
    t.ok(durationMs(proxy.stop_grace_period) > compose.shutdownGraceMs, 'stop_grace_period longer than the drain')
    t.equal(new URL(compose.edge.routes[0]?.pool.origins[0]?.href ?? '').hostname, 'app', 'the origin is the app service')
    t.equal(doc.services.app.ports, undefined, 'the app publishes nothing')
    const source = appSource(t, doc.services.app.command)
    t.doesNotThrow(() => new Script(source), 'the app command compiles')
    t.match(source, /listen\(3000, '0\.0\.0\.0'\)/)
  })

  t.test('kubernetes.yaml', async t => {
    const docs = parseAllDocuments(readFileSync(join(SIDECAR, 'kubernetes.yaml'), 'utf8'))
    t.same(docs.flatMap(d => d.errors.map(e => e.message)), [], 'valid YAML')
    const objects = docs.map(d => d.toJS() as Record<string, any> | null).filter(o => o !== null)
    t.same(objects.map(o => o.kind).sort(), ['ConfigMap', 'Deployment', 'Service'])
    const configMap = objects.find(o => o.kind === 'ConfigMap') as Record<string, any>
    const deployment = objects.find(o => o.kind === 'Deployment') as Record<string, any>
    const service = objects.find(o => o.kind === 'Service') as Record<string, any>
    t.equal(configMap.data['config.yaml'], readFileSync(join(SIDECAR, 'highproxy.k8s.yaml'), 'utf8'), 'the ConfigMap holds highproxy.k8s.yaml as it is')

    const pod = deployment.spec.template.spec
    t.same(deployment.spec.selector.matchLabels, deployment.spec.template.metadata.labels)
    t.same(service.spec.selector, deployment.spec.template.metadata.labels, 'the Service selects the pods')
    t.equal(pod.securityContext.runAsNonRoot, true, 'runAsNonRoot')
    const proxy = pod.containers.find((c: any) => c.name === 'highproxy')
    const app = pod.containers.find((c: any) => c.name === 'app')
    t.ok(proxy && app, 'two containers: app and highproxy')

    const mount = proxy.volumeMounts.find((m: any) => pod.volumes.some((v: any) => v.name === m.name && v.configMap?.name === configMap.metadata.name))
    const configPath = proxy.args[proxy.args.indexOf('--config') + 1] as string
    t.equal(configPath, posix.join(mount.mountPath, 'config.yaml'), `--config ${configPath} is the ConfigMap's file`)
    t.notOk('subPath' in mount, 'a directory mount: ConfigMap edits reach the file (for SIGHUP)')
    t.same(proxy.readinessProbe.httpGet, { path: '/readyz', port: k8s.admin.port }, 'readinessProbe /readyz on the admin port')
    t.same(proxy.livenessProbe.httpGet, { path: '/healthz', port: k8s.admin.port }, 'livenessProbe /healthz on the admin port')
    t.ok(proxy.ports.some((p: any) => p.containerPort === k8s.listen.port && p.name === service.spec.ports[0].targetPort), 'the Service targets the proxy port')

    const sleep = (c: any): number => Number(c.lifecycle?.preStop?.exec?.command?.[1] ?? 0)
    const proxyDone = sleep(proxy) + k8s.shutdownGraceMs / 1000
    t.ok(pod.terminationGracePeriodSeconds > proxyDone, `terminationGracePeriodSeconds ${pod.terminationGracePeriodSeconds} > preStop + drain (${proxyDone} s)`)
    t.ok(sleep(app) >= proxyDone, 'the app outlives the proxy\'s drain')
    const source = appSource(t, app.command)
    t.doesNotThrow(() => new Script(source), 'the app command compiles')
    t.match(source, /listen\(3000, '127\.0\.0\.1'\)/, 'the app listens on the pod loopback, where the route points')
  })
})
