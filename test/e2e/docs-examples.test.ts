// The code examples of README.md and docs/*.md run on plain Node, as a reader on Node 20
// copies them: every ```js, ```javascript and ```mjs block passes `node --check` as an ES
// module, and every block not marked as a fragment (an HTML comment `<!-- fragment: why -->`
// right before it) really runs to its end, exit 0, on loopback. The blocks run from a folder
// inside this repository, so `highproxy`, `highproxy/lab` and `highproxy/fastify` resolve to
// this package (dist as built: `npm run build` first) and fastify to its node_modules.

import { execFile } from 'node:child_process'
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import t from 'tap'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
if (!existsSync(join(ROOT, 'dist', 'lab', 'index.js'))) throw new Error('dist/lab is missing: run `npm run build` first')

const run = promisify(execFile)
// Not tap's preloads (NODE_OPTIONS) nor its variables: the example runs as a reader's would.
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('TAP') && !k.startsWith('_TAPJS') && k !== 'NODE_OPTIONS'))

interface Example { file: string, line: number, code: string, fragment: boolean }

/** The JavaScript blocks of a Markdown file, each with whether the comment before it calls it a fragment. */
export function examples (file: string, text: string): Example[] {
  const found: Example[] = []
  for (const m of text.matchAll(/^```(js|javascript|mjs)[ \t]*\n([\s\S]*?)^```[ \t]*$/gm)) {
    const before = text.slice(0, m.index).trimEnd()
    const comments = /(?:<!--(?:(?!-->)[\s\S])*-->\s*)+$/.exec(before)?.[0] ?? ''
    found.push({ file, line: before.split('\n').length + 1, code: m[2] as string, fragment: /<!--\s*fragment\b/.test(comments) })
  }
  return found
}

const files = ['README.md', ...readdirSync(join(ROOT, 'docs')).filter(f => f.endsWith('.md')).map(f => join('docs', f))]
const all = files.flatMap(f => examples(f, readFileSync(join(ROOT, f), 'utf8')))

t.test('the docs hold JavaScript examples, not TypeScript ones', async t => {
  t.ok(all.length >= 8, `${all.length} JavaScript examples`)
  t.ok(all.filter(e => !e.fragment).length >= 5, `${all.filter(e => !e.fragment).length} of them run`)
  for (const f of files) {
    const ts = [...readFileSync(join(ROOT, f), 'utf8').matchAll(/^```(ts|typescript|tsx)\b/gm)]
    t.equal(ts.length, 0, `${f} has no TypeScript block (Node 20 cannot run it)`)
  }
})

t.test('a block is a fragment only when marked, and the marker is found', async t => {
  const text = 'a\n\n<!-- fragment: needs a server -->\n```js\nfoo()\n```\n\n<!-- something else -->\n```mjs\nbar()\n```\n'
  const [marked, plain] = examples('x.md', text)
  t.equal(marked?.fragment, true)
  t.equal(marked?.line, 4)
  t.equal(plain?.fragment, false)
  t.equal(plain?.code, 'bar()\n')
})

t.test('every example is valid JavaScript, and every one not marked a fragment runs', async t => {
  // Inside the repository (tap's fixtures folder), so that the package resolves itself.
  const dir = t.testdir({})
  t.ok(relative(ROOT, dir).split('/')[0] !== '..', 'the examples run inside the repository')
  for (const [i, example] of all.entries()) {
    const where = `${example.file}:${example.line}`
    const file = join(dir, `example-${i}.mjs`)
    writeFileSync(file, example.code)
    const checked = await run(process.execPath, ['--check', file], { env }).then(() => '', (err: { stderr?: string }) => err.stderr ?? String(err))
    t.equal(checked, '', `${where} parses`)
    if (example.fragment || checked !== '') continue
    const ran = await run(process.execPath, [file], { cwd: dir, env, timeout: 60_000, maxBuffer: 16 * 1024 * 1024 })
      .then(() => '', (err: { code?: number, signal?: string, stdout?: string, stderr?: string }) => `exit ${String(err.code ?? err.signal)}\n${err.stdout ?? ''}\n${err.stderr ?? ''}`)
    t.equal(ran, '', `${where} runs to its end`)
  }
})
