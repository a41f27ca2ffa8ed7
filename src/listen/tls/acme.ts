// Certificates obtained and renewed by the edge itself (ACME, RFC 8555), with
// acme-client for the protocol. One process orders and renews (the one holding the
// storage's lock: with --workers, the first worker to start); every process serves what
// the storage holds, the others picking a new certificate up within POLL_MS.
//
// At start each domain's stored certificate is served if it is still valid; a domain
// without one is ordered at once. Renewal is due when `renew_before` (default a third of
// the lifetime) is left, moved earlier by a random jitter so that many edges started
// together do not renew together. A failed try is a warn line with the CA's problem
// document (type and detail), a count in highproxy_acme_failures_total, and another try
// after a backoff (retry.first, doubled each time up to retry.max); the certificate
// already served stays served until it expires.

import { generateKeyPairSync } from 'node:crypto'
import { Agent } from 'node:https'
import * as acme from 'acme-client'
import type { Logger } from 'pino'
import type { AcmeConfig } from '../../config/schema.js'
import type { AcmeCertificates } from './acme-certificates.js'
import { AcmeStore, validity } from './acme-store.js'
import { certificateOf } from '../../config/certificates.js'

/** How often a process that does not order looks for certificates another one stored. */
export const POLL_MS = 2000
/** The longest a single timer waits (Node's timers overflow past 2^31-1 ms). */
const MAX_TIMER_MS = 2 ** 31 - 1

/** An RFC 7807 problem document as ACME servers send them (RFC 8555 §6.7). */
export interface AcmeProblem { type: string, detail: string, status?: number }

// The last problem document any ACME answer carried: a 4xx body, or the `error` of an
// invalid challenge, authorization or order. acme-client keeps only the detail in the
// errors it throws; the line a failure writes needs the type too. Orders are made one
// at a time per process, so the last one seen belongs to the try that failed.
let lastProblem: AcmeProblem | null = null
// The last request that got no answer at all (refused, timed out, TLS failed): when
// acme-client's own retries run out on one, it throws a TypeError that has lost it.
let lastUnanswered: { code: string, message: string, url: string } | null = null
let installed = false

function installProblemCapture (): void {
  if (installed) return
  installed = true
  // acme-client retries a network failure or a 5xx itself before our backoff takes over:
  // twice, a second apart, rather than five times over a minute.
  const defaults = acme.axios.defaults as { acmeSettings?: Record<string, number> }
  defaults.acmeSettings = { ...defaults.acmeSettings, retryMaxAttempts: 2, retryDefaultDelay: 1 }
  acme.axios.defaults.timeout = 30_000
  // Ahead of acme-client's retry handler, which sees every failure first.
  const handlers = (acme.axios.interceptors.response as unknown as { handlers: unknown[] }).handlers
  handlers.unshift({
    fulfilled: null,
    rejected: (error: { code?: string, message?: string, response?: unknown, config?: { url?: string } }) => {
      if (error.response === undefined) lastUnanswered = { code: error.code ?? 'ERROR', message: error.message ?? '', url: error.config?.url ?? '' }
      return Promise.reject(error)
    },
    synchronous: false,
    runWhen: null
  })
  acme.axios.interceptors.response.use(resp => {
    const data = resp.data as { type?: unknown, detail?: unknown, status?: unknown, error?: { type?: unknown, detail?: unknown } } | undefined
    if (resp.status >= 400 && typeof data?.type === 'string') {
      lastProblem = { type: data.type, detail: String(data.detail ?? ''), status: resp.status }
    } else if (data?.status === 'invalid' && typeof data.error?.type === 'string') {
      lastProblem = { type: data.error.type, detail: String(data.error.detail ?? '') }
    }
    return resp
  })
}

const lastUnansweredRequest = (): typeof lastUnanswered => lastUnanswered

/** The problem behind an acme-client error: its message is the problem's detail. */
function problemOf (err: Error): AcmeProblem | null {
  const p = lastProblem
  if (p === null) return null
  return err.message === p.detail.replace(/\n/g, '') ? p : null
}

export interface AcmeHooks {
  /** A try failed (the metric). */
  onFailure: () => void
}

interface DomainState {
  timer: NodeJS.Timeout | null
  failures: number
  /** What the storage's certificate file looked like when last read (followers). */
  stamp: string
}

export class AcmeManager {
  readonly store: AcmeStore
  private readonly states = new Map<string, DomainState>()
  private client: acme.Client | null = null
  private queue: Promise<void> = Promise.resolve()
  private holder = false
  private stopped = false
  private poller: NodeJS.Timeout | null = null
  private readonly agent: Agent | undefined

  constructor (
    private readonly config: AcmeConfig,
    private readonly certificates: AcmeCertificates,
    private readonly log: Logger,
    store?: AcmeStore
  ) {
    this.store = store ?? new AcmeStore(config.storage, config.directoryUrl)
    this.agent = config.directoryCa === null ? undefined : new Agent({ ca: config.directoryCa, keepAlive: true })
    for (const d of config.domains) this.states.set(d, { timer: null, failures: 0, stamp: '' })
  }

  private hooks: AcmeHooks = { onFailure: () => {} }

  /** Serves what the storage holds (before the listeners open). */
  loadStored (): void {
    this.store.prepare()
    for (const domain of this.config.domains) this.load(domain)
  }

  /** Then orders, renews or watches in the background. */
  start (hooks: AcmeHooks): void {
    this.hooks = hooks
    installProblemCapture()
    this.holder = this.store.tryLock()
    if (this.holder) this.lead()
    // Everyone polls: a follower for certificates the holder stored, and for the lock
    // when the holder is gone.
    this.poller = setInterval(() => { this.poll() }, POLL_MS)
    this.poller.unref()
  }

  stop (): void {
    this.stopped = true
    if (this.poller !== null) clearInterval(this.poller)
    for (const s of this.states.values()) if (s.timer !== null) clearTimeout(s.timer)
    if (this.holder) this.store.unlock()
    this.agent?.destroy()
  }

  /** The lock holder's start: old challenge answers gone, every domain scheduled. */
  private lead (): void {
    this.store.clearChallenges()
    this.log.info({ pid: process.pid, acme: { directory: this.config.directoryUrl, storage: this.store.dir, domains: this.config.domains } }, 'acme: this process orders and renews')
    for (const domain of this.config.domains) this.schedule(domain, this.dueIn(domain))
  }

  /** Reads a domain's stored certificate and serves it when it is valid and for that name. */
  private load (domain: string): boolean {
    const state = this.states.get(domain) as DomainState
    state.stamp = this.store.stamp(domain)
    const pair = this.store.certificate(domain)
    if (pair === null) return false
    try {
      const certificate = certificateOf(pair.cert, pair.key, `${domain}.crt`, `${domain}.key`)
      if (!certificate.names.includes(domain)) throw new Error(`it is for ${certificate.names.join(', ')}`)
      if (certificate.notAfter <= Date.now()) throw new Error(`it expired at ${new Date(certificate.notAfter).toISOString()}`)
      const old = this.certificates.certificate(domain)
      if (old?.fingerprint === certificate.fingerprint) return true
      this.certificates.set(domain, certificate)
      this.log.info({ pid: process.pid, acme: { domain, fingerprint: certificate.fingerprint, not_after: new Date(certificate.notAfter).toISOString() } }, 'acme: certificate served')
      return true
    } catch (err) {
      this.log.warn({ acme: { domain, storage: this.store.dir }, error: { message: (err as Error).message } }, 'acme: stored certificate not used')
      return false
    }
  }

  private poll (): void {
    if (this.stopped) return
    if (this.holder) this.store.refreshLock()
    else {
      for (const [domain, state] of this.states) if (this.store.stamp(domain) !== state.stamp) this.load(domain)
      if (this.store.tryLock()) {
        this.holder = true
        this.lead()
      }
    }
  }

  /** Milliseconds until a domain's certificate is due for renewal (0: order now). */
  private dueIn (domain: string): number {
    const served = this.certificates.certificate(domain)
    if (served === null) return 0
    const { notBefore, notAfter } = validity(served.cert)
    const lifetime = notAfter - notBefore
    const before = this.config.renewBeforeMs ?? lifetime / 3
    // Jitter: up to a twentieth of the lifetime earlier (at most 12 h), never later.
    const jitter = Math.random() * Math.min(lifetime / 20, 12 * 3_600_000)
    return Math.max(0, notAfter - before - jitter - Date.now())
  }

  private schedule (domain: string, delayMs: number): void {
    const state = this.states.get(domain) as DomainState
    if (state.timer !== null) clearTimeout(state.timer)
    if (this.stopped) return
    const wait = Math.min(delayMs, MAX_TIMER_MS)
    // A due date past the longest timer is reached in steps.
    state.timer = setTimeout(() => {
      state.timer = null
      if (wait < delayMs) this.schedule(domain, delayMs - wait)
      else this.enqueue(domain)
    }, wait)
    state.timer.unref()
  }

  /** One order at a time per process. */
  private enqueue (domain: string): void {
    this.queue = this.queue.then(() => this.run(domain))
  }

  private async run (domain: string): Promise<void> {
    if (this.stopped) return
    if (!this.store.holds()) {
      // Another process took the lock over (see AcmeStore.tryLock): it orders now.
      this.holder = false
      for (const s of this.states.values()) if (s.timer !== null) clearTimeout(s.timer)
      this.log.warn({ acme: { storage: this.store.dir } }, 'acme: the storage lock is held by another process; it orders and renews')
      return
    }
    const state = this.states.get(domain) as DomainState
    const renewing = this.certificates.certificate(domain) !== null
    lastProblem = null
    lastUnanswered = null
    const started = Date.now()
    try {
      const { certificate, challenges } = await this.obtain(domain)
      if (this.stopped) return
      state.failures = 0
      state.stamp = this.store.stamp(domain)
      this.certificates.set(domain, certificate)
      this.log.info({
        acme: { domain, fingerprint: certificate.fingerprint, not_after: new Date(certificate.notAfter).toISOString(), renewal: renewing, challenges, took_ms: Date.now() - started }
      }, renewing ? 'acme: certificate renewed' : 'acme: certificate obtained')
      let next = this.dueIn(domain)
      if (next < this.config.retryFirstMs) {
        // renew_before is longer than the lifetime this CA gives: renewing at once would
        // loop, so the next renewal waits as long as a first retry.
        this.log.warn({ acme: { domain, renew_before_ms: this.config.renewBeforeMs } }, 'acme: renew_before is longer than the certificate lifetime; renewing after retry.first')
        next = this.config.retryFirstMs
      }
      this.schedule(domain, next)
    } catch (err) {
      if (this.stopped) return
      state.failures++
      this.hooks.onFailure()
      const backoff = Math.min(this.config.retryMaxMs, this.config.retryFirstMs * 2 ** (state.failures - 1))
      // ±10% so that edges failing together do not retry together.
      const wait = Math.round(backoff * (0.9 + Math.random() * 0.2))
      let e = err as Error & { code?: string }
      const problem = problemOf(e)
      const unanswered = lastUnansweredRequest()
      if (problem === null && unanswered !== null && (e.code === undefined || e.code === unanswered.code)) {
        e = Object.assign(new Error(`no answer from ${unanswered.url}: ${unanswered.message}`), { code: unanswered.code })
      }
      const served = this.certificates.certificate(domain)
      this.log.warn({
        acme: {
          domain,
          directory: this.config.directoryUrl,
          renewal: renewing,
          failures: state.failures,
          retry_in_ms: wait,
          serving: served === null ? null : { fingerprint: served.fingerprint, not_after: new Date(served.notAfter).toISOString() }
        },
        error: { code: 'HPX_ERR_ACME', message: e.message, ...(e.code === undefined ? {} : { cause: e.code }) },
        problem
      }, renewing ? 'acme: renewal failed, the current certificate stays' : 'acme: order failed')
      this.schedule(domain, wait)
    }
  }

  /** The account: its key from storage (made once), registered (or found) once per process. */
  private async account (): Promise<acme.Client> {
    if (this.client !== null) return this.client
    let key = this.store.accountKey()
    if (key === null) {
      key = newKey()
      this.store.saveAccountKey(key)
    }
    const client = new acme.Client({
      directoryUrl: this.config.directoryUrl,
      accountKey: key,
      accountUrl: this.store.accountUrl() ?? undefined,
      backoffAttempts: 10,
      backoffMin: 500,
      backoffMax: 5000,
      ...(this.config.eab === null ? {} : { externalAccountBinding: { kid: this.config.eab.kid, hmacKey: this.config.eab.hmac } })
    })
    if (this.agent !== undefined) {
      const agent = this.agent
      // acme-client has one axios instance; its requests get this agent (directory_ca).
      acme.axios.defaults.httpsAgent = agent
    }
    let url: string | null = null
    try { url = client.getAccountUrl() } catch {}
    if (url === null) {
      // Asking for an ACME certificate is agreeing to the CA's terms (the docs say so).
      await client.createAccount({ termsOfServiceAgreed: true, ...(this.config.email === null ? {} : { contact: [`mailto:${this.config.email}`] }) })
      this.store.saveAccountUrl(client.getAccountUrl())
    }
    this.client = client
    return client
  }

  private async obtain (domain: string): Promise<{ certificate: ReturnType<typeof certificateOf>, challenges: string[] }> {
    const client = await this.account()
    const used: string[] = []
    const order = await client.createOrder({ identifiers: [{ type: 'dns', value: domain }] })
    const authorizations = await client.getAuthorizations(order)
    for (const authz of authorizations) {
      if (authz.status === 'valid') continue
      const challenge = this.config.challenges
        .map(type => authz.challenges.find(c => c.type === type))
        .find(c => c !== undefined)
      if (challenge === undefined) {
        throw new Error(`the CA offers none of ${this.config.challenges.join(', ')} for ${domain} (it offers ${authz.challenges.map(c => c.type).join(', ')})`)
      }
      used.push(challenge.type)
      const keyAuthorization = await client.getChallengeKeyAuthorization(challenge)
      if (challenge.type === 'http-01') {
        this.store.saveHttpToken(challenge.token, keyAuthorization)
      } else {
        const [key, cert] = await acme.crypto.createAlpnCertificate(authz, keyAuthorization, newKey())
        this.store.saveAlpnCertificate(domain, { key: key.toString(), cert: cert.toString() })
      }
      try {
        await client.completeChallenge(challenge)
        await client.waitForValidStatus(challenge)
      } finally {
        if (challenge.type === 'http-01') this.store.removeHttpToken(challenge.token)
        else this.store.removeAlpnCertificate(domain)
      }
    }
    const key = newKey()
    const [, csr] = await acme.crypto.createCsr({ commonName: domain, altNames: [domain] }, key)
    const finalized = await client.finalizeOrder(order, csr)
    const chain = await client.getCertificate(finalized)
    const certificate = certificateOf(chain, key, `the certificate the CA issued for ${domain}`, `the key made for ${domain}`)
    this.store.saveCertificate(domain, { cert: chain, key })
    return { certificate, challenges: used }
  }
}

/** An ECDSA P-256 key in PKCS#8 PEM, made by Node's crypto. */
function newKey (): string {
  return generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()
}
