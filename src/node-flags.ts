// The V8 flags highproxy runs with (`npm start`, the image, every worker of --workers).
//
// --max-semi-space-size=32: V8's young generation, where every object starts, is two
// semi-spaces of 16 MB by default. A request the edge holds for seconds (a 522 storm's
// thousand waiters, each waiting out its connect timeout; a slow origin's requests in
// flight) outlives two scavenges and is copied into the old generation, where it dies
// soon after and is collected only by a mark-compact — the costly kind, with helper
// threads and unmapped pages. With 32 MB semi-spaces those requests mostly die young.
// Measured on the bench's storm (1,000 requests at a SYN-dropping origin, connect timeout
// 2 s, ten storms in a row on one process): CPU per storm request 130–330 µs with the
// default, of which storms with a mark-compact 260–330; 110–160 µs with 32 MB and no
// mark-compact in nine storms (docs/performance.md). 64 MB was no better. The price is
// memory: the young generation may grow to 64 MB instead of 32.
//
// The flag must be on the command line (or in NODE_OPTIONS): V8 sizes its heap when the
// process starts, and v8.setFlagsFromString cannot change it afterwards. So the launchers
// carry it — package.json's start script and the Dockerfile's ENTRYPOINT (a test checks
// they say what this says) — and the primary of --workers gives it to each worker.

/** The flags, each as `--name=value`. */
export const NODE_FLAGS: readonly string[] = ['--max-semi-space-size=32']

// V8 reads --max_semi_space_size and --max-semi-space-size alike.
const nameOf = (flag: string): string => (flag.split('=')[0] as string).replaceAll('_', '-')

/**
 * `execArgv` with each of NODE_FLAGS it does not set itself, nor NODE_OPTIONS does: an
 * operator's own value of a flag is theirs to keep.
 */
export function withNodeFlags (execArgv: readonly string[], nodeOptions = ''): string[] {
  const given = [...execArgv, ...nodeOptions.split(/\s+/)].map(nameOf)
  return [...execArgv, ...NODE_FLAGS.filter(f => !given.includes(nameOf(f)))]
}
