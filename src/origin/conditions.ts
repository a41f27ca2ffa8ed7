// What state is this origin in, from what each attempt already measured: `up`, `down`
// (it refuses, or cannot be reached: nothing is there), `drowning` (it is there but
// overwhelmed: SYNs dropped, connects that needed a SYN retransmit, requests accepted and
// never answered, answers far slower than its own usual with more and more in flight),
// or `recovering` (back from down or drowning, while slow start ramps its share of the
// pool's traffic back up).
//
// Passive health (health.ts) answers a different question: may a request go there now?
// It counts consecutive dial failures of any kind. The condition says why an origin
// fails, so that an operator, the error page and the pool can tell "nobody is there"
// from "it is there and sinking". Each origin keeps one, next to its health, across
// reloads; each worker keeps its own (the admin view merges them).

import { CONDITIONS, type Condition } from '../status/conditions.js'
import { ConnectFailedError, ConnectTimeoutError, causeChain, dialErrorIn } from '../status/errors.js'

// The names themselves are a fact the log schema and the metrics also print, so they live
// in status/ (below log/); the machine that moves between them is here.
export { CONDITIONS, type Condition }

/** A change of condition, reported once when it happens. */
export interface Transition {
  from: Condition
  to: Condition
  /** What the edge saw, in words: the same text the page, Proxy-Status and /origins give. */
  evidence: string
}

export interface ConditionOptions {
  /** How long `recovering` lasts, ramping the origin's share of traffic from 5% to all of it; 0: no slow start. */
  slowStartMs: number
  onChange?: (t: Transition) => void
  now?: () => number
}

/**
 * A SYN that gets no SYN-ACK is sent again after the initial retransmission timeout, 1 s:
 * then 1 s, 3 s, 7 s, 15 s after the first (Linux before 6.5), or 1, 2, 3, 4 s and on
 * where `net.ipv4.tcp_syn_linear_timeouts` (default 4 since 6.5) keeps the first
 * retransmits linear. Either way a connect that succeeded after a dropped SYN took a
 * whole number of seconds, plus the SYN-ACK's round trip and a busy event loop.
 */
const RETRANSMIT_SLACK_MS = 600
/** The connects a judgement looks at: the last 20, and none older than a minute. */
const WINDOW = 20
const WINDOW_MS = 60_000
/** Clean observations in a row that end `drowning` (or the answers that end `down`). */
const CLEAN_TO_LEAVE = 3
/** Answers needed before the origin's usual time to first byte means anything. */
const BASELINE_SAMPLES = 20
/** How fast the usual time to first byte may rise: 1% a second, so a drowning (seconds) never becomes the usual. */
const BASELINE_RISE_PER_S = 0.01
/** Slow start gives a recovering origin at least this share at first: some traffic, to see it is back. */
const SLOW_START_FLOOR = 0.05

type ConnectKind = 'ok' | 'retransmit' | 'timeout' | 'refused' | 'unreachable'

interface Connect { at: number, kind: ConnectKind, ms: number }

/** The second a connect's retransmitted SYN went at, when its time has that shape; null otherwise. */
export function retransmitStep (ms: number): number | null {
  if (ms < 950 || ms > 130_000) return null
  // The whole second at or just above ms (a timer may fire a little early).
  const step = Math.floor((ms + 50) / 1000) * 1000
  return ms - step < RETRANSMIT_SLACK_MS ? step : null
}

const UNREACHABLE = new Set(['EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ENETDOWN'])

/** What a dial error says about the origin: refused or unreachable (down), timed out (drowning), or nothing (DNS, TLS). */
function connectKind (err: unknown): ConnectKind | null {
  const dial = dialErrorIn(err)
  // A dial that waited at the pending-connect cap until its deadline sent no SYN: it is
  // not a connect, and says nothing the connects it waited behind did not. (In a 522
  // storm these are nearly all of the failures; judging the window for each was a sixth
  // of the storm's CPU.)
  if (dial instanceof ConnectTimeoutError) return dial.waitedBehind === null ? 'timeout' : null
  if (!(dial instanceof ConnectFailedError)) return null
  for (const e of causeChain(dial)) {
    const code = (e as { code?: unknown }).code
    if (code === 'ECONNREFUSED') return 'refused'
    if (typeof code === 'string' && UNREACHABLE.has(code)) return 'unreachable'
    for (const inner of (e as { errors?: unknown[] }).errors ?? []) {
      const c = (inner as { code?: unknown }).code
      if (c === 'ECONNREFUSED') return 'refused'
      if (typeof c === 'string' && UNREACHABLE.has(c)) return 'unreachable'
    }
  }
  return null
}

const plural = (n: number, one: string, many = `${one}s`): string => `${n} ${n === 1 ? one : many}`
const seconds = (steps: number[]): string => {
  const s = [...new Set(steps)].sort((a, b) => a - b).map(ms => ms / 1000)
  return s.length === 1 ? `${s[0] as number} s` : `${s[0] as number}–${s[s.length - 1] as number} s`
}

export class OriginCondition {
  private state: Condition = 'up'
  private sinceMs: number
  private evidenceText = ''
  private readonly connects: Connect[] = []
  /** Requests sent on a connection just accepted that got no response within the response timeout. */
  private unanswered: number[] = []
  private clean = 0
  /** The origin's usual time to first byte (from the request sent), and its recent one. */
  private baseline = 0
  private baselineAt = 0
  private recent = 0
  private samples = 0
  /** The in-flight count the usual time to first byte was measured at. */
  private usualInFlight = 1
  private rampTimer: NodeJS.Timeout | null = null
  private readonly now: () => number

  constructor (private opts: ConditionOptions) {
    this.now = opts.now ?? Date.now
    this.sinceMs = this.now()
  }

  /** A reload may change slow start; the state is kept. */
  configure (slowStartMs: number): void {
    this.opts = { ...this.opts, slowStartMs }
  }

  get condition (): Condition { return this.state }
  /** When the current condition began (ms since the epoch). */
  get since (): number { return this.sinceMs }
  /** Why it is in that condition ('' while up with nothing to say). */
  get evidence (): string { return this.evidenceText }

  /**
   * The share of its pool's traffic the origin should get now: 1, or while recovering a
   * share rising linearly over the slow start window (HAProxy's `slowstart`).
   */
  weight (): number {
    if (this.state !== 'recovering' || this.opts.slowStartMs <= 0) return 1
    const share = (this.now() - this.sinceMs) / this.opts.slowStartMs
    return share >= 1 ? 1 : Math.max(SLOW_START_FLOOR, share)
  }

  /** A connection was dialled for a request: its TCP handshake took `ms`. */
  connected (ms: number): void {
    const step = retransmitStep(ms)
    this.push(step === null ? 'ok' : 'retransmit', ms)
    if (step === null) this.wasClean()
    else this.distressed()
  }

  /** A dial failed; only refusals, unreachable routes and connect timeouts say something about the origin. */
  dialFailed (err: unknown, ms: number): void {
    const kind = connectKind(err)
    if (kind === null) return
    this.push(kind, ms)
    if (kind === 'timeout') {
      this.distressed()
    } else {
      this.clean = 0
      this.become('down', this.downEvidence())
    }
  }

  /** The origin's response headers came `ms` after the request was sent, with `inFlight` requests at it. */
  answered (ms: number, inFlight: number): void {
    this.samples++
    const now = this.now()
    if (this.samples === 1) {
      this.baseline = ms
      this.recent = ms
      this.baselineAt = now
    }
    this.recent += (ms - this.recent) * 0.2
    // The usual moves down at once and up slowly, and only while the origin is not in distress.
    if (this.state === 'up' || this.state === 'recovering') {
      const ceiling = this.baseline * (1 + BASELINE_RISE_PER_S * (now - this.baselineAt) / 1000)
      this.baseline = Math.min(this.baseline + (ms - this.baseline) * 0.05, ceiling)
      this.baselineAt = now
      this.usualInFlight += (inFlight - this.usualInFlight) * 0.05
    }
    if (this.slowAnswers(inFlight)) {
      this.distressed(inFlight)
      return
    }
    this.wasClean()
  }

  /** A request sent on a connection just accepted got no response within the response timeout. */
  noResponse (): void {
    this.unanswered.push(this.now())
    this.distressed()
  }

  /** For /origins and the metrics. */
  snapshot (): { condition: Condition, since: number, evidence: string } {
    return { condition: this.state, since: this.sinceMs, evidence: this.evidenceText }
  }

  private slowAnswers (inFlight: number): boolean {
    if (this.samples < BASELINE_SAMPLES) return false
    return this.recent > Math.max(5 * this.baseline, this.baseline + 250) && inFlight >= Math.max(4, 2 * this.usualInFlight)
  }

  private push (kind: ConnectKind, ms: number): void {
    this.connects.push({ at: this.now(), kind, ms })
    if (this.connects.length > WINDOW) this.connects.shift()
  }

  private wasClean (): void {
    if (this.state === 'up' || this.state === 'recovering') return
    // Down means nobody was there: one connect that went through, or one answer, ends it.
    // Drowning ends after a few clean ones in a row.
    if (this.state === 'down' || ++this.clean >= CLEAN_TO_LEAVE) this.recover()
  }

  /** Evidence of drowning arrived: judge the window. */
  private distressed (inFlight = 0): void {
    this.clean = 0
    const evidence = this.drowningEvidence(inFlight)
    if (evidence !== null && (this.state !== 'drowning' || evidence !== this.evidenceText)) {
      if (this.state === 'drowning') this.evidenceText = evidence
      else this.become('drowning', evidence)
    }
  }

  private recent60 (): Connect[] {
    const since = this.now() - WINDOW_MS
    return this.connects.filter(c => c.at >= since)
  }

  /** Words for drowning, or null when the window does not (yet) show it. */
  private drowningEvidence (inFlight: number): string | null {
    const since = this.now() - WINDOW_MS
    if (this.unanswered.length > 0 && (this.unanswered[0] as number) < since) this.unanswered = this.unanswered.filter(at => at >= since)
    // One pass over the window (at most 20 connects): this runs for every connect timeout.
    let n = 0
    let timeouts = 0
    let retransmits = 0
    for (const c of this.connects) {
      if (c.at < since) continue
      n++
      if (c.kind === 'timeout') timeouts++
      else if (c.kind === 'retransmit') retransmits++
    }
    const slow = this.slowAnswers(inFlight)
    // One connect with no answer in the whole connect timeout is enough; one retransmit
    // could be a lost packet, two are a pattern.
    if (timeouts === 0 && retransmits < 2 && this.unanswered.length < 2 && !slow) return null
    const parts: string[] = []
    if (timeouts > 0) parts.push(`${timeouts} of its last ${plural(n, 'connect')} timed out`)
    if (retransmits > 0) {
      const steps: number[] = []
      for (const c of this.connects) if (c.at >= since && c.kind === 'retransmit') steps.push(retransmitStep(c.ms) as number)
      const who = timeouts > 0 && timeouts + retransmits === n ? 'the rest' : `${retransmits} of ${plural(n, 'connect')}`
      parts.push(`${who} took ${seconds(steps)}, which is the kernel retrying dropped SYNs`)
    }
    if (this.unanswered.length >= 2) parts.push(`${plural(this.unanswered.length, 'request')} on newly accepted connections got no response`)
    if (slow) parts.push(`its responses take ${Math.round(this.recent)} ms against its usual ${Math.round(this.baseline)} ms, with ${inFlight} requests in flight`)
    return parts.join('; ')
  }

  private downEvidence (): string {
    const window = this.recent60()
    const last = window[window.length - 1] as Connect
    let run = 0
    for (let i = window.length - 1; i >= 0 && window[i]?.kind === last.kind; i--) run++
    const what = last.kind === 'refused' ? 'refused (RST): nothing listens there' : 'unreachable: no route to it'
    return run === 1 ? `its last connect was ${what}` : `its last ${run} connects were ${what}`
  }

  private recover (): void {
    this.clean = 0
    this.connects.length = 0
    this.unanswered = []
    const from = this.state
    const ms = this.opts.slowStartMs
    if (ms <= 0) {
      this.become('up', `back from ${from}`)
      return
    }
    this.become('recovering', `back from ${from}: its share of traffic ramps up over ${ms / 1000} s (slow start)`)
    this.rampTimer = setTimeout(() => {
      this.rampTimer = null
      if (this.state === 'recovering') this.become('up', `slow start over (${ms / 1000} s)`)
    }, ms)
    this.rampTimer.unref()
  }

  private become (to: Condition, evidence: string): void {
    const from = this.state
    this.evidenceText = to === 'up' ? '' : evidence
    if (from === to) return
    if (this.rampTimer !== null) {
      clearTimeout(this.rampTimer)
      this.rampTimer = null
    }
    this.state = to
    this.sinceMs = this.now()
    this.opts.onChange?.({ from, to, evidence })
  }
}
