// Durations as written in config (`500ms`, `15s`, `2m`, `1h`): the schema checks the format,
// this scales it to milliseconds.

import { ConfigError } from '../status/errors.js'

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }

export function durationMs (value: string): number {
  const match = /^([0-9.]+)(ms|s|m|h)$/.exec(value)
  if (match === null) throw new ConfigError('duration', `"${value}" is not a duration like 500ms, 15s, 2m or 1h`)
  return Math.round(Number(match[1]) * (UNITS[match[2] as string] as number))
}
