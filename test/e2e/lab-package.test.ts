// What a user installs: `npm pack` of this repository (dist as built: `npm run build`
// first), installed into a new project (with @fastify/http-proxy, the optional peer of
// `highproxy/fastify`), whose tests import `highproxy/lab`, `highproxy/fastify` and
// `highproxy`. There the node:test examples of docs/lab.md and docs/fastify.md (plain
// JavaScript, as a user on Node 20 runs them) run with node --test, next to a TypeScript
// test and a type check compiled with this repository's tsc against the shipped .d.ts
// files, and a check that the packed edge still finds its page templates. So the export
// map, the types and the templates ship.

import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import t from 'tap'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const TSC = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc')
if (!existsSync(join(ROOT, 'dist', 'lab', 'index.js'))) throw new Error('dist/lab is missing: run `npm run build` first')

const run = promisify(execFile)
// Not tap's preloads (NODE_OPTIONS) nor its variables: the new project runs as a user's would.
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('TAP') && !k.startsWith('_TAPJS') && k !== 'NODE_OPTIONS'))
const inDir = (cwd: string, file: string, args: string[]): Promise<{ stdout: string, stderr: string }> =>
  run(file, args, { cwd, env, timeout: 45_000, maxBuffer: 16 * 1024 * 1024 })

/** A docs example: the block after the comment that names this file and `what`, in docs/`page`. */
async function docsExample (page: string, what: string): Promise<string> {
  const text = await readFile(join(ROOT, 'docs', page), 'utf8')
  const block = new RegExp(`<!-- test/e2e/lab-package\\.test\\.ts runs this ${what}[^>]*-->\\s*\`\`\`js\\n([\\s\\S]*?)\`\`\``).exec(text)?.[1]
  if (block === undefined) throw new Error(`docs/${page} has no "${what}" block marked for test/e2e/lab-package.test.ts`)
  return block
}

const EDGE_TEST = `import assert from 'node:assert/strict'
import { test } from 'node:test'
import Fastify from 'fastify'
import { edgeProxy, loadConfig } from 'highproxy'
import { startLab } from 'highproxy/lab'

test('the packed edge answers a refused origin with its own 521 page', async t => {
  const lab = await startLab({ faults: ['521'] })
  t.after(() => lab.close())
  const config = loadConfig({ flags: { origin: lab.urls['521'] }, env: {}, isTTY: false })
  const app = Fastify()
  await app.register(edgeProxy, config.edge)
  t.after(() => app.close())
  const res = await fetch(await app.listen({ host: '127.0.0.1', port: 0 }))
  assert.equal(res.status, 521)
  assert.match(await res.text(), /<title>[^<]*521: Web server is down/)
})
`

// Compiled, never run: the shipped types must know the faults, their knobs and what was started.
const TYPES_CHECK = `import { startLab, FAULT_NAMES, type FaultName, type Lab } from 'highproxy/lab'
import { edgeDispatcher, edgeOnError, type EdgeDispatcherOptions } from 'highproxy/fastify'
import type { FastifyReply } from 'fastify'
import type { Dispatcher } from 'undici'

export async function typed (): Promise<void> {
  const lab: Lab<'521' | '524'> = await startLab({ faults: { '521': true, '524': { silentMs: 10 } } })
  const url: string = lab.urls['524']
  const ca: string | undefined = lab.origins['521'].ca
  // @ts-expect-error 522 was not started
  void lab.urls['522']
  // @ts-expect-error delayMs is not a knob of 524
  await startLab({ faults: { '524': { delayMs: 1 } } })
  const names: readonly FaultName[] = FAULT_NAMES
  void [url, ca, names]
}

export function fastifyTyped (): void {
  const options: EdgeDispatcherOptions = { connectTimeout: '5s', headersTimeout: 30_000, verify: true, pipelining: 1 }
  const undici: Dispatcher = edgeDispatcher(options)
  // @ts-expect-error a duration is milliseconds or a string like '5s'
  edgeDispatcher({ connectTimeout: true })
  const onError: (reply: FastifyReply, failure: { error: Error }) => void = edgeOnError({ pool: 'api', rayHeader: 'x-ray' })
  void [undici, onError]
}
`

t.test('the packed tarball, installed in a new project, runs the node:test examples of the docs', async t => {
  const dir = await mkdtemp(join(tmpdir(), 'highproxy-package-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const project = join(dir, 'project')

  // --ignore-scripts: `prepare` would build again; dist is what was just built.
  const packed = await inDir(ROOT, 'npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir])
  const [{ filename, files }] = JSON.parse(packed.stdout) as [{ filename: string, files: Array<{ path: string }> }]
  const paths = files.map(f => f.path)
  for (const path of ['dist/lab/index.js', 'dist/lab/index.d.ts', 'dist/fastify/index.js', 'dist/fastify/index.d.ts', 'templates/error.html']) t.ok(paths.includes(path), `${path} is packed`)
  t.notOk(paths.some(p => p.startsWith('test/') || p.startsWith('src/')), 'neither tests nor sources are packed')

  await run('mkdir', [project])
  await writeFile(join(project, 'package.json'), JSON.stringify({ name: 'lab-consumer', private: true, type: 'module' }))
  // The optional peer a highproxy/fastify user brings, at the version this repository tests.
  const httpProxy = (JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { devDependencies: Record<string, string> }).devDependencies['@fastify/http-proxy']
  await inDir(project, 'npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', join(dir, filename), `@fastify/http-proxy@${httpProxy ?? ''}`])

  // JavaScript, run as it is: neither compiled nor type-checked (TYPES_CHECK holds the types).
  await writeFile(join(project, 'price.test.mjs'), await docsExample('lab.md', 'example'))
  await writeFile(join(project, 'fastify.test.mjs'), await docsExample('fastify.md', 'highproxy/fastify example'))
  await writeFile(join(project, 'edge.test.ts'), EDGE_TEST)
  await writeFile(join(project, 'types-check.ts'), TYPES_CHECK)
  // http-proxy's types import three names from ws, whose types (@types/ws) it does not
  // depend on; a project that checks library types (no skipLibCheck, so ours are checked)
  // declares them (installing @types/ws would leave loopback).
  await writeFile(join(project, 'ws.d.ts'), `declare module 'ws' {
  export type ClientOptions = Record<string, unknown>
  export type ServerOptions = Record<string, unknown>
  export class WebSocket {}
}
`)
  await writeFile(join(project, 'tsconfig.json'), JSON.stringify({
    compilerOptions: {
      target: 'ES2022',
      module: 'NodeNext',
      moduleResolution: 'NodeNext',
      strict: true,
      outDir: 'out',
      rootDir: '.',
      // The types of node:test and fetch, from this repository: the project installs only highproxy.
      typeRoots: [join(ROOT, 'node_modules', '@types')],
      types: ['node']
    },
    include: ['*.ts']
  }))
  const compiled = await inDir(project, process.execPath, [TSC, '-p', 'tsconfig.json']).then(() => '', (err: { stdout?: string }) => err.stdout ?? String(err))
  t.equal(compiled, '', 'the project type-checks against the shipped .d.ts files')
  if (compiled !== '') return

  const tested = await inDir(project, process.execPath, ['--test', '--test-reporter=tap', 'price.test.mjs', 'out/edge.test.js', 'fastify.test.mjs'])
    .then(r => r.stdout, (err: { stdout?: string }) => err.stdout ?? String(err))
  t.match(tested, /^# pass 3$/m, 'the three tests pass there')
  t.match(tested, /^# fail 0$/m)
  t.match(tested, /^# skipped 0$/m, 'and none was skipped')
  if (!/^# pass 3$/m.test(tested)) t.comment(tested)
})
