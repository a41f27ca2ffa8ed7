// The Node.js line the proxy runs on: an edge faces the internet, and a line past its end
// of life gets no security fixes. Node 20 still runs highproxy (machines that only have it
// keep working), with one warning line at start-up; the image and the docs name Node 24.

/** End of life of each Node.js line (nodejs.org/about/previous-releases). Older lines are past theirs. */
export const END_OF_LIFE: Readonly<Record<number, string>> = {
  20: '2026-04-30',
  21: '2024-06-01',
  22: '2027-04-30',
  23: '2025-06-01',
  24: '2028-04-30',
  25: '2026-06-01',
  26: '2029-04-30'
}

/** The line the image and the README recommend. */
export const RECOMMENDED_LINE = 24

/** The warning for a Node.js version past its end of life on `today`; null for a supported one. */
export function endOfLifeWarning (version: string, today: Date = new Date()): string | null {
  const major = Number(/^v?(\d+)\./.exec(version)?.[1])
  if (!Number.isInteger(major)) return null
  const eol = END_OF_LIFE[major]
  const known = eol !== undefined
  // A line newer than the table is taken as supported; an older one is past its end.
  if (known ? today.getTime() < Date.parse(`${eol}T00:00:00Z`) : major > RECOMMENDED_LINE) return null
  return `Node.js ${version.replace(/^v/, '')} is end-of-life${known ? ` since ${eol}` : ''} and gets no security fixes; ` +
    `run highproxy on Node.js ${RECOMMENDED_LINE} (LTS)`
}
