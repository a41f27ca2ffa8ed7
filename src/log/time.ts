// Durations in log lines and reports: milliseconds rounded to 0.1 ms, in one place.

import { performance } from 'node:perf_hooks'

export const roundMs = (ms: number): number => Math.round(ms * 10) / 10

/** Milliseconds since `start` (a performance.now() value), rounded to 0.1 ms. */
export const since = (start: number): number => roundMs(performance.now() - start)
