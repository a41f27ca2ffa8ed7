// What the primary and its workers say to each other over the cluster IPC channel, for
// the admin listener that lives in the primary (--workers): the primary asks every
// worker a question and takes the answers that come within a short timeout; a worker
// that does not answer in time is named, not waited for. Workers also tell the primary
// when they listen and when they drain (for /readyz).

import cluster, { type Worker } from 'node:cluster'

export type Question =
  | { what: 'metrics' }
  | { what: 'ray', ray: string }
  | { what: 'ping' }
  | { what: 'cache' }
  | { what: 'origins' }
  | { what: 'purge', route: string | null, path: string | null }

export type WorkerState = 'listening' | 'draining'

interface Ask { type: 'highproxy:ask', id: number, question: Question }
interface Reply { type: 'highproxy:reply', id: number, value: unknown }
interface StateMessage { type: 'highproxy:state', state: WorkerState }

const isReply = (m: unknown): m is Reply => (m as Reply | null)?.type === 'highproxy:reply'
const isAsk = (m: unknown): m is Ask => (m as Ask | null)?.type === 'highproxy:ask'
const isState = (m: unknown): m is StateMessage => (m as StateMessage | null)?.type === 'highproxy:state'

/** Long enough for a busy event loop, short enough for a probe (Kubernetes' default is 1 s). */
export const ANSWER_TIMEOUT_MS = 800

export interface Answers {
  /** What each worker that answered in time said, with its pid. */
  answers: Array<{ pid: number, value: unknown }>
  /** Pids of the workers asked that did not answer in time. */
  unanswered: number[]
}

interface Pending { waiting: Map<number, number>, result: Answers, finish: () => void }

/** The primary's side: one listener on the cluster, questions matched to replies by id. */
export class WorkerAsker {
  private next = 0
  private readonly pending = new Map<number, Pending>()

  constructor (private readonly timeoutMs = ANSWER_TIMEOUT_MS) {
    cluster.on('message', (worker, message: unknown) => {
      if (!isReply(message)) return
      const p = this.pending.get(message.id)
      const pid = p?.waiting.get(worker.id)
      if (p === undefined || pid === undefined) return // late: already given up on
      p.waiting.delete(worker.id)
      p.result.answers.push({ pid, value: message.value })
      if (p.waiting.size === 0) p.finish()
    })
  }

  ask (workers: Worker[], question: Question): Promise<Answers> {
    const id = this.next++
    const result: Answers = { answers: [], unanswered: [] }
    const waiting = new Map<number, number>()
    return new Promise(resolve => {
      const finish = (): void => {
        clearTimeout(timer)
        this.pending.delete(id)
        result.unanswered = [...waiting.values()]
        resolve(result)
      }
      const timer = setTimeout(finish, this.timeoutMs)
      this.pending.set(id, { waiting, result, finish })
      const ask: Ask = { type: 'highproxy:ask', id, question }
      for (const w of workers) {
        if (!w.isConnected()) continue
        waiting.set(w.id, w.process.pid ?? 0)
        w.send(ask)
      }
      if (waiting.size === 0) finish()
    })
  }
}

type Answerer = { [K in Question['what']]: (q: Extract<Question, { what: K }>) => unknown }

/** A worker's side: answers the primary's questions. */
export function answerPrimary (answer: Answerer): void {
  process.on('message', (message: unknown) => {
    if (!isAsk(message)) return
    const q = message.question
    // A question that throws gets no reply: the primary reports this worker as not
    // answering, which is what it is for that question.
    void Promise.resolve().then(() => (answer[q.what] as (q: Question) => unknown)(q)).then(value => {
      const reply: Reply = { type: 'highproxy:reply', id: message.id, value }
      if (process.connected) process.send?.(reply)
    }, () => {})
  })
}

export function tellPrimary (state: WorkerState): void {
  const message: StateMessage = { type: 'highproxy:state', state }
  if (process.connected) process.send?.(message)
}

/** The primary's side of tellPrimary. */
export function onWorkerState (listener: (worker: Worker, state: WorkerState) => void): void {
  cluster.on('message', (worker, message: unknown) => { if (isState(message)) listener(worker, message.state) })
}
