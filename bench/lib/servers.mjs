// Starting the bench's servers: the origin (nginx when installed, else node), highproxy
// through its CLI only, the Node peers and floor, and nginx / HAProxy as peer proxies.
// Every one listens on 127.0.0.1 on a free port and is proved to answer before use.

import { execFile, execFileSync } from 'node:child_process'
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { HOST, freePort, start, waitHttp, waitHttps } from './procs.mjs'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
export const CLI = path.join(ROOT, 'dist', 'cli.js')
const SERVERS = path.join(ROOT, 'bench', 'servers')
// The node binary every Node row runs on: this one, or `--node <path>` (useNode).
let NODE = process.execPath

/** Runs every Node row (highproxy, the Node floor, the Node peers and origin) on `bin`. */
export function useNode (bin) { NODE = bin }
export const nodeBin = () => NODE

export function which (cmd) {
  try { return execFileSync('which', [cmd], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() || null } catch { return null }
}

/**
 * A config directory for nginx. Run as root, nginx's workers are `nobody`: they must be
 * able to read the static file, so the directory (and the bench's own temp dir above
 * it, which mkdtemp made 0700) are opened up to 0755.
 */
function confDir (tmp, name) {
  const dir = mkdtempSync(path.join(tmp, `${name}-`))
  chmodSync(tmp, 0o755)
  chmodSync(dir, 0o755)
  return dir
}

// Both nginx configs: one worker, long keep-alive both ways (nginx's default of 1,000
// requests per connection would make every proxy and the load generator reconnect).
const nginxHead = dir => `worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 16384; }
`
const nginxHttpCommon = dir => `  keepalive_requests 100000000;
  keepalive_timeout 60s;
  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fcgi; uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
`

/** The node origin: node:http, `/` → 200 "ok", `/64k` → 64 KiB. */
export async function startNodeOrigin () {
  const port = await freePort()
  const proc = start('origin (node)', NODE, [path.join(SERVERS, 'origin.mjs'), String(port)])
  await waitHttp(proc, port)
  return { proc, port, url: `http://${HOST}:${port}`, kind: 'node' }
}

/** An OTLP/HTTP receiver that answers every export at once (the tracing rows' collector). */
export async function otlpSink () {
  const port = await freePort()
  const proc = start('otlp sink', NODE, [path.join(SERVERS, 'otlp-sink.mjs'), String(port)])
  await waitHttp(proc, port)
  return { proc, port, url: `http://${HOST}:${port}` }
}

/**
 * nginx as the origin: `return 200 "ok"` and a 64 KiB static file. Its CPU per request
 * is a fraction of any Node server's, so more of the 2 cores are left to the proxy, and
 * its cost is the same for every proxy measured.
 */
export async function startNginxOrigin (bin, tmp) {
  const port = await freePort()
  const dir = confDir(tmp, 'nginx-origin')
  const www = path.join(dir, 'www')
  execFileSync('mkdir', ['-p', www])
  chmodSync(www, 0o755)
  writeFileSync(path.join(www, '64k'), Buffer.alloc(64 * 1024, 'x'), { mode: 0o644 })
  const conf = path.join(dir, 'nginx.conf')
  writeFileSync(conf, `${nginxHead(dir)}http {
  access_log off;
${nginxHttpCommon(dir)}  server {
    listen ${HOST}:${port} backlog=4096;
    root ${www};
    location = /64k { default_type application/octet-stream; }
    location / { default_type text/plain; return 200 "ok"; }
  }
}
`)
  const proc = start('origin (nginx)', bin, ['-p', dir, '-c', conf])
  await waitHttp(proc, port)
  return { proc, port, url: `http://${HOST}:${port}`, kind: 'nginx' }
}

/** `choice`: auto (nginx when `which` finds it), nginx or node. */
export async function startOrigin (choice, tmp) {
  const bin = choice === 'node' ? null : which('nginx')
  if (choice === 'nginx' && bin === null) throw new Error('--origin-server nginx: nginx is not installed')
  return bin === null ? startNodeOrigin() : startNginxOrigin(bin, tmp)
}

let helpText = null
/** highproxy's --help, to see which flags this build has (asynchronous: the dry run starts servers meanwhile). */
export function highproxyHelp () {
  helpText ??= new Promise(resolve => {
    // 30 s: on a loaded 2-core machine, with the dry run starting every server at once, a
    // Node start took more than 10 s, and a missing --help read as a build without the flags.
    execFile(NODE, [CLI, '--help'], { encoding: 'utf8', timeout: 30_000 }, (_err, stdout) => resolve(String(stdout ?? '')))
  })
  return helpText
}

/**
 * highproxy as shipped: `node dist/cli.js <args> --port P --log-format json`, logging
 * at the default level to stdout (/dev/null unless `stdout` is a file descriptor).
 * `extra` (from --highproxy-args and a --variant) comes last, so it can also override
 * what the harness sets: node's parseArgs keeps the last value of a repeated flag.
 * `node` holds arguments for node itself (e.g. --cpu-prof).
 */
export async function startHighproxy (name, args, { extra = [], node = [], stdout = 'ignore', raiseFdLimit = false, readyPath = '/', tls = null, bin = NODE, cli = CLI } = {}) {
  // Before the port is picked: targets start side by side, and an await between picking a
  // free port and listening on it lets another target pick the same one.
  const nodeArgs = await highproxyNodeFlags(node)
  const port = await freePort()
  // A side listener on a fixed default port would collide between runs: port 0, the kernel's
  // pick at bind time (a port picked free in advance can be taken by any connection before
  // highproxy binds it: a dry run once failed so). Nothing here asks the admin listener.
  const admin = /--admin-port\b/.test(await highproxyHelp()) ? ['--admin-port', '0'] : []
  const tlsArgs = tls === null ? [] : ['--tls-cert', tls.cert, '--tls-key', tls.key]
  const proc = start(name, bin, [...nodeArgs, cli, ...args, ...tlsArgs, ...admin, '--port', String(port), '--log-format', 'json', ...extra], { stdout, raiseFdLimit })
  if (tls === null) await waitHttp(proc, port, readyPath)
  else await waitHttps(proc, port)
  return { proc, port }
}

/**
 * `node` (arguments for node itself) with the V8 flags highproxy is shipped with (`npm
 * start`, the image), merged by this checkout's dist/node-flags.js as the primary of
 * --workers merges them: a flag `node` sets itself is kept. Every build the bench starts, a
 * baseline's too, runs with them: they are how highproxy is launched, not part of a build.
 */
export async function highproxyNodeFlags (node = []) {
  return (await import(pathToFileURL(path.join(ROOT, 'dist', 'node-flags.js')).href)).withNodeFlags(node)
}

/** A throwaway ECDSA P-256 certificate for 127.0.0.1 (what most sites serve today): { cert, key } paths. */
export function benchCertificate (tmp) {
  const cert = path.join(tmp, 'tls-cert.pem')
  const key = path.join(tmp, 'tls-key.pem')
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1',
    '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-keyout', key, '-out', cert], { stdio: 'ignore' })
  chmodSync(key, 0o644) // nginx's workers (nobody) read it
  return { cert, key }
}

/** A Node server of bench/servers/: `node <file> <port> <upstream> ...args`; with `tls`, `--tls <cert> <key>` too. */
export async function startNodeServer (name, file, upstream, args = [], { node = [], tls = null, bin = NODE } = {}) {
  const port = await freePort()
  const tlsArgs = tls === null ? [] : ['--tls', tls.cert, tls.key]
  const proc = start(name, bin, [...node, path.join(SERVERS, file), String(port), upstream, ...args, ...tlsArgs])
  if (tls === null) await waitHttp(proc, port)
  else await waitHttps(proc, port)
  return { proc, port }
}

/**
 * nginx as a peer proxy: one worker, keep-alive upstream, access log on (to /dev/null,
 * still formatted and written). With `tls` ({ cert, key }): TLS 1.2/1.3 with HTTP/2 and
 * HTTP/1.1 by ALPN on the same port and a session cache, as highproxy's TLS listener.
 */
export async function startNginxProxy (bin, upstreamPort, tmp, { tls = null } = {}) {
  const port = await freePort()
  const dir = confDir(tmp, tls === null ? 'nginx-proxy' : 'nginx-tls')
  const conf = path.join(dir, 'nginx.conf')
  const listen = tls === null
    ? `listen ${HOST}:${port} backlog=4096;`
    : `listen ${HOST}:${port} ssl http2 backlog=4096;
    ssl_certificate ${tls.cert}; ssl_certificate_key ${tls.key};
    ssl_protocols TLSv1.2 TLSv1.3; ssl_session_cache shared:SSL:10m;`
  writeFileSync(conf, `${nginxHead(dir)}http {
  access_log /dev/null combined;
${nginxHttpCommon(dir)}  upstream origin { server ${HOST}:${upstreamPort}; keepalive 128; keepalive_requests 100000000; }
  server {
    ${listen}
    location / { proxy_pass http://origin; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
`)
  const proc = start(tls === null ? 'nginx' : 'nginx (TLS)', bin, ['-p', dir, '-c', conf])
  if (tls === null) await waitHttp(proc, port)
  else await waitHttps(proc, port)
  return { proc, port }
}

/**
 * nginx beside highproxy in the 522 storm (issue 22's yardstick): /dead/… to the
 * SYN-dropping origin with the same connect timeout, its timeout answered 522 (nginx says
 * 504), never retried, the origin never marked down; everything else to the healthy
 * origin over keep-alive. One worker, as every nginx row; its error log on at `warn`, so
 * each timeout writes its line, as each of highproxy's 522s writes a failure line.
 */
export async function startNginxStorm (bin, deadUrl, healthyPort, timeoutMs, tmp) {
  const port = await freePort()
  const dir = confDir(tmp, 'nginx-storm')
  const conf = path.join(dir, 'nginx.conf')
  const dead = new URL(deadUrl)
  writeFileSync(conf, `${nginxHead(dir)}worker_rlimit_nofile 16384;
http {
  access_log /dev/null combined;
${nginxHttpCommon(dir)}  upstream dead { server ${dead.hostname}:${dead.port} max_fails=0; }
  upstream healthy { server ${HOST}:${healthyPort}; keepalive 128; keepalive_requests 100000000; }
  server {
    listen ${HOST}:${port} backlog=4096;
    location /dead/ {
      proxy_pass http://dead/; proxy_connect_timeout ${timeoutMs}ms; proxy_next_upstream off;
      error_page 502 504 = @e522;
    }
    location @e522 { default_type text/plain; return 522 "error code: 522\n"; }
    location / { proxy_pass http://healthy; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
`)
  const proc = start('nginx (storm)', bin, ['-p', dir, '-c', conf])
  await waitHttp(proc, port)
  return { proc, port }
}

/** The hard limit on open files of this process (HAProxy's maxconn must fit in it). */
function hardFdLimit () {
  try { return Number(/^Max open files\s+\S+\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'))?.[1]) || 1024 } catch { return 1024 }
}

/**
 * HAProxy as a peer proxy, one thread. `maxconn` is derived from the open-file limit:
 * HAProxy needs about 2 fds per connection and refuses to start ("Cannot raise FD limit
 * to 40014, limit is 20000") when maxconn × 2 does not fit under the hard limit, which
 * is what made the old fixed `maxconn 20000` exit at once here.
 */
export async function startHaproxy (bin, upstreamPort, tmp) {
  const port = await freePort()
  const dir = mkdtempSync(path.join(tmp, 'haproxy-'))
  const conf = path.join(dir, 'haproxy.cfg')
  const maxconn = Math.max(256, Math.min(20_000, Math.floor((hardFdLimit() - 100) / 2)))
  writeFileSync(conf, `global
  maxconn ${maxconn}
  nbthread 1
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  option http-keep-alive
frontend bench
  bind ${HOST}:${port}
  default_backend origin
backend origin
  http-reuse always
  server o ${HOST}:${upstreamPort}
`)
  const proc = start('haproxy', bin, ['-db', '-f', conf])
  await waitHttp(proc, port)
  return { proc, port, maxconn }
}
