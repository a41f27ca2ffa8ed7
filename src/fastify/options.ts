// The options of `highproxy/fastify`: durations written as in the config file ('5s') or
// as milliseconds, and defaults taken from the config schema, so an app behind
// edgeDispatcher waits exactly as long as the edge would.

import type { TSchema } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'
import { durationMs } from '../config/duration.js'
import { ConfigSchema, type ConfigInput } from '../config/schema.js'

/** Milliseconds, or a duration as the config writes it: '500ms', '5s', '2m'. */
export type Duration = number | string

/** The edge's defaults (config.example.yaml), read once from the schema. */
export const DEFAULTS = Value.Default(ConfigSchema, {}) as ConfigInput

/** A duration option in milliseconds; a bad one is a TypeError naming the option. */
export function msOption (fn: string, name: string, value: Duration): number {
  let ms = typeof value === 'number' ? value : NaN
  if (typeof value === 'string') {
    try { ms = durationMs(value.trim()) } catch { /* named below, with the option */ }
  }
  if (!Number.isFinite(ms) || ms <= 0) throw new TypeError(`${fn}: ${name} must be a duration above zero like 500ms, 5s or 2m, or milliseconds; got ${JSON.stringify(value)}`)
  return ms
}

/** A string option checked against the config key it stands for (the same pattern). */
export function checkedOption (fn: string, name: string, schema: TSchema, value: string): string {
  if (!Value.Check(schema, value)) throw new TypeError(`${fn}: ${name} ${JSON.stringify(value)} is not valid (${String(schema.pattern ?? schema.description ?? '')})`)
  return value
}
