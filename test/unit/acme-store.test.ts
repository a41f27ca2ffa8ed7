// The ACME storage's lock, which makes one process (of the workers, or of edges sharing
// a volume) the one that orders: a live, refreshed holder keeps it; a holder whose
// process is gone, or that stopped refreshing it (its pid reused after a restart), loses
// it. And every file it writes is 0600 in 0700 directories.

import { spawnSync } from 'node:child_process'
import { statSync, utimesSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { AcmeStore, LOCK_STALE_MS } from '../../src/listen/tls/acme-store.js'

const DIRECTORY = 'https://127.0.0.1:14000/dir'

function store (t: Test): AcmeStore {
  const s = new AcmeStore(t.testdir({}), DIRECTORY)
  s.prepare()
  return s
}

/** A pid no process has now: one that just exited. */
const deadPid = (): number => spawnSync(process.execPath, ['-e', '0']).pid as number

t.test('the lock: taken once, held, released', async t => {
  const s = store(t)
  t.ok(s.tryLock(), 'free: taken')
  t.ok(s.holds())
  t.ok(s.tryLock(), 'taking it again is holding it')
  s.unlock()
  t.notOk(s.holds())
})

t.test('a live holder that refreshes keeps it; one whose process is gone loses it', async t => {
  const s = store(t)
  const lock = join(s.dir, 'lock')
  writeFileSync(lock, `${process.ppid}\n`)
  t.notOk(s.tryLock(), 'the parent process is alive and the lock is fresh')
  writeFileSync(lock, `${deadPid()}\n`)
  t.ok(s.tryLock(), 'taken over from a process that is gone')
  t.ok(s.holds())
})

t.test('a live pid that stopped refreshing (reused after a restart) loses it', async t => {
  const s = store(t)
  const lock = join(s.dir, 'lock')
  writeFileSync(lock, `${process.ppid}\n`)
  const old = new Date(Date.now() - LOCK_STALE_MS - 1000)
  utimesSync(lock, old, old)
  t.ok(s.tryLock())
  s.refreshLock()
  t.ok(Date.now() - statSync(lock).mtimeMs < LOCK_STALE_MS, 'the holder refreshes it')
})

t.test('files 0600, directories 0700', async t => {
  const s = store(t)
  s.saveAccountKey('key')
  s.saveCertificate('a.example', { cert: 'cert', key: 'key' })
  s.saveHttpToken('tok', 'tok.thumb')
  for (const d of [s.dir, s.http01Dir, s.tlsAlpnDir]) t.equal(statSync(d).mode & 0o777, 0o700, d)
  for (const f of ['account.key', 'a.example.crt', 'a.example.key', 'http-01/tok']) t.equal(statSync(join(s.dir, f)).mode & 0o777, 0o600, f)
  t.same(s.certificate('a.example'), { cert: 'cert', key: 'key' })
  t.equal(s.certificate('b.example'), null)
})
