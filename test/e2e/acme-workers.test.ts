// ACME with workers, against a real ACME server:
// Debian's Pebble on loopback (test/pebble.ts), its validations pointed at the proxy's
// own ports, its DNS answering 127.0.0.1 for the test names. Each test is one proxy run
// (the CLI as a child process) with its own Pebble, so each starts from an empty CA.
// Here: --workers 2, one process orders and every worker serves.

import t from 'tap'
import { DOMAIN, configFile, msg, proxy, setup, startOrigin } from '../acme-setup.js'
import type { LogLine } from '../helpers.js'
import { noPebble } from '../pebble.js'
import { handshake } from '../tls-support.js'

const originUrl = await startOrigin(t)

t.test('--workers 2: one process orders, both serve the certificate', { skip: noPebble }, async t => {
  const s = await setup(t, originUrl)
  const p = proxy(t, s, ['--config', configFile(s, {}), '--workers', '2'])
  await p.waitFor(msg('acme: certificate obtained'), 30_000)
  // The other worker picks it up from the storage.
  const pickedUp = await p.waitFor(msg('acme: certificate served'), 10_000)
  const leaders = p.logs.filter(msg('acme: this process orders and renews'))
  t.equal(leaders.length, 1, 'exactly one process orders')
  t.not(pickedUp.pid, leaders[0]?.pid, 'the other worker serves it too')
  const fingerprint = (p.logs.find(msg('acme: certificate obtained')) as LogLine).acme.fingerprint
  const root = await s.pebble.root()
  // New connections take turns between the workers.
  for (let i = 0; i < 6; i++) t.equal((await handshake(s.tlsPort, { servername: DOMAIN, ca: root })).fingerprint, fingerprint)
  t.equal(s.pebble.orders(), 1, 'one order')
})


