// Certificates made now, for this run only: no private key is ever committed. The
// `selfsigned` package does the X.509 work (it can back-date validity and sign with a
// CA); P-256 keys, because an RSA key costs ~10x more CPU to make and tests make many.

import { generate } from 'selfsigned'
import { LOOPBACK } from './loopback.js'

export interface TestCertificate { cert: string, key: string }

type Options = NonNullable<Parameters<typeof generate>[1]>

const DAY_MS = 24 * 60 * 60 * 1000

async function certificate (commonName: string, options: Options): Promise<TestCertificate> {
  const pems = await generate([{ name: 'commonName', value: commonName }], { keyType: 'ec', algorithm: 'sha256', ...options })
  return { cert: pems.cert, key: pems.private }
}

/** Names a client dialling the lab uses: `localhost` and the loopback address. */
const labNames = (names: readonly string[]): Options['extensions'] =>
  [{ name: 'subjectAltName', altNames: names.map(n => n === LOOPBACK ? { type: 7, ip: n } : { type: 2, value: n }) }]

/** Self-signed for localhost and 127.0.0.1: fails strict verification unless trusted itself. */
export const selfSignedCertificate = (): Promise<TestCertificate> =>
  certificate('localhost', { extensions: labNames(['localhost', LOOPBACK]) })

/** A CA trusted by nobody until a test says so: the issuer of the lab's other certificates. */
export const labAuthority = (): Promise<TestCertificate> =>
  certificate('highproxy lab CA', {
    extensions: [{ name: 'basicConstraints', cA: true, critical: true }, { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true }]
  })

export interface IssueOptions {
  names?: readonly string[]
  /** Validity in days from now: negative is in the past. Default: from a day ago, for a year. */
  validDays?: readonly [from: number, to: number]
}

/** A certificate `authority` signed; with the defaults it verifies for the lab's names. */
export function issuedCertificate (authority: TestCertificate, opts: IssueOptions = {}): Promise<TestCertificate> {
  const names = opts.names ?? ['localhost', LOOPBACK]
  const [from, to] = opts.validDays ?? [-1, 365]
  return certificate(names[0] ?? 'localhost', {
    ca: authority,
    notBeforeDate: new Date(Date.now() + from * DAY_MS),
    notAfterDate: new Date(Date.now() + to * DAY_MS),
    extensions: labNames(names)
  })
}
