// `--tls-selfsigned`: a throwaway certificate for localhost and 127.0.0.1, made at start
// and never written to disk, for trying HTTPS and HTTP/2 locally. Made here, not by the
// fault lab's generator: the product must not depend on its test lab. The `selfsigned`
// package does the X.509 work; a P-256 key, as the lab's, because it is cheap to make.

import { generate } from 'selfsigned'
import type { FrontDoor } from '../../config/schema.js'
import { certificateOf } from '../../config/certificates.js'

export async function withSelfSigned (front: FrontDoor): Promise<FrontDoor> {
  const pems = await generate([{ name: 'commonName', value: 'localhost' }], {
    keyType: 'ec',
    algorithm: 'sha256',
    extensions: [{ name: 'subjectAltName', altNames: [{ type: 2, value: 'localhost' }, { type: 7, ip: '127.0.0.1' }] }]
  })
  return { ...front, certificates: [certificateOf(pems.cert, pems.private, 'listen.tls.selfsigned', 'listen.tls.selfsigned'), ...front.certificates] }
}
