// Bad settings of the pending-connect cap, the retry budget and adaptive concurrency: the
// real CLI exits 2 with one stderr line naming the key and the problem.

import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import t from 'tap'
import { CLI } from '../cli-process.js'

const ORIGIN = 'http://127.0.0.1:9'
const pool = (extra: string): string => `pools:\n  - name: web\n    origins: [${ORIGIN}]\n${extra}routes:\n  - pool: web\n`

const cases: Array<{ name: string, yaml: string, key: string, problem: RegExp }> = [
  { name: 'a negative cap', yaml: 'connections:\n  max_pending_connects: -1\n', key: 'connections.max_pending_connects', problem: /greater or equal to 0/ },
  { name: 'a negative cap on a pool', yaml: pool('    connections:\n      max_pending_connects: -5\n'), key: 'pools.0.connections.max_pending_connects', problem: /greater or equal to 0/ },
  { name: 'a budget over 100%', yaml: pool('    retry_budget:\n      percent: 150\n'), key: 'pools.0.retry_budget.percent', problem: /less or equal to 100/ },
  { name: 'a negative minimum of retries', yaml: pool('    retry_budget:\n      min_retries: -1\n'), key: 'pools.0.retry_budget.min_retries', problem: /greater or equal to 0/ },
  { name: 'adaptive_concurrency that is neither a switch nor knobs', yaml: pool('    adaptive_concurrency: fast\n'), key: 'pools.0.adaptive_concurrency', problem: /true, false, or an object of knobs/ },
  { name: 'a bad adaptive knob', yaml: pool('    adaptive_concurrency:\n      queue_timeout: 0s\n'), key: 'pools.0.adaptive_concurrency.queue_timeout', problem: /a duration above zero/ },
  { name: 'an unknown adaptive knob', yaml: pool('    adaptive_concurrency:\n      limit: 5\n'), key: 'pools.0.adaptive_concurrency.limit', problem: /unknown key/ },
  { name: 'min_limit above max_limit', yaml: pool('    adaptive_concurrency:\n      min_limit: 50\n      max_limit: 10\n'), key: 'pools.0.adaptive_concurrency.min_limit', problem: /not be above max_limit/ }
]

for (const c of cases) {
  t.test(c.name, async t => {
    const dir = t.testdir({ 'config.yaml': c.yaml })
    const r = spawnSync(process.execPath, [CLI, '--config', join(dir, 'config.yaml')], { encoding: 'utf8', timeout: 30_000 })
    t.equal(r.status, 2, 'exit 2')
    t.equal(r.stdout, '', 'nothing on stdout')
    const lines = r.stderr.split('\n').filter(l => l !== '')
    t.equal(lines.length, 1, `one line: ${r.stderr}`)
    t.match(lines[0], `config ${c.key}: `, 'names the key')
    t.match(lines[0], c.problem, 'and the problem')
  })
}
