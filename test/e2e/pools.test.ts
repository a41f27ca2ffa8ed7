// What a pool owns: its dial options (two pools may list the same origin with different
// timeouts or TLS settings), and its origins' health, which a reload keeps.

import t from 'tap'
import { refusedOrigin, synDropOrigin } from '../../src/lab/faults.js'
import { failureFor, rayOf, startProxy } from '../helpers.js'
import { getWithin, oneOfTwo, shown, timed } from '../timing.js'

t.test('two pools sharing one SYN-dropping origin each answer 522 at their own connect timeout', async t => {
  const dead = await synDropOrigin()
  t.teardown(() => dead.close())
  const proxy = await startProxy({
    pools: [
      { name: 'quick', origins: [dead.url], connect_timeout: '300ms', health: { failures: 100 } },
      { name: 'patient', origins: [dead.url], connect_timeout: '900ms', health: { failures: 100 } }
    ],
    routes: [{ path: '/quick', pool: 'quick' }, { path: '/patient', pool: 'patient' }]
  })
  t.teardown(() => proxy.close())
  for (const [path, ms] of [['/quick', 300], ['/patient', 900], ['/quick', 300]] as const) {
    const once = (): ReturnType<typeof timed<Awaited<ReturnType<typeof getWithin>>>> => timed(() => getWithin(`${proxy.url}${path}`, 3000))
    const onTime = (x: { ms: number, late: number }): boolean => x.ms < ms + 150 + x.late
    const tries = await oneOfTwo(await once(), once, onTime)
    t.ok(tries.every(x => x.status === 522), `${path}: 522`)
    t.ok(tries.every(x => x.ms >= ms), `${path}: not before ${ms} ms: ${shown(tries)}`)
    t.ok(tries.some(onTime), `${path}: at ~${ms} ms, not at the other pool's timeout: ${shown(tries)}`)
    const failure = await proxy.waitForLog(failureFor(rayOf(tries[0] as Awaited<ReturnType<typeof getWithin>>)))
    t.equal(failure.pool, path.slice(1))
    t.ok(failure.timings.connect_ms >= ms && failure.timings.connect_ms < ms + 100, `${path}: connect_ms ${String(failure.timings.connect_ms)}`)
  }
})

t.test('a reload keeps the health of origins that are still configured', async t => {
  const refused = await refusedOrigin()
  const pools = (cooldown: string): Record<string, unknown> => ({
    pools: [{ name: 'web', origins: [refused.url], health: { failures: 1, cooldown } }],
    routes: [{ pool: 'web' }]
  })
  const proxy = await startProxy(pools('60s'))
  t.teardown(() => proxy.close())
  const first = await getWithin(`${proxy.url}/`, 2000)
  t.equal(first.status, 521, 'the first request finds it refused: marked down')
  const down = await getWithin(`${proxy.url}/`, 2000)
  t.match(await proxy.waitForLog(failureFor(rayOf(down))), { error: { code: 'HPX_ERR_POOL_DOWN' } }, 'then it is down')

  proxy.reload(pools('60s'))
  const after = await getWithin(`${proxy.url}/`, 2000)
  t.equal(after.status, 521)
  t.match(await proxy.waitForLog(failureFor(rayOf(after))), { error: { code: 'HPX_ERR_POOL_DOWN' } },
    'still down after the reload: it is not dialled again at once')

  proxy.reload({ pools: [{ name: 'other', origins: [refused.url], health: { failures: 1 } }], routes: [{ pool: 'other' }] })
  const renamed = await getWithin(`${proxy.url}/`, 2000)
  t.match(await proxy.waitForLog(failureFor(rayOf(renamed))), { error: { code: 'HPX_ERR_CONNECT', cause: { code: 'ECONNREFUSED' } } },
    'a pool of another name starts with its own health: dialled')
})
