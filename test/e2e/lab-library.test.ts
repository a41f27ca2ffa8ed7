// startLab, the library behind `highproxy/lab`: it starts what a test names (or every
// fault), hands back URLs by stable key, says what it cannot make, and close() leaves
// nothing behind: no listener, no child process.

import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { request } from 'undici'
import { STARTERS } from '../../src/lab/catalog.js'
import { FAULT_NAMES, LAB_START, LAB_UNAVAILABLE, LAB_UNKNOWN_FAULT, startLab } from '../../src/lab/index.js'
import { client } from '../helpers.js'
import { childrenOf, isSynDropChild } from '../leftovers.js'

const synDropChildren = (): number[] => childrenOf(process.pid).filter(isSynDropChild).map(p => p.pid)

const refuses = (url: string): Promise<boolean> => new Promise(resolve => {
  const socket = net.connect({ host: new URL(url).hostname, port: Number(new URL(url).port) })
  socket.once('connect', () => { socket.destroy(); resolve(false) })
  socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'))
})

t.test('the faults named, and the healthy origin, by key', async t => {
  const lab = await startLab({ faults: ['521', '524'] })
  t.teardown(() => lab.close())
  t.same(Object.keys(lab.urls).sort(), ['521', '524', 'healthy'])
  for (const [key, url] of Object.entries(lab.urls)) t.equal(url, lab.origins[key as keyof typeof lab.origins].url, key)
  t.match(lab.origins['524'], { key: '524', status: 524, available: true })
  const res = await request(lab.urls.healthy, { dispatcher: client })
  t.equal(res.statusCode, 200)
  await res.body.dump()
})

t.test('every fault by default; the catalog lists each once, in status order', async t => {
  t.same([...FAULT_NAMES].sort(), Object.keys(STARTERS).sort(), 'FAULT_NAMES covers the catalog')
  t.equal(new Set(FAULT_NAMES).size, FAULT_NAMES.length)
  const lab = await startLab()
  t.teardown(() => lab.close())
  t.same(Object.keys(lab.origins).sort(), ['healthy', ...FAULT_NAMES].sort())
  for (const name of FAULT_NAMES) t.equal(lab.origins[name].key, name, `${name} is started under its own key`)
  const statuses = FAULT_NAMES.map(name => lab.origins[name].status ?? 1000)
  t.same(statuses, [...statuses].sort((a, b) => a - b), 'listed by edge status, the answering ones last')
})

t.test('an unknown fault is refused, naming the known ones', async t => {
  await t.rejects(startLab({ faults: ['599' as never] }), { name: 'TypeError', code: LAB_UNKNOWN_FAULT, message: /unknown lab fault "599".*520-reset/ })
})

t.test('every error startLab throws has a code: a fault that fails to start', async t => {
  t.equal(LAB_UNKNOWN_FAULT, 'HPX_ERR_LAB_UNKNOWN_FAULT')
  t.equal(LAB_START, 'HPX_ERR_LAB_START')
  // Knobs the starter cannot read: it throws, and startLab rejects with a code, naming the fault.
  const err = await startLab({ faults: { '520-reset': null as never } }).then(() => null, (e: unknown) => e as { code?: string, fault?: string, message: string, cause?: unknown })
  t.match(err, { code: LAB_START, fault: '520-reset', message: /lab fault 520-reset could not start/ })
  t.type(err?.cause, Error, 'the starter\'s own error is the cause')
})

t.test('close() closes every origin and the 522 child, and may be called twice', async t => {
  const before = synDropChildren()
  const lab = await startLab({ faults: ['522'] })
  const mine = synDropChildren().filter(pid => !before.includes(pid))
  t.equal(mine.length, 1, 'one SYN-dropping child while the lab runs')
  await lab.close()
  await lab.close()
  t.same(synDropChildren().filter(pid => mine.includes(pid)), [], 'the child is gone once close() resolves')
  t.ok(await refuses(lab.urls.healthy), 'the healthy origin no longer listens')
})

t.test('a fault this machine cannot make: reported when all are asked for, refused when named', async t => {
  // An `ip` that fails like it does without CAP_NET_ADMIN.
  const dir = await mkdtemp(join(tmpdir(), 'highproxy-lab-ip-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  await writeFile(join(dir, 'ip'), '#!/bin/sh\necho "RTNETLINK answers: Operation not permitted" >&2\nexit 2\n')
  await chmod(join(dir, 'ip'), 0o755)
  const path = process.env.PATH
  process.env.PATH = `${dir}:${path ?? ''}`
  t.teardown(() => { process.env.PATH = path })

  const all = await startLab()
  t.teardown(() => all.close())
  t.match(all.origins['523'], { available: false, reason: /Operation not permitted.*CAP_NET_ADMIN/ })
  t.equal(all.origins['521'].available, true, 'the others are there')

  const before = synDropChildren()
  await t.rejects(startLab({ faults: ['522', '523'] }), { code: LAB_UNAVAILABLE, message: /523 cannot be made here/ })
  t.same(synDropChildren().filter(pid => !before.includes(pid)), [], 'what it had started is closed again')
})
