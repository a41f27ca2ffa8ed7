// A worker that cannot start is not replaced forever. Its config file was broken after the
// primary started (or its port was taken): each replacement dies before it listens, and
// the primary used to fork a new one every second for as long as nobody noticed — a process
// left spinning after its test had been killed was how this was found. Now, after five in a
// row, the primary stops the others and exits 1, so that its supervisor is told.

import { writeFileSync } from 'node:fs'
import t, { type Test } from 'tap'
import { healthyOrigin } from '../../src/lab/healthy-origin.js'
import { startWorkers } from '../cli-process.js'
import { alive } from '../leftovers.js'

/** Two workers proxying to a healthy origin, with the config file they read. */
async function twoWorkers (t: Test): Promise<{ p: Awaited<ReturnType<typeof startWorkers>>, file: string }> {
  const healthy = await healthyOrigin()
  t.teardown(() => healthy.close())
  const file = `${t.testdir({})}/config.yaml`
  writeFileSync(file, `routes:\n  - { name: ok, path: /, origin: "${healthy.url}" }\n`)
  const p = await startWorkers(['--config', file], 2)
  t.teardown(() => { p.child.kill('SIGKILL') })
  return { p, file }
}

t.test('workers that keep dying before they listen: the primary gives up and exits 1', async t => {
  const { p, file } = await twoWorkers(t)

  // Every worker forked from now on reads a config that does not load.
  writeFileSync(file, 'routes: [ { name: ok, path: /, origin: 12 } ]\n')
  process.kill(p.pids[0] as number, 'SIGKILL')

  const code = await p.exited
  t.equal(code, 1, 'the primary exits 1')
  const gaveUp = p.logs.find(l => l.msg?.startsWith('workers keep dying before they listen'))
  t.ok(gaveUp, 'it says why')
  t.equal(gaveUp?.in_a_row, 5, 'after five in a row')
  t.equal(p.logs.filter(l => l.msg === 'worker died, starting another').length, 5,
    'the killed worker and four that could not start were replaced; the fifth was not')
  t.notOk(alive(p.pids[1] as number), 'the worker that still served was stopped')
})

t.test('a worker that listened and then died is replaced, and counts as no failed start', async t => {
  const { p } = await twoWorkers(t)

  // Five crashes of workers that had listened: as many as the limit, and still replaced.
  const seen = new Set(p.pids)
  let pid = p.pids[0] as number
  for (let i = 1; i <= 5; i++) {
    process.kill(pid, 'SIGKILL')
    const next = await p.waitFor(l => l.msg === 'highproxy listening' && !seen.has(Number(l.pid)), 15_000)
    pid = Number(next.pid)
    seen.add(pid)
  }
  t.equal(p.logs.filter(l => l.msg === 'worker died, starting another').length, 5)
  t.equal(p.child.exitCode, null, 'the primary still runs')
})
