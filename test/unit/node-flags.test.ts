// The V8 flags highproxy runs with (src/node-flags.ts): every launcher says the same, and
// the primary of --workers adds them to a worker's without overriding an operator's own.

import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { NODE_FLAGS, withNodeFlags } from '../../src/node-flags.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))

// The image's ENTRYPOINT is checked with the rest of the Dockerfile (test/e2e/container.test.ts).
t.test('npm start starts node with each flag, before the CLI', async t => {
  const start = (JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8')) as { scripts: Record<string, string> }).scripts.start as string
  t.equal(start, `node ${NODE_FLAGS.join(' ')} dist/cli.js`, 'package.json scripts.start')
})

t.test('withNodeFlags: adds what is missing, keeps what the operator set', async t => {
  t.same(withNodeFlags([]), [...NODE_FLAGS], 'nothing given: every flag')
  t.same(withNodeFlags(['--enable-source-maps']), ['--enable-source-maps', ...NODE_FLAGS], 'after the process\'s own flags')
  t.same(withNodeFlags(['--max-semi-space-size=64']), ['--max-semi-space-size=64'], 'the operator\'s value is kept')
  t.same(withNodeFlags(['--max_semi_space_size=8']), ['--max_semi_space_size=8'], 'V8\'s underscore spelling is the same flag')
  t.same(withNodeFlags([], '--max-old-space-size=512 --max-semi-space-size=16'), [], 'NODE_OPTIONS sets it already: not given twice')
  t.same(withNodeFlags([], '--max-old-space-size=512'), [...NODE_FLAGS], 'NODE_OPTIONS with other flags only')
})
