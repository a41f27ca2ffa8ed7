// @fastify/reply-from and @fastify/http-proxy are the app's, optional peers of
// `highproxy/fastify` only: neither the CLI, nor the main export, nor highproxy/fastify
// itself loads them. Both are CommonJS, so whatever loads them lands in require.cache,
// which a preloaded module reads as the process exits (dist as built: `npm run build`).

import { execFile } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { promisify } from 'node:util'
import t from 'tap'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const DIST = join(ROOT, 'dist')
if (!existsSync(join(DIST, 'fastify', 'index.js'))) throw new Error('dist/fastify is missing: run `npm run build` first')

const PRELOAD = `data:text/javascript,${encodeURIComponent(`
import { createRequire } from 'node:module'
const cache = createRequire(process.execPath).cache
process.on('exit', () => {
  const peers = Object.keys(cache).filter(p => /[\\\\/]@fastify[\\\\/](reply-from|http-proxy)[\\\\/]/.test(p))
  process.stderr.write('PEERS ' + JSON.stringify(peers) + '\\n')
})`)}`

const run = promisify(execFile)
// Not tap's preloads: the process loads only what it loads itself.
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'NODE_OPTIONS'))

async function peersLoaded (args: string[]): Promise<string[]> {
  const { stderr } = await run(process.execPath, ['--import', PRELOAD, ...args], { cwd: ROOT, env, timeout: 30_000 })
  const line = /^PEERS (.*)$/m.exec(stderr)?.[1]
  if (line === undefined) throw new Error(`no PEERS line from the preload: ${stderr}`)
  return JSON.parse(line) as string[]
}

const importing = (...modules: string[]): string[] =>
  ['--input-type=module', '-e', modules.map(m => `await import(${JSON.stringify(m)})`).join('\n')]
const dist = (path: string): string => pathToFileURL(join(DIST, path)).href

t.test('the CLI does not load reply-from or http-proxy', async t => {
  t.same(await peersLoaded([join(DIST, 'cli.js'), '--version']), [])
})

t.test('nor do the main export, the CLI\'s lazily loaded commands, or highproxy/fastify', async t => {
  t.same(await peersLoaded(importing(dist('index.js'), dist('lab/command.js'), dist('probe.js'), dist('fastify/index.js'))), [])
})

t.test('the check sees them when they are loaded', async t => {
  const peers = await peersLoaded(importing(dist('fastify/index.js'), '@fastify/http-proxy'))
  t.ok(peers.some(p => p.includes('reply-from')) && peers.some(p => p.includes('http-proxy')), 'both are in require.cache')
})

t.test('package.json: optional peers, and the export with its types', async t => {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as Record<string, Record<string, unknown>>
  t.same(Object.keys(pkg.peerDependencies ?? {}).sort(), ['@fastify/http-proxy', '@fastify/reply-from'])
  t.same(pkg.peerDependenciesMeta, { '@fastify/http-proxy': { optional: true }, '@fastify/reply-from': { optional: true } })
  t.same(pkg.exports?.['./fastify'], { types: './dist/fastify/index.d.ts', default: './dist/fastify/index.js' })
  t.notOk(Object.hasOwn(pkg.dependencies ?? {}, '@fastify/reply-from'), 'not a dependency')
  t.notOk(Object.hasOwn(pkg.dependencies ?? {}, '@fastify/http-proxy'), 'not a dependency')
})
