// What representation of an edge error does the client want?
//
// Written by hand rather than with `negotiator`: Cloudflare's rule (which clients of
// its edge already rely on) breaks q-value ties by the order the client listed the
// types, while negotiator prefers the more specific type.

export type ErrorFormat = 'html' | 'json' | 'problem' | 'markdown'

function formatOf (type: string): ErrorFormat | null {
  switch (type) {
    case 'application/json': return 'json'
    case 'application/problem+json': return 'problem'
    case 'text/html':
    case '*/*': return 'html'
    default: return type.startsWith('text/') ? 'markdown' : null
  }
}

function qualityOf (params: string[]): number {
  for (const param of params) {
    const [key, value] = param.split('=')
    if (key?.trim().toLowerCase() === 'q') {
      const q = Number(value?.trim())
      return Number.isFinite(q) && q >= 0 && q <= 1 ? q : 0
    }
  }
  return 1
}

const MEMO_MAX = 256
const memo = new Map<string, ErrorFormat>()

/** The same few Accept headers come again and again: each is parsed once (up to MEMO_MAX of them). */
export function negotiate (accept: string | undefined): ErrorFormat {
  if (accept === undefined || accept === '') return 'html'
  let format = memo.get(accept)
  if (format === undefined) {
    format = parse(accept)
    if (memo.size < MEMO_MAX) memo.set(accept, format)
  }
  return format
}

function parse (accept: string): ErrorFormat {
  let best: ErrorFormat | null = null
  let bestQ = 0
  for (const range of accept.split(',')) {
    const [type = '', ...params] = range.split(';')
    const format = formatOf(type.trim().toLowerCase())
    if (format === null) continue
    const q = qualityOf(params)
    // Strictly greater: on a tie the first listed keeps its place.
    if (q > bestQ) {
      best = format
      bestQ = q
    }
  }
  return best ?? 'html'
}

export const CONTENT_TYPES: Record<ErrorFormat, string> = {
  html: 'text/html; charset=utf-8',
  json: 'application/json; charset=utf-8',
  problem: 'application/problem+json; charset=utf-8',
  markdown: 'text/markdown; charset=utf-8'
}
