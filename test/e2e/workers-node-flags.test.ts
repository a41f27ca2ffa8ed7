// --workers: each worker runs with highproxy's V8 flags (src/node-flags.ts) even when the
// primary was started without them (the `highproxy` bin, a plain `node dist/cli.js`):
// workers serve the traffic, and their young generation is what a 522 storm meets.

import { readFileSync } from 'node:fs'
import t from 'tap'
import { healthyOrigin } from '../../src/lab/healthy-origin.js'
import { NODE_FLAGS } from '../../src/node-flags.js'
import { startWorkers } from '../cli-process.js'

const argv = (pid: number): string[] => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')

t.test('a primary started without the flags forks workers with them', async t => {
  const healthy = await healthyOrigin()
  t.teardown(() => healthy.close())
  const p = await startWorkers(['--origin', healthy.url], 2)
  t.teardown(() => { p.child.kill('SIGKILL') })
  const primary = argv(p.child.pid as number)
  for (const flag of NODE_FLAGS) t.notOk(primary.includes(flag), `the primary has no ${flag}`)
  t.equal(p.pids.length, 2)
  for (const pid of p.pids) {
    const args = argv(pid)
    for (const flag of NODE_FLAGS) t.ok(args.includes(flag), `worker ${pid} runs with ${flag}`)
  }
})
