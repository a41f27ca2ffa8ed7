// The SDK's diagnostics (an export that failed, a span ended twice) as one text line each,
// for the main thread's log and the export thread's alike: warnings and errors only.

import type { DiagLogger } from '@opentelemetry/api'

const text = (m: string, args: unknown[]): string =>
  [m, ...args.map(a => a instanceof Error ? a.message : typeof a === 'string' ? a : JSON.stringify(a))].join(' ')

export function diagLines (say: (line: string) => void): DiagLogger {
  const ignore = (): void => {}
  return { error: (m, ...a) => say(text(m, a)), warn: (m, ...a) => say(text(m, a)), info: ignore, debug: ignore, verbose: ignore }
}
