// `--tls-selfsigned`: a throwaway certificate for localhost and 127.0.0.1, made at start
// (by the lab's generator) and never written to disk, for trying HTTPS and HTTP/2 locally.

import type { FrontDoor } from '../../config/schema.js'
import { selfSignedCertificate } from '../../lab/certificates.js'
import { certificateOf } from './certificates.js'

export async function withSelfSigned (front: FrontDoor): Promise<FrontDoor> {
  const pair = await selfSignedCertificate()
  return { ...front, certificates: [certificateOf(pair.cert, pair.key, 'listen.tls.selfsigned', 'listen.tls.selfsigned'), ...front.certificates] }
}
