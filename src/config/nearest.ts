// "Did you mean …?": the known name nearest to a misspelt one (a flag, a config key), by
// edit distance, when it is near enough to be a likely typo rather than another word.

/** Levenshtein distance, with a swap of two neighbours counting as one edit (prot → port). */
export function editDistance (a: string, b: string): number {
  const rows = a.length + 1
  const cols = b.length + 1
  const d: number[][] = Array.from({ length: rows }, (_, i) => Array.from({ length: cols }, (_, j) => i === 0 ? j : j === 0 ? i : 0))
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      let best = Math.min((d[i - 1] as number[])[j] as number + 1, (d[i] as number[])[j - 1] as number + 1, (d[i - 1] as number[])[j - 1] as number + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, (d[i - 2] as number[])[j - 2] as number + 1)
      ;(d[i] as number[])[j] = best
    }
  }
  return (d[rows - 1] as number[])[cols - 1] as number
}

/**
 * The candidate nearest to `name`, or null when none is within a third of its length
 * (at least 2 edits), or when a prefix match says more (`--orig` → `--origin`).
 */
export function nearest (name: string, candidates: Iterable<string>): string | null {
  const lower = name.toLowerCase()
  let best: string | null = null
  let bestDistance = Infinity
  for (const c of candidates) {
    const distance = c.startsWith(lower) && lower.length >= 3 ? 0.5 : editDistance(lower, c.toLowerCase())
    if (distance < bestDistance) { best = c; bestDistance = distance }
  }
  return bestDistance <= Math.max(2, Math.floor(name.length / 3)) ? best : null
}
