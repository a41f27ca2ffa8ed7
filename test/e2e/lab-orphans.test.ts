// A test process that dies without closing its lab, by SIGKILL (no handler, no exit hook
// runs), must leave nothing behind: not the SYN-dropping child of the 522 fault, not the
// unreachable route of the 523 fault. A real parent process (dist/lab, as a user imports
// it: `npm run build` first) starts the lab, and is killed.

import { execFileSync, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { fileURLToPath, pathToFileURL } from 'node:url'
import t from 'tap'
import { alive, childrenOf, isSynDropChild, localRoutes } from '../leftovers.js'

const LAB = fileURLToPath(new URL('../../dist/lab/index.js', import.meta.url))
if (!existsSync(LAB)) throw new Error(`${LAB} is missing: run \`npm run build\` first`)

// 523 needs CAP_NET_ADMIN: without it the parent reports why, and that part is skipped.
const PARENT = `
const { startLab } = await import(process.argv[1])
const lab = await startLab({ faults: ['522'] })
const routed = await startLab({ faults: ['523'] }).then(l => ({ url: l.urls['523'] }), err => ({ reason: err.message }))
process.stdout.write(JSON.stringify({ synDrop: lab.urls['522'], routed }) + '\\n')
`

async function until (done: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms
  while (!done() && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 20))
  return done()
}

/** The pids of the processes with a listening TCP socket on `port` (ss -p). */
function listenersOn (port: number): number[] {
  const out = execFileSync('ss', ['-ltnpH', `sport = :${port}`], { encoding: 'utf8' })
  return [...out.matchAll(/pid=(\d+)/g)].map(m => Number(m[1]))
}

t.test('SIGKILL of the process that started the lab: its child and its route go too', async t => {
  const env = { ...process.env }
  delete env.NODE_OPTIONS // tap's preloads only slow the parent's start
  const parent = spawn(process.execPath, ['--input-type=module', '-e', PARENT, pathToFileURL(LAB).href], { env, stdio: ['ignore', 'pipe', 'inherit'] })
  const gone = new Promise(resolve => parent.once('exit', resolve))
  t.teardown(() => { if (parent.exitCode === null && parent.signalCode === null) parent.kill('SIGKILL') })

  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: parent.stdout }).once('line', resolve)
    parent.once('exit', code => reject(new Error(`the parent exited (${String(code)}) before starting its lab`)))
  })
  const started = JSON.parse(line) as { synDrop: string, routed: { url?: string, reason?: string } }
  const children = childrenOf(parent.pid as number)
  const synDrop = children.find(isSynDropChild)
  t.ok(synDrop !== undefined, 'the 522 child runs')
  const address = started.routed.url === undefined ? undefined : new URL(started.routed.url).hostname
  if (address !== undefined) t.match(localRoutes(), address, `the route to ${address} is there`)

  parent.kill('SIGKILL')
  await gone
  t.ok(await until(() => synDrop === undefined || !alive(synDrop.pid), 3000), `the 522 child ${synDrop?.pid ?? ''} is gone`)
  // Not a connect: the port went back to the kernel's port-0 pool when the child died, and the
  // SYN-dropping origins of tests running beside this one (listening with backlog 1, then gone)
  // may be given it, so a connect can time out through no fault of the lab. What must hold is
  // that no process of the dead lab listens there.
  const lab = new Set([parent.pid as number, ...children.map(c => c.pid)])
  const holders = listenersOn(Number(new URL(started.synDrop).port))
  t.ok(holders.every(pid => !lab.has(pid)), `no process of the lab listens on its port any more (listeners: ${holders.join(', ') || 'none'})`)
  t.test('the 523 route', { skip: address === undefined ? `523 cannot be made here: ${started.routed.reason ?? ''}` : false }, async t => {
    t.ok(await until(() => !localRoutes().includes(address ?? ''), 3000), `the route to ${address ?? ''} is removed`)
    t.ok(await until(() => children.every(c => !alive(c.pid)), 3000), 'no helper process of the lab is left')
  })
})
