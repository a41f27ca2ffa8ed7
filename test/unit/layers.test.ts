// The layers of src/ hold (.dependency-cruiser.cjs says what they are): no folder imports
// one above it, no import cycle, nothing but the demo, the CLI and the tests imports the
// fault lab. dependency-cruiser reads the imports (type-only and dynamic ones too); a
// failure names each import that breaks a rule.

import { execFile } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import t from 'tap'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const RULES = join(ROOT, '.dependency-cruiser.cjs')
const CRUISE = join(ROOT, 'node_modules', 'dependency-cruiser', 'bin', 'dependency-cruise.mjs')

interface Violation {
  from: string
  to: string
  rule: { name: string }
  cycle?: Array<{ name: string }>
}

/** Every import under `cwd`/src that breaks a rule, one line each. */
async function violations (cwd: string): Promise<string[]> {
  // depcruise exits non-zero when it finds violations; the JSON on stdout is the answer either way.
  const { stdout } = await promisify(execFile)(process.execPath, [CRUISE, '--config', RULES, '--output-type', 'json', 'src'],
    { cwd, maxBuffer: 64 * 1024 * 1024 }).catch((err: { stdout?: string, stderr?: string }) => {
    if (err.stdout === undefined || err.stdout === '') throw new Error(`dependency-cruiser failed: ${err.stderr ?? String(err)}`)
    return { stdout: err.stdout }
  })
  const result = JSON.parse(stdout) as { summary: { violations: Violation[] } }
  return result.summary.violations.map(v =>
    `${v.rule.name}: ${v.from} → ${v.to}${v.cycle === undefined ? '' : ` (cycle: ${v.cycle.map(c => c.name).join(' → ')})`}`)
}

t.test('src/ keeps its layers', async t => {
  t.same(await violations(ROOT), [], 'no import breaks a layer rule')
})

t.test('the rules catch what they forbid', async t => {
  // A small tree with one import of each kind the rules forbid, so this test fails if the
  // rules file stops matching paths (a typo in a pattern would otherwise pass silently).
  const dir = mkdtempSync(join(tmpdir(), 'hpx-layers-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const files: Record<string, string> = {
    'tsconfig.json': JSON.stringify({ compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', strict: true } }),
    'src/cli.ts': "import './lab/index.js'\nimport './listen/server.js'\n",
    'src/listen/server.ts': "import '../edge/handle.js'\n",
    'src/edge/handle.ts': "import '../log/log.js'\n",
    // upward: log/ is below edge/
    'src/log/log.ts': "import type { X } from '../edge/exchange.js'\nexport type Y = X\n",
    'src/edge/exchange.ts': 'export type X = number\n',
    // the product on its lab
    'src/page/host.ts': "import '../lab/index.js'\n",
    'src/lab/index.ts': 'export const lab = 1\n',
    // fastify/ on edge/
    'src/fastify/index.ts': "import '../edge/exchange.js'\n",
    // a two-file cycle of facts, through a type
    'src/status/a.ts': "import type { B } from './b.js'\nexport type A = B\n",
    'src/status/b.ts': "import type { A } from './a.js'\nexport type B = A | 1\n"
  }
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, name)), { recursive: true })
    writeFileSync(join(dir, name), text)
  }
  const found = await violations(dir)
  t.ok(found.some(v => v.startsWith('layer-log: src/log/log.ts → src/edge/exchange.ts')), 'an upward import', { found })
  t.ok(found.some(v => v.startsWith('lab-only-from-demo-cli-tests: src/page/host.ts → src/lab/index.ts')), 'the product importing lab/', { found })
  t.ok(found.some(v => v.startsWith('fastify-beside: src/fastify/index.ts → src/edge/exchange.ts')), 'fastify/ importing edge/', { found })
  t.ok(found.some(v => v.startsWith('no-circular: src/status/a.ts → src/status/b.ts')), 'a cycle', { found })
  t.notOk(found.some(v => v.includes('src/cli.ts')), 'the CLI may import lab/ and any layer', { found })
  t.notOk(found.some(v => v.startsWith('layer-listen') || v.startsWith('layer-edge')), 'downward imports pass', { found })
})
