// Toxiproxy's HTTP API (api.go in Shopify/toxiproxy 2.x), served by highproxy: the same
// paths, methods, status codes, JSON shapes and error shapes, so that its clients and the
// suites written with them work unchanged. Plain node:http: a dozen routes need no framework.
//
// Where Toxiproxy accepts input that cannot work (a toxicity of 2, a negative latency, an
// upstream without a port), this answers 400 in Toxiproxy's error shape instead; the list
// of such differences is in docs/toxiproxy.md.

import { randomBytes } from 'node:crypto'
import { lookup } from 'node:dns/promises'
import { readFileSync } from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import tls from 'node:tls'
import type { Registry } from 'prom-client'
import type { TestCertificate } from '../certificates.js'
import { TcpProxy, joinHostPort, splitHostPort, type Endpoint, type LiveToxic } from './proxy.js'
import { TOXIC_TYPES, defaultAttributes, mergeAttributes, type Direction, type ToxicRecord } from './toxics.js'

const HIGHPROXY_VERSION = (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version
/** Toxiproxy's version we follow, with ours as semver build metadata (it compares equal to 2.12.0). */
export const TOXIPROXY_VERSION = `2.12.0+highproxy.${HIGHPROXY_VERSION}`

export interface ToxiproxyOptions {
  /** Address of the API. Default 127.0.0.1 (Toxiproxy's default is localhost). */
  host?: string
  /** Port of the API. Default 8474, as Toxiproxy; 0 picks a free one. */
  port?: number
}

export interface ToxiproxyServer {
  /** `http://host:port` of the API: what a Toxiproxy client is given. */
  url: string
  host: string
  port: number
  /** Open client connections and listeners of every proxy (what a leak check reads). */
  openConnections: () => number
  /** Stops every proxy (listeners, connections, SYN-dropping helpers) and the API. */
  close: () => Promise<void>
}

/** Toxiproxy's ApiError: `{"error": …, "status": N}`. */
class ApiError extends Error {
  constructor (message: string, readonly status: number) { super(message) }
}

const badBody = (why: string): ApiError => new ApiError(`bad request body: ${why}`, 400)
const missing = (field: string): ApiError => new ApiError(`missing required field: ${field}`, 400)
const PROXY_NOT_FOUND = (): ApiError => new ApiError('proxy not found', 404)
const TOXIC_NOT_FOUND = (): ApiError => new ApiError('toxic not found', 404)

// An xid (github.com/rs/xid, what Toxiproxy's request ids are): 4 bytes of time, 5 random,
// a 3-byte counter, in lowercase base32hex.
const XID_ALPHABET = '0123456789abcdefghijklmnopqrstuv'
const XID_MACHINE = randomBytes(5)
let xidCounter = randomBytes(3).readUIntBE(0, 3)
function xid (): string {
  const b = Buffer.alloc(12)
  b.writeUInt32BE(Math.floor(Date.now() / 1000), 0)
  XID_MACHINE.copy(b, 4)
  xidCounter = (xidCounter + 1) & 0xffffff
  b.writeUIntBE(xidCounter, 9, 3)
  let bits = 0
  let value = 0
  let out = ''
  for (const byte of b) {
    value = (value << 8) | byte
    bits += 8
    while (bits >= 5) { out += XID_ALPHABET[(value >>> (bits - 5)) & 31]; bits -= 5 }
  }
  return out + XID_ALPHABET[(value << (5 - bits)) & 31]
}

/** Go's http.Error: text/plain, nosniff, the message and a newline. */
function plainError (res: http.ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'x-content-type-options': 'nosniff' })
  res.end(`${text}\n`)
}

function sendJson (res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' })
  res.end(JSON.stringify(body))
}

function readBody (req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let size = 0
    const parts: Buffer[] = []
    req.on('data', (c: Buffer) => {
      size += c.length
      if (size > 1 << 20) { reject(badBody('larger than 1 MiB')); req.destroy(); return }
      parts.push(c)
    })
    req.on('end', () => resolve(Buffer.concat(parts).toString('utf8')))
    req.on('error', reject)
  })
}

function parseJson (text: string): unknown {
  if (text.trim() === '') throw badBody('EOF')
  try {
    return JSON.parse(text)
  } catch (err) {
    throw badBody((err as Error).message)
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)

/** A field Go would decode into a string (absent: undefined). */
function str (body: Record<string, unknown>, key: string): string | undefined {
  const v = body[key]
  if (v === undefined || v === null) return undefined
  if (typeof v !== 'string') throw badBody(`${key} must be a string`)
  return v
}

function bool (body: Record<string, unknown>, key: string): boolean | undefined {
  const v = body[key]
  if (v === undefined || v === null) return undefined
  if (typeof v !== 'boolean') throw badBody(`${key} must be true or false`)
  return v
}

function toxicity (body: Record<string, unknown>): number | undefined {
  const v = body.toxicity
  if (v === undefined || v === null) return undefined
  if (typeof v !== 'number' || !(v >= 0 && v <= 1)) throw badBody('toxicity must be a number from 0 to 1')
  return v
}

/** The address to bind for a `listen` value; a name is resolved as Go does (IPv4 first). */
async function bindAddress (listen: string): Promise<Endpoint> {
  const parts = splitHostPort(listen)
  const port = Number(parts?.port)
  if (parts === null || parts.port === '' || !Number.isInteger(port) || port > 65535) {
    throw badBody(`listen must be host:port with a port from 0 to 65535, got "${listen}"`)
  }
  if (parts.host === '' || net.isIP(parts.host) !== 0) return { host: parts.host, port }
  try {
    const { address } = await lookup(parts.host, { verbatim: false })
    return { host: address, port }
  } catch (err) {
    throw new ApiError(`listen tcp ${listen}: ${(err as Error).message}`, 500)
  }
}

function dialAddress (upstream: string): Endpoint {
  const parts = splitHostPort(upstream)
  const port = Number(parts?.port)
  if (parts === null || parts.host === '' || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw badBody(`upstream must be host:port with a port from 1 to 65535, got "${upstream}"`)
  }
  return { host: parts.host, port }
}

/** A missing listen is loopback on a free port (Toxiproxy: every interface). */
const listenOf = (listen: string | undefined): string => listen === undefined || listen === '' ? '127.0.0.1:0' : listen

/** Node's listen error, in the words Go's net.Listen uses (Toxiproxy answers it with 500). */
function listenError (listen: string, err: unknown): ApiError {
  const e = err as NodeJS.ErrnoException
  const why = e.code === 'EADDRINUSE' ? 'bind: address already in use' : e.code === 'EADDRNOTAVAIL' ? 'bind: cannot assign requested address' : e.code === 'EACCES' ? 'bind: permission denied' : e.message
  return new ApiError(`listen tcp ${listen}: ${why}`, 500)
}

/** The certificate a tls_bad_cert toxic serves, and the CA a client may trust to see only that reason. */
async function badCertificate (reason: string, authority: () => Promise<TestCertificate>): Promise<{ secure: tls.SecureContext, ca?: string }> {
  const { issuedCertificate, selfSignedCertificate } = await import('../certificates.js')
  if (reason === 'self_signed') {
    const pems = await selfSignedCertificate()
    return { secure: tls.createSecureContext({ cert: pems.cert, key: pems.key }) }
  }
  const ca = await authority()
  const pems = reason === 'expired'
    ? await issuedCertificate(ca, { validDays: [-30, -1] })
    : await issuedCertificate(ca, { names: ['wrong-host.example'] })
  return { secure: tls.createSecureContext({ cert: pems.cert, key: pems.key }), ca: ca.cert }
}

export async function startToxiproxy (options: ToxiproxyOptions = {}): Promise<ToxiproxyServer> {
  const proxies = new Map<string, TcpProxy>()
  let authority: Promise<TestCertificate> | undefined
  const labCa = (): Promise<TestCertificate> => (authority ??= import('../certificates.js').then(c => c.labAuthority()))

  // Changes run one at a time, as Toxiproxy's collection lock makes them.
  let queue: Promise<unknown> = Promise.resolve()
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const next = queue.then(fn, fn)
    queue = next.catch(() => {})
    return next
  }

  const toxicJson = (t: LiveToxic): ToxicRecord => ({ attributes: t.record.attributes, name: t.record.name, type: t.record.type, stream: t.record.stream, toxicity: t.record.toxicity })
  const toxicsOf = (p: TcpProxy): ToxicRecord[] => [
    ...p.toxics.filter(t => t.direction === 'upstream'),
    ...p.toxics.filter(t => t.direction === 'downstream')
  ].map(toxicJson)
  const proxyJson = (p: TcpProxy): Record<string, unknown> => ({ name: p.name, listen: p.listen, upstream: p.upstream, enabled: p.enabled, toxics: toxicsOf(p) })

  const getProxy = (name: string): TcpProxy => {
    const p = proxies.get(name)
    if (p === undefined) throw PROXY_NOT_FOUND()
    return p
  }

  async function start (p: TcpProxy): Promise<void> {
    const listen = p.listen
    try {
      await p.setEnabled(true)
    } catch (err) {
      throw listenError(listen, err)
    }
  }

  async function newProxy (name: string, listen: string, upstream: string): Promise<TcpProxy> {
    return new TcpProxy(name, listen, upstream, await bindAddress(listen), dialAddress(upstream))
  }

  /** Toxiproxy's Differs: listen (resolved) or upstream changed. */
  async function differs (p: TcpProxy, listen: string, upstream: string): Promise<boolean> {
    const bind = await bindAddress(listen)
    return p.listen !== joinHostPort(bind.host === '' ? '::' : bind.host, bind.port) || p.upstream !== upstream
  }

  const createProxy = (body: unknown): Promise<TcpProxy> => serial(async () => {
    if (!isObject(body)) throw badBody('expected a JSON object')
    const name = str(body, 'name')
    const upstream = str(body, 'upstream')
    const enabled = bool(body, 'enabled') ?? true
    if (name === undefined || name === '') throw missing('name')
    if (upstream === undefined || upstream === '') throw missing('upstream')
    const p = await newProxy(name, listenOf(str(body, 'listen')), upstream)
    if (proxies.has(name)) throw new ApiError('proxy already exists', 409)
    if (enabled) await start(p)
    proxies.set(name, p)
    return p
  })

  const populate = (body: unknown): Promise<{ proxies: TcpProxy[], error?: ApiError }> => serial(async () => {
    if (!Array.isArray(body)) throw badBody('expected a JSON array of proxies')
    const input = body.map((item, i) => {
      if (!isObject(item)) throw badBody(`proxy ${i + 1} must be an object`)
      const name = str(item, 'name')
      const upstream = str(item, 'upstream')
      if (name === undefined || name === '') throw missing(`name at proxy ${i + 1}`)
      if (upstream === undefined || upstream === '') throw missing(`upstream at proxy ${i + 1}`)
      return { name, upstream, listen: listenOf(str(item, 'listen')), enabled: bool(item, 'enabled') ?? true }
    })
    for (const item of input) { await bindAddress(item.listen); dialAddress(item.upstream) }
    const done: TcpProxy[] = []
    for (const item of input) {
      try {
        const existing = proxies.get(item.name)
        if (existing !== undefined) {
          if (!await differs(existing, item.listen, item.upstream)) { done.push(existing); continue }
          await existing.stop()
          proxies.delete(item.name)
        }
        const p = await newProxy(item.name, item.listen, item.upstream)
        if (item.enabled) await start(p)
        proxies.set(item.name, p)
        done.push(p)
      } catch (err) {
        return { proxies: done, error: err instanceof ApiError ? err : new ApiError(String((err as Error).message), 500) }
      }
    }
    return { proxies: done }
  })

  const updateProxy = (name: string, body: unknown): Promise<TcpProxy> => serial(async () => {
    const p = getProxy(name)
    if (!isObject(body)) throw badBody('expected a JSON object')
    const listen = str(body, 'listen') ?? p.listen
    const upstream = str(body, 'upstream') ?? p.upstream
    const enabled = bool(body, 'enabled') ?? p.enabled
    if (await differs(p, listen, upstream)) {
      const bind = await bindAddress(listen)
      const dial = dialAddress(upstream)
      await p.stop()
      p.retarget(listen, upstream, bind, dial)
    }
    if (enabled !== p.enabled) {
      if (enabled) await start(p)
      else await p.stop()
    }
    return p
  })

  const deleteProxy = (name: string): Promise<void> => serial(async () => {
    const p = getProxy(name)
    await p.stop()
    proxies.delete(name)
  })

  const findToxic = (p: TcpProxy, name: string): LiveToxic | undefined => p.toxics.find(t => t.record.name === name)

  const createToxic = (proxyName: string, body: unknown): Promise<LiveToxic> => serial(async () => {
    const p = getProxy(proxyName)
    if (!isObject(body)) throw badBody('expected a JSON object')
    const stream = str(body, 'stream') ?? 'downstream'
    const direction = stream.toLowerCase()
    if (direction !== 'upstream' && direction !== 'downstream') throw new ApiError('stream was invalid, can be either upstream or downstream', 400)
    const type = str(body, 'type') ?? ''
    const name = str(body, 'name') || `${type}_${stream}`
    const level = toxicity(body) ?? 1
    if (!Object.hasOwn(TOXIC_TYPES, type)) throw new ApiError('invalid toxic type', 400)
    if (findToxic(p, name) !== undefined) throw new ApiError('toxic already exists', 409)
    const attributes = defaultAttributes(type)
    const problem = mergeAttributes(type, attributes, body.attributes)
    if (problem !== null) throw badBody(problem)
    const toxic: LiveToxic = { record: { attributes, name, type, stream, toxicity: level }, direction: direction as Direction }
    if (type === 'tls_bad_cert') await arm(toxic)
    await p.addToxic(toxic)
    return toxic
  })

  async function arm (toxic: LiveToxic): Promise<void> {
    const made = await badCertificate(String(toxic.record.attributes.reason), labCa)
    toxic.secure = made.secure
    if (made.ca === undefined) delete toxic.record.attributes.ca
    else toxic.record.attributes.ca = made.ca
  }

  const updateToxic = (proxyName: string, toxicName: string, body: unknown): Promise<LiveToxic> => serial(async () => {
    const p = getProxy(proxyName)
    const toxic = findToxic(p, toxicName)
    if (toxic === undefined) throw TOXIC_NOT_FOUND()
    if (!isObject(body)) throw badBody('expected a JSON object')
    const level = toxicity(body)
    const attributes = { ...toxic.record.attributes }
    const problem = mergeAttributes(toxic.record.type, attributes, body.attributes)
    if (problem !== null) throw badBody(problem)
    const reasonChanged = attributes.reason !== toxic.record.attributes.reason
    toxic.record.attributes = attributes
    if (level !== undefined) toxic.record.toxicity = level
    if (reasonChanged) await arm(toxic)
    p.updateToxic(toxic)
    return toxic
  })

  const deleteToxic = (proxyName: string, toxicName: string): Promise<void> => serial(async () => {
    const p = getProxy(proxyName)
    const toxic = findToxic(p, toxicName)
    if (toxic === undefined) throw TOXIC_NOT_FOUND()
    await p.removeToxic(toxic)
  })

  const reset = (): Promise<void> => serial(async () => {
    for (const p of proxies.values()) {
      if (!p.enabled) await start(p)
      for (const t of [...p.toxics]) await p.removeToxic(t)
    }
  })

  // /metrics: Toxiproxy's proxy byte counters (it serves them with --proxy-metrics), read
  // from the sockets when scraped, so that nothing is counted on the data path. Made on
  // the first scrape: prom-client (and the certificate code, on the first tls_bad_cert)
  // stay out of the heap of a process that only pipes, where every collection walks it.
  let registry: Promise<Registry> | undefined
  async function makeRegistry (): Promise<Registry> {
    const { Counter, Registry } = await import('prom-client')
    const made = new Registry()
    const labelNames = ['direction', 'proxy', 'listener', 'upstream'] as const
    for (const kind of ['received', 'sent'] as const) {
      // eslint-disable-next-line no-new
      new Counter({
        name: `toxiproxy_proxy_${kind}_bytes_total`,
        help: kind === 'received' ? 'Bytes read from each link\'s source.' : 'Bytes written to each link\'s destination.',
        labelNames,
        registers: [made],
        collect () {
          this.reset()
          for (const p of proxies.values()) {
            const counts = p.bytes()[kind]
            for (const direction of ['upstream', 'downstream'] as const) {
              this.inc({ direction, proxy: p.name, listener: p.listen, upstream: p.upstream }, counts[direction])
            }
          }
        }
      })
    }
    return made
  }

  type Route = { pattern: RegExp, methods: Record<string, (m: string[], req: http.IncomingMessage, res: http.ServerResponse) => Promise<void>> }
  const body = async (req: http.IncomingMessage): Promise<unknown> => parseJson(await readBody(req))
  const routes: Route[] = [
    { pattern: /^\/reset$/, methods: { POST: async (_m, _req, res) => { await reset(); res.writeHead(204).end() } } },
    {
      pattern: /^\/proxies$/,
      methods: {
        GET: async (_m, _req, res) => sendJson(res, 200, Object.fromEntries([...proxies.values()].map(p => [p.name, proxyJson(p)]))),
        POST: async (_m, req, res) => sendJson(res, 201, proxyJson(await createProxy(await body(req))))
      }
    },
    {
      pattern: /^\/populate$/,
      methods: {
        POST: async (_m, req, res) => {
          let result: { proxies: TcpProxy[], error?: ApiError }
          try {
            result = await populate(await body(req))
          } catch (err) {
            if (!(err instanceof ApiError)) throw err
            result = { proxies: [], error: err }
          }
          const { error } = result
          // Go marshals an empty list of proxies as null: kept on an error (the client throws
          // on the status anyway); an empty success answers [] so that clients can iterate it.
          const list = error !== undefined && result.proxies.length === 0 ? null : result.proxies.map(proxyJson)
          sendJson(res, error?.status ?? 201, { ...(error === undefined ? {} : { error: error.message, status: error.status }), proxies: list })
        }
      }
    },
    {
      pattern: /^\/proxies\/([^/]+)$/,
      methods: {
        GET: async ([name], _req, res) => sendJson(res, 200, proxyJson(getProxy(name as string))),
        POST: async ([name], req, res) => sendJson(res, 200, proxyJson(await updateProxy(name as string, await body(req)))),
        PATCH: async ([name], req, res) => sendJson(res, 200, proxyJson(await updateProxy(name as string, await body(req)))),
        DELETE: async ([name], _req, res) => { await deleteProxy(name as string); res.writeHead(204).end() }
      }
    },
    {
      pattern: /^\/proxies\/([^/]+)\/toxics$/,
      methods: {
        GET: async ([name], _req, res) => sendJson(res, 200, toxicsOf(getProxy(name as string))),
        POST: async ([name], req, res) => sendJson(res, 200, toxicJson(await createToxic(name as string, await body(req))))
      }
    },
    {
      pattern: /^\/proxies\/([^/]+)\/toxics\/([^/]+)$/,
      methods: {
        GET: async ([name, toxic], _req, res) => {
          const found = findToxic(getProxy(name as string), toxic as string)
          if (found === undefined) throw TOXIC_NOT_FOUND()
          sendJson(res, 200, toxicJson(found))
        },
        POST: async ([name, toxic], req, res) => sendJson(res, 200, toxicJson(await updateToxic(name as string, toxic as string, await body(req)))),
        PATCH: async ([name, toxic], req, res) => sendJson(res, 200, toxicJson(await updateToxic(name as string, toxic as string, await body(req)))),
        DELETE: async ([name, toxic], _req, res) => { await deleteToxic(name as string, toxic as string); res.writeHead(204).end() }
      }
    },
    {
      pattern: /^\/version$/,
      methods: {
        GET: async (_m, _req, res) => {
          res.writeHead(200, { 'content-type': 'application/json;charset=utf-8' })
          res.end(`{"version": "${TOXIPROXY_VERSION}"}\n`)
        }
      }
    },
    {
      pattern: /^\/metrics$/,
      methods: {
        GET: async (_m, _req, res) => {
          const made = await (registry ??= makeRegistry())
          const text = await made.metrics()
          res.writeHead(200, { 'content-type': made.contentType })
          res.end(text)
        }
      }
    }
  ]

  async function handle (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    res.setHeader('x-toxiproxy-request-id', xid())
    // Toxiproxy's guard against a web page driving the API from a browser (CSRF).
    if ((req.headers['user-agent'] ?? '').startsWith('Mozilla/')) { plainError(res, 403, 'User agent not allowed'); return }
    const path = (req.url ?? '/').split('?')[0] as string
    for (const route of routes) {
      const m = route.pattern.exec(path)
      if (m === null) continue
      const run = route.methods[req.method ?? '']
      if (run === undefined) { res.writeHead(405).end(); return }
      try {
        await run(m.slice(1).map(decodeURIComponent), req, res)
      } catch (err) {
        const e = err instanceof ApiError ? err : new ApiError((err as Error).message, 500)
        if (!res.headersSent) plainError(res, e.status, JSON.stringify({ error: e.message, status: e.status }))
        else res.destroy()
      }
      return
    }
    plainError(res, 404, '404 page not found')
  }

  const server = http.createServer((req, res) => { void handle(req, res) })
  const host = options.host ?? '127.0.0.1'
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen({ host, port: options.port ?? 8474 }, () => { server.off('error', reject); resolve() })
  })
  const port = (server.address() as net.AddressInfo).port
  let closing: Promise<void> | undefined
  return {
    url: `http://${joinHostPort(host, port)}`,
    host,
    port,
    openConnections: () => [...proxies.values()].reduce((n, p) => n + p.openCount + (p.listening ? 1 : 0), 0),
    close: () => (closing ??= (async () => {
      await serial(async () => {
        for (const p of proxies.values()) await p.stop()
        proxies.clear()
      })
      server.closeAllConnections()
      await new Promise<void>(resolve => server.close(() => resolve()))
    })())
  }
}
