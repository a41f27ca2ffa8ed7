// Every stable name a user can see is documented, on the page a reader looks for it:
// the statuses on the README's front page, the flags in docs/configuration.md, the error
// codes and the log fields in docs/logs.md.

import { readFileSync } from 'node:fs'
import t from 'tap'
import { ERROR_CODES } from '../../src/status/errors.js'
import { CATALOG } from '../../src/status/catalog.js'
import { SETTINGS } from '../../src/config/load.js'
import { AccessRecordSchema, FailureRecordSchema, HighproxyFactsSchema, LogpushRecordSchema } from '../../src/log/log-schema.js'

const read = (path: string): string => readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8')
const readme = read('README.md')
const configuration = read('docs/configuration.md')
const logs = read('docs/logs.md')

t.test('every error code is in docs/logs.md', async t => {
  const codes = logs.slice(logs.indexOf('## Error codes'))
  for (const code of Object.keys(ERROR_CODES)) t.match(codes, `\`${code}\``, code)
})

t.test('every error_name is in the README', async t => {
  for (const entry of CATALOG.values()) t.match(readme, `\`${entry.name}\``, `${entry.status} ${entry.name}`)
})

t.test('every flag and its environment variable are in docs/configuration.md', async t => {
  for (const s of SETTINGS) {
    t.match(configuration, `--${s.flag}`, s.flag)
    t.match(configuration, s.env, s.env)
  }
})

t.test('every field of both log shapes is in docs/logs.md', async t => {
  const lines = logs.slice(logs.indexOf('## The two lines'), logs.indexOf('## Error codes'))
  const schemas = { AccessRecordSchema, FailureRecordSchema, LogpushRecordSchema, HighproxyFactsSchema }
  for (const [name, schema] of Object.entries(schemas)) {
    for (const field of Object.keys(schema.properties)) {
      if (field !== 'msg') t.match(lines, `\`${field}\``, `${name}.${field}`)
    }
  }
})
