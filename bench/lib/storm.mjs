// One 522 storm, from the harness side: fork the storm client, let it get ready, take
// the "before" readings, fire, take readings while the requests pend, and the "after"
// readings the moment the last answer is in. Shared by run.mjs and profile.mjs.

import { fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { percentile } from './load.mjs'

const CLIENT = fileURLToPath(new URL('./storm-client.mjs', import.meta.url))

/**
 * Runs one storm of `concurrency` new-connection requests to `port` + `path`.
 * Hooks (all synchronous, so nothing else runs between them and the event they mark):
 *   beforeFire()      right before 'go' is sent (e.g. start a CPU window)
 *   pending[]         { afterMs, fn } run that long after 'go' (e.g. RSS while they pend)
 *   afterLast()       as soon as the client reports every answer in
 * Resolves the client's result plus its summary (see summarize).
 */
export async function runStorm ({ port, path: urlPath, concurrency, timeoutMs, graceMs = 5000, beforeFire = () => {}, pending = [], afterLast = () => {} }) {
  const child = fork(CLIENT, [JSON.stringify({ port, path: urlPath, concurrency, timeoutMs, graceMs })],
    { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: [] })
  const exited = new Promise(resolve => child.once('exit', resolve))
  const messages = []
  const waiters = []
  child.on('message', m => {
    messages.push(m)
    for (const w of [...waiters]) if (w.type === m.type) w.resolve(m)
  })
  child.on('error', () => {})
  const wait = (type, ms) => new Promise((resolve, reject) => {
    const seen = messages.find(m => m.type === type)
    if (seen) { resolve(seen); return }
    const w = { type, resolve: m => { clear(); resolve(m) } }
    const timer = setTimeout(() => { clear(); reject(new Error(`storm client: no "${type}" within ${ms} ms`)) }, ms)
    const onExit = code => { clear(); reject(new Error(`storm client exited (${code}) before "${type}"`)) }
    const clear = () => { clearTimeout(timer); child.off('exit', onExit); waiters.splice(waiters.indexOf(w), 1) }
    waiters.push(w)
    child.once('exit', onExit)
  })
  const timers = []
  try {
    await wait('ready', 10_000)
    const before = beforeFire()
    child.send({ type: 'go' })
    const readings = pending.map(() => null)
    pending.forEach((p, i) => timers.push(setTimeout(() => { readings[i] = p.fn() }, p.afterMs)))
    const result = await new Promise((resolve, reject) => {
      // afterLast runs inside the message handler: the readings are taken before anything else.
      const w = { type: 'result', resolve: m => { clearTimeout(timer); resolve({ ...m, after: afterLast() }) } }
      const timer = setTimeout(() => reject(new Error('storm client: no result in time')), timeoutMs + graceMs + 15_000)
      const seen = messages.find(m => m.type === 'result')
      if (seen) { clearTimeout(timer); resolve({ ...seen, after: afterLast() }); return }
      waiters.push(w)
      child.once('exit', code => { if (!messages.some(m => m.type === 'result')) { clearTimeout(timer); reject(new Error(`storm client exited (${code}) without a result`)) } })
    })
    const fired = messages.find(m => m.type === 'fired')
    const connected = messages.find(m => m.type === 'connected')
    return { ...result, before, readings, firedDoneAt: fired?.at ?? null, connectedAt: connected?.at ?? null, summary: summarize(result, timeoutMs) }
  } finally {
    for (const t of timers) clearTimeout(t)
    if (child.exitCode === null) child.kill('SIGKILL')
    await exited
  }
}

const stats = values => {
  const s = Float64Array.from(values).sort()
  return { count: s.length, median: percentile(s, 50), p99: percentile(s, 99), max: s.length ? s[s.length - 1] : null, min: s.length ? s[0] : null }
}

/**
 * What the client saw: 522s and their lateness, early ones (before the timeout),
 * immediate ones (before half of it: no connect was waited for, e.g. the origin was
 * marked down), other answers, lost ones, and handshake times.
 */
export function summarize (result, timeoutMs) {
  const statuses = {}
  const late = []
  const handshakes = []
  for (const [status, lateness, handshake] of result.answers) {
    statuses[status] = (statuses[status] ?? 0) + 1
    if (status === 522) late.push(lateness)
    if (handshake !== null) handshakes.push(handshake)
  }
  const lateness = stats(late)
  return {
    sent: result.sent,
    answered: result.answered,
    got522: late.length,
    statuses,
    early: late.filter(v => v < 0).length,
    immediate: late.filter(v => v < -timeoutMs / 2).length,
    lost: result.lost,
    lostReasons: result.lostReasons,
    badAnswers: result.badAnswers,
    lateness,
    handshake: { ...stats(handshakes), over500ms: handshakes.filter(v => v > 500).length },
    windowMs: result.firedAt === null || result.lastAnswerAt === null ? null : result.lastAnswerAt - result.firedAt
  }
}
