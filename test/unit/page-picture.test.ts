// docs/522-page.png, the README's picture of the 522 page, shows today's page: the words
// it was made from (stored in it by docs/522-page.mjs) are the catalog's. It once showed
// an old 522 text that contradicted the project's own definition of a 522.

import { readFileSync } from 'node:fs'
import t from 'tap'
import { CATALOG } from '../../src/status/catalog.js'

/** The tEXt chunks of a PNG, by key. */
function textChunks (png: Buffer): Map<string, string> {
  const found = new Map<string, string>()
  t.same([...png.subarray(0, 8)], [137, 80, 78, 71, 13, 10, 26, 10], 'a PNG')
  for (let at = 8; at + 8 <= png.length;) {
    const length = png.readUInt32BE(at)
    const type = png.toString('latin1', at + 4, at + 8)
    if (type === 'tEXt') {
      const data = png.subarray(at + 8, at + 8 + length)
      const nul = data.indexOf(0)
      found.set(data.toString('latin1', 0, nul), data.toString('latin1', nul + 1))
    }
    at += 12 + length
  }
  return found
}

t.test('docs/522-page.png was made from the 522 page as it is today', async t => {
  const png = readFileSync(new URL('../../docs/522-page.png', import.meta.url))
  t.equal(png.readUInt32BE(16), 1280, 'the width the README says')
  const entry = CATALOG.get(522)
  const words = textChunks(png).get('highproxy-522-text')
  t.equal(words, `${entry?.whatHappened ?? ''}\n${entry?.ownerAction ?? ''}`, 'regenerate it with `npm run build && node docs/522-page.mjs`')
  t.notMatch(words ?? '', /able to connect to your web server/, 'not the old text')
})
