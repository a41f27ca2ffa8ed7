// Regenerates docs/522-page.png, the README's picture of the 522 page, from the page the
// edge renders today: `npm run build && node docs/522-page.mjs` (needs chromium).
// The words the picture shows ("What happened", the owner's advice) are stored in the
// PNG as a tEXt chunk, and a test (test/unit/page-picture.test.ts) compares them with
// the catalog, so the picture cannot silently fall behind the page again.

import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ErrorPages } from '../dist/page/respond.js'
import { CATALOG } from '../dist/status/catalog.js'

export const TEXT_KEY = 'highproxy-522-text'

/** The words of the 522 page the picture must show. */
export const pageWords = (catalog = CATALOG) => {
  const entry = catalog.get(522)
  return `${entry.whatHappened}\n${entry.ownerAction}`
}

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
  return c >>> 0
})
const crc32 = buf => {
  let c = 0xffffffff
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8)
  return (c ^ 0xffffffff) >>> 0
}

/** The PNG with a tEXt chunk `key`=`text` put before its IEND chunk. */
function withText (png, key, text) {
  const data = Buffer.concat([Buffer.from(key, 'latin1'), Buffer.from([0]), Buffer.from(text, 'latin1')])
  const type = Buffer.from('tEXt', 'latin1')
  const chunk = Buffer.alloc(12 + data.length)
  chunk.writeUInt32BE(data.length, 0)
  type.copy(chunk, 4)
  data.copy(chunk, 8)
  chunk.writeUInt32BE(crc32(Buffer.concat([type, data])), 8 + data.length)
  const iend = png.length - 12
  return Buffer.concat([png.subarray(0, iend), chunk, png.subarray(iend)])
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const dir = mkdtempSync(join(tmpdir(), 'highproxy-522-page-'))
  try {
    const page = new ErrorPages('HPX').build({ status: 522, cause: null, accept: 'text/html', host: 'example.com', ray: '8c1f2a9b3d4e5f60', clientIp: '203.0.113.7' }, [])
    writeFileSync(join(dir, '522.html'), page.body)
    const shot = join(dir, '522.png')
    execFileSync('chromium', ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--hide-scrollbars', '--window-size=1280,1000', `--screenshot=${shot}`, `file://${join(dir, '522.html')}`], { stdio: 'ignore' })
    writeFileSync(new URL('./522-page.png', import.meta.url), withText(readFileSync(shot), TEXT_KEY, pageWords()))
    process.stdout.write('docs/522-page.png written\n')
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
