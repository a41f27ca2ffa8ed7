// The container's HEALTHCHECK: GET /healthz on the admin listener and exit 0 if it
// answers 2xx, 1 otherwise (refused, timed out, any other status). No curl or wget in
// the image, so node does it. The port is HIGHPROXY_ADMIN_PORT (default 9090), the same
// variable the proxy reads; the admin listener must be enabled and reachable on
// 127.0.0.1 (admin.host 127.0.0.1, the default, or 0.0.0.0).
//
//   node docker/healthcheck.mjs        # HIGHPROXY_ADMIN_PORT=9191 node docker/healthcheck.mjs

const port = process.env.HIGHPROXY_ADMIN_PORT || '9090'
const url = `http://127.0.0.1:${port}/healthz`

fetch(url, { signal: AbortSignal.timeout(2000) }).then(
  res => {
    if (!res.ok) process.stderr.write(`${url}: HTTP ${res.status}\n`)
    process.exit(res.ok ? 0 : 1)
  },
  err => {
    process.stderr.write(`${url}: ${err.cause?.code ?? err.name ?? 'error'}\n`)
    process.exit(1)
  }
)
