// What the client receives for an edge error. Everything that depends only on the
// status is rendered once at start; a request fills in host, time, ray id and IP.

import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import {
  CATALOG, UNKNOWN_ERROR_DETAIL,
  type EdgeErrorEntry, type FailedHop, type UnknownErrorCause
} from '../status/catalog.js'
import { CONTENT_TYPES, type ErrorFormat } from './negotiate.js'

const TEMPLATE = fileURLToPath(new URL('../../templates/error.html', import.meta.url))

/** The RFC 9457 body, with Cloudflare's field names. Declared once, used by tests too. */
export interface ErrorBody {
  type: string
  title: string
  status: number
  detail: string
  instance: string
  error_code: number
  error_name: string
  error_category: string
  ray_id: string
  timestamp: string
  zone: string
  retryable: boolean
  retry_after: number | null
  owner_action_required: boolean
  what_you_should_do: string
  owner_action: string
}

export interface ErrorFacts {
  status: number
  cause: UnknownErrorCause | null
  /** The Host the client asked for, as received (escaped here, never trusted). */
  host: string
  ray: string
  clientIp: string
  time: Date
}

export interface RenderedError {
  /** Flat name/value list; the same array for every answer of a status and format. */
  headers: readonly string[]
  body: string
}

const CACHE_CONTROL = 'private, max-age=0, no-store, no-cache, must-revalidate, post-check=0, pre-check=0'
const HOST_MAX = 253

const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }
export const escapeHtml = (s: string): string => s.replace(/[&<>"']/g, c => HTML_ESCAPES[c] ?? c)
/** Markdown renderers pass HTML through, so escape both Markdown syntax and angle brackets. */
export const escapeMarkdown = (s: string): string =>
  s.replace(/[\\`*_{}[\]()#+\-.!|~]/g, '\\$&').replace(/[<>&]/g, c => HTML_ESCAPES[c] ?? c)
/** JSON that stays inert even if a client splices it into HTML. */
const safeJson = (value: unknown): string =>
  JSON.stringify(value).replace(/[<>&\u2028\u2029]/g, c => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
/** Strip control characters and bound the length of a value echoed back to the client. */
const clean = (s: string, max: number): string =>
  s.replace(/[\u0000-\u001f\u007f]/g, '').slice(0, max) // eslint-disable-line no-control-regex

const DYNAMIC = ['host', 'timestamp', 'ray_id', 'client_ip'] as const
type DynamicKey = typeof DYNAMIC[number]

/** A template with the static values filled: string parts between dynamic keys. */
interface CompiledPage { parts: string[], keys: DynamicKey[] }

function hopValues (failed: FailedHop): Record<string, string> {
  const values: Record<string, string> = {}
  for (const hop of ['browser', 'edge', 'host'] as const) {
    values[`${hop}_state`] = hop === failed ? 'error' : 'ok'
    values[`${hop}_label`] = hop === failed ? 'Error' : 'Working'
  }
  return values
}

function compile (template: string, fixed: Record<string, string>): CompiledPage {
  const parts: string[] = ['']
  const keys: DynamicKey[] = []
  const re = /\{\{([a-z_]+)\}\}/g
  let last = 0
  for (let m = re.exec(template); m !== null; m = re.exec(template)) {
    const name = m[1] as string
    const before = template.slice(last, m.index)
    last = m.index + m[0].length
    if ((DYNAMIC as readonly string[]).includes(name)) {
      parts[parts.length - 1] += before
      keys.push(name as DynamicKey)
      parts.push('')
    } else if (name in fixed) {
      parts[parts.length - 1] += before + (fixed[name] as string)
    } else {
      throw new Error(`template placeholder {{${name}}} has no value`)
    }
  }
  parts[parts.length - 1] += template.slice(last)
  return { parts, keys }
}

const pageKey = (status: number, cause: UnknownErrorCause | null): string => `${status}:${cause ?? ''}`

function detailOf (entry: EdgeErrorEntry, cause: UnknownErrorCause | null): string {
  return cause === null ? entry.whatHappened : `${UNKNOWN_ERROR_DETAIL[cause]} ${entry.whatHappened}`
}

const FORMATS: readonly ErrorFormat[] = ['html', 'json', 'problem', 'markdown']

/** The headers of every edge error of a status in a format: Cloudflare's set. */
function errorHeaders (entry: EdgeErrorEntry, format: ErrorFormat): string[] {
  const headers = [
    'content-type', CONTENT_TYPES[format],
    'cache-control', CACHE_CONTROL,
    'expires', 'Thu, 01 Jan 1970 00:00:01 GMT',
    'x-frame-options', 'SAMEORIGIN',
    'referrer-policy', 'same-origin',
    'x-content-type-options', 'nosniff'
  ]
  if (entry.retryAfter !== null) headers.push('retry-after', String(entry.retryAfter))
  return headers
}

export class ErrorRenderer {
  private readonly pages = new Map<string, CompiledPage>()
  private readonly headers = new Map<string, readonly string[]>()

  /** @param edgeName the edge's short code, shown in pages and appended to the ray header */
  constructor (edgeName: string) {
    const template = readFileSync(TEMPLATE, 'utf8')
    for (const entry of CATALOG.values()) {
      const causes: Array<UnknownErrorCause | null> =
        entry.status === 520 ? [null, ...Object.keys(UNKNOWN_ERROR_DETAIL) as UnknownErrorCause[]] : [null]
      for (const cause of causes) {
        this.pages.set(pageKey(entry.status, cause), compile(template, {
          status: String(entry.status),
          title: escapeHtml(entry.title),
          edge_name: escapeHtml(edgeName),
          what_happened: escapeHtml(detailOf(entry, cause)),
          visitor_action: escapeHtml(entry.visitorAction),
          owner_action: escapeHtml(entry.ownerAction),
          ...hopValues(entry.failedHop)
        }))
      }
      for (const format of FORMATS) this.headers.set(`${entry.status}:${format}`, errorHeaders(entry, format))
    }
  }

  body (facts: ErrorFacts): ErrorBody {
    const entry = CATALOG.get(facts.status)
    if (entry === undefined) throw new RangeError(`no catalog entry for status ${facts.status}`)
    return {
      type: `urn:highproxy:edge-error:${entry.name}`,
      title: `Error ${entry.errorCode}: ${entry.title}`,
      status: entry.status,
      detail: detailOf(entry, facts.cause),
      instance: `urn:highproxy:ray:${facts.ray}`,
      error_code: entry.errorCode,
      error_name: entry.name,
      error_category: entry.category,
      ray_id: facts.ray,
      timestamp: facts.time.toISOString(),
      zone: clean(facts.host, HOST_MAX),
      retryable: entry.retryable,
      retry_after: entry.retryAfter,
      owner_action_required: entry.ownerActionRequired,
      what_you_should_do: entry.visitorAction,
      owner_action: entry.ownerAction
    }
  }

  render (facts: ErrorFacts, format: ErrorFormat): RenderedError {
    const headers = this.headers.get(`${facts.status}:${format}`)
    if (headers === undefined) throw new RangeError(`no catalog entry for status ${facts.status}`)
    return { headers, body: this.renderBody(facts, format) }
  }

  private renderBody (facts: ErrorFacts, format: ErrorFormat): string {
    switch (format) {
      case 'json':
      case 'problem':
        return safeJson(this.body(facts))
      case 'markdown':
        return this.markdown(this.body(facts))
      case 'html':
        return this.html(facts)
    }
  }

  private html (facts: ErrorFacts): string {
    const page = this.pages.get(pageKey(facts.status, facts.cause)) ??
      this.pages.get(pageKey(facts.status, null)) as CompiledPage
    const values: Record<DynamicKey, string> = {
      host: escapeHtml(clean(facts.host, HOST_MAX)),
      timestamp: facts.time.toISOString().replace('T', ' ').slice(0, 19) + ' UTC',
      ray_id: facts.ray,
      client_ip: escapeHtml(clean(facts.clientIp, 64))
    }
    let out = page.parts[0] as string
    for (let i = 0; i < page.keys.length; i++) {
      out += values[page.keys[i] as DynamicKey] + (page.parts[i + 1] as string)
    }
    return out
  }

  private markdown (body: ErrorBody): string {
    // JSON strings are valid YAML double-quoted scalars, so the frontmatter needs no YAML writer.
    const front = Object.entries(body).map(([k, v]) => `${k}: ${safeJson(v)}`).join('\n')
    return `---\n${front}\n---\n\n# ${escapeMarkdown(body.title)}\n\n` +
      `**${escapeMarkdown(body.zone)}** — ${escapeMarkdown(body.detail)}\n\n` +
      `## What can I do?\n\n- **Visitor:** ${escapeMarkdown(body.what_you_should_do)}\n` +
      `- **Site owner:** ${escapeMarkdown(body.owner_action)}\n\n` +
      `Ray ID: \`${body.ray_id}\` · ${body.timestamp}\n`
  }
}
