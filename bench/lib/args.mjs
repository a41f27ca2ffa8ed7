// Extra highproxy arguments given on the bench's command line, as one string each
// (`--highproxy-args "--connect-timeout 5s"`, `--variant reuse="--config r.yaml"`).

/**
 * Splits a command-line string into arguments the way a POSIX shell does for plain words
 * and quotes: whitespace separates, '…' is literal, "…" and \ escape. No expansion.
 */
export function splitArgs (text) {
  const out = []
  let cur = ''
  let inWord = false
  let quote = null
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]
    if (quote === "'") {
      if (ch === "'") quote = null
      else cur += ch
    } else if (quote === '"') {
      if (ch === '"') quote = null
      else if (ch === '\\' && i + 1 < text.length && '"\\$`'.includes(text[i + 1])) cur += text[++i]
      else cur += ch
    } else if (ch === "'" || ch === '"') {
      quote = ch
      inWord = true
    } else if (ch === '\\' && i + 1 < text.length) {
      cur += text[++i]
      inWord = true
    } else if (/\s/.test(ch)) {
      if (inWord) out.push(cur)
      cur = ''
      inWord = false
    } else {
      cur += ch
      inWord = true
    }
  }
  if (quote !== null) throw new Error(`unclosed ${quote} in ${JSON.stringify(text)}`)
  if (inWord) out.push(cur)
  return out
}

/** `name=args` → { name, args: [...] }; the name labels the row ("highproxy (name)"). */
export function parseVariant (text) {
  const eq = text.indexOf('=')
  if (eq <= 0) throw new Error(`--variant wants name="<args>", got ${JSON.stringify(text)}`)
  const name = text.slice(0, eq).trim()
  if (!/^[\w.:+-]+$/.test(name)) throw new Error(`--variant name "${name}": use letters, digits and . _ : + -`)
  return { name, args: splitArgs(text.slice(eq + 1)) }
}
