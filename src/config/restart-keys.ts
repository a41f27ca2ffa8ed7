// What a SIGHUP reload cannot apply: the listeners (address, port, backlog, TLS on or off,
// the redirect listener, HTTP/2's session settings), the admin listener, and the worker
// count are fixed when the process starts. A reload that changes them still applies the
// rest, and its line names the keys that wait for a restart, instead of "config
// reloaded" over a listener that silently stays as it was.

import type { Config } from './schema.js'

const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b)

/** The keys whose new value differs from what the process started with and that need a restart. */
export function keysNeedingRestart (started: Config, next: Config): string[] {
  const keys: string[] = []
  const check = (key: string, a: unknown, b: unknown): void => { if (!same(a, b)) keys.push(key) }
  check('listen.host', started.listen.host, next.listen.host)
  check('listen.port', started.listen.port, next.listen.port)
  check('listen.backlog', started.listen.backlog, next.listen.backlog)
  const a = started.front
  const b = next.front
  if ((a === null) !== (b === null)) keys.push(b === null ? 'listen.tls (TLS off)' : 'listen.tls (TLS on)')
  if (a !== null && b !== null) {
    // Certificates, min_version and ciphers are applied to new connections; these are not.
    check('listen.tls.selfsigned', a.selfsigned, b.selfsigned)
    check('listen.tls.redirect', a.redirect, b.redirect)
    check('listen.http2.enabled', a.http2.enabled, b.http2.enabled)
    check('listen.http2.max_concurrent_streams', a.http2.maxConcurrentStreams, b.http2.maxConcurrentStreams)
    check('listen.http2.idle_timeout', a.http2.idleTimeoutMs, b.http2.idleTimeoutMs)
    check('listen.http2.max_client_resets', a.http2.maxClientResets, b.http2.maxClientResets)
    check('listen.http2.client_reset_window', a.http2.clientResetWindowMs, b.http2.clientResetWindowMs)
  }
  check('admin.enabled', started.admin.enabled, next.admin.enabled)
  if (started.admin.enabled && next.admin.enabled) {
    check('admin.host', started.admin.host, next.admin.host)
    check('admin.port', started.admin.port, next.admin.port)
  }
  check('workers', started.workers, next.workers)
  return keys
}
