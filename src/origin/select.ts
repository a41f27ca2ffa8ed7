// Which origin of the pool takes the next request? Each policy is a pure function of
// the candidates (already filtered to the available ones) and their in-flight counts.

import type { Policy } from '../config/schema.js'

export interface Candidate { inFlight: number }

export type Selector = <C extends Candidate>(candidates: readonly C[]) => C | undefined

function roundRobin (): Selector {
  let next = 0
  return candidates => candidates.length === 0 ? undefined : candidates[next++ % candidates.length]
}

const leastInFlight: Selector = candidates => {
  let best = candidates[0]
  for (const c of candidates) if (best !== undefined && c.inFlight < best.inFlight) best = c
  return best
}

/** Two random choices, the less loaded wins: near least-in-flight without herding. */
function randomTwo (random: () => number): Selector {
  return candidates => {
    if (candidates.length < 2) return candidates[0]
    const i = Math.floor(random() * candidates.length)
    let j = Math.floor(random() * (candidates.length - 1))
    if (j >= i) j++
    const a = candidates[i]
    const b = candidates[j]
    return a !== undefined && b !== undefined && b.inFlight < a.inFlight ? b : a
  }
}

/** A candidate whose share of traffic slow start may hold back. */
export interface Weighted { weight: () => number }

/**
 * Slow start: an origin back from down or drowning gets its share ramped up (its weight,
 * from 0.05 to 1 over the window). Each candidate below 1 stays in the running with that
 * probability, so its share of what the policy picks grows with the weight; when every
 * one would drop out, all stay. Free while no origin is recovering: one call per candidate.
 */
export function ramped<C extends Weighted> (candidates: C[], random: () => number = Math.random): C[] {
  let full = true
  for (const c of candidates) if (c.weight() < 1) { full = false; break }
  if (full) return candidates
  const kept = candidates.filter(c => { const w = c.weight(); return w >= 1 || random() < w })
  return kept.length > 0 ? kept : candidates
}

export function selector (policy: Policy, random: () => number = Math.random): Selector {
  switch (policy) {
    case 'round_robin': return roundRobin()
    case 'least_in_flight': return leastInFlight
    case 'random_two': return randomTwo(random)
  }
}
