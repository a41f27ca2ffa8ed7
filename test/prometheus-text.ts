// The Prometheus text exposition a scrape returns, read back into samples and types:
// enough for prom-client's own output (no timestamps, no exemplars).

export interface Sample { name: string, labels: Record<string, string>, value: number }

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g

export function samples (text: string): Sample[] {
  const out: Sample[] = []
  for (const line of text.split('\n')) {
    const m = SAMPLE.exec(line)
    if (m === null || line.startsWith('#')) continue
    const labels: Record<string, string> = {}
    for (const [, k, v] of (m[2] ?? '').matchAll(LABEL)) labels[k as string] = v as string
    out.push({ name: m[1] as string, labels, value: Number(m[3]) })
  }
  return out
}

/** Metric name → type, from the `# TYPE` lines. */
export function types (text: string): Map<string, string> {
  return new Map([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map(m => [m[1] as string, m[2] as string]))
}

/** The sum of a metric's samples whose labels include `match`. */
export function total (text: string, name: string, match: Record<string, string> = {}): number {
  return samples(text)
    .filter(s => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v))
    .reduce((sum, s) => sum + s.value, 0)
}
