// The README and the docs/ pages hold together: every relative link points at a file that
// exists, every #anchor at a heading of its page (GitHub's slugs, by github-slugger), the
// README links to every page, and every page starts with what it covers and links back.

import { existsSync, readFileSync, readdirSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import GithubSlugger from 'github-slugger'
import t from 'tap'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const PAGES = readdirSync(join(ROOT, 'docs')).filter(f => f.endsWith('.md')).map(f => join(ROOT, 'docs', f))
const FILES = [join(ROOT, 'README.md'), ...PAGES]

/** The text outside fenced code blocks and inline code, where links and headings live. */
function prose (text: string): string {
  return text.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[ \t]*$/gm, '').replace(/`[^`\n]*`/g, 'code')
}

/** The anchors GitHub makes for a page's headings. */
function anchors (file: string): Set<string> {
  const slugger = new GithubSlugger()
  const text = readFileSync(file, 'utf8').replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[ \t]*$/gm, '')
  const found = new Set<string>()
  for (const m of text.matchAll(/^#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$/gm)) found.add(slugger.slug((m[1] as string).replace(/`/g, '')))
  return found
}

/** Every [text](target) and ![alt](target) of a page, external ones left out. */
function links (file: string): string[] {
  return [...prose(readFileSync(file, 'utf8')).matchAll(/!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)]
    .map(m => m[1] as string)
    .filter(target => !/^[a-z][a-z0-9+.-]*:/i.test(target))
}

t.test('every relative link and anchor resolves', async t => {
  let checked = 0
  for (const file of FILES) {
    const name = relative(ROOT, file)
    for (const target of links(file)) {
      checked++
      const [path = '', anchor] = target.split('#', 2) as [string, string | undefined]
      const to = path === '' ? file : join(dirname(file), decodeURIComponent(path))
      if (!existsSync(to)) { t.fail(`${name}: ${target} points at a file that does not exist`); continue }
      if (anchor === undefined) continue
      if (!to.endsWith('.md')) { t.fail(`${name}: ${target} has an anchor into a file that is not Markdown`); continue }
      t.ok(anchors(to).has(anchor), `${name}: ${target}`)
    }
  }
  t.ok(checked > 100, `${checked} links checked`)
})

t.test('the README links to every docs/ page', async t => {
  const readme = links(join(ROOT, 'README.md')).map(target => target.split('#')[0])
  for (const page of PAGES) {
    const name = relative(ROOT, page)
    t.ok(readme.includes(name), `README.md links to ${name}`)
  }
})

t.test('every docs/ page says what it covers and links back to the README', async t => {
  for (const page of PAGES) {
    const name = relative(ROOT, page)
    const text = readFileSync(page, 'utf8')
    t.match(text, /^# .+\n\n[A-Z][^\n]+/, `${name} starts with its title and a sentence`)
    t.ok(links(page).some(target => target.split('#')[0] === '../README.md'), `${name} links back to the README`)
  }
})

t.test('the checks fail on what they are meant to find', async t => {
  const slugger = new GithubSlugger()
  t.equal(slugger.slug('Slow readers: timeouts.client_write (default 60 s)'), 'slow-readers-timeoutsclient_write-default-60-s')
  t.same(links(join(ROOT, 'README.md')).filter(l => l.startsWith('http')), [], 'external links are left out')
  t.notOk(anchors(join(ROOT, 'README.md')).has('no-such-heading'))
  t.ok(anchors(join(ROOT, 'README.md')).has('edge-statuses'))
})
