// Every stable name a user can see is documented in the README.

import { readFileSync } from 'node:fs'
import t from 'tap'
import { ERROR_CODES } from '../../src/status/errors.js'
import { CATALOG } from '../../src/status/catalog.js'
import { SETTINGS } from '../../src/config/load.js'
import { AccessRecordSchema, FailureRecordSchema, HighproxyFactsSchema, LogpushRecordSchema } from '../../src/log/log-schema.js'

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8')

t.test('every error code is in the README', async t => {
  for (const code of Object.keys(ERROR_CODES)) t.match(readme, `\`${code}\``, code)
})

t.test('every error_name is in the README', async t => {
  for (const entry of CATALOG.values()) t.match(readme, `\`${entry.name}\``, `${entry.status} ${entry.name}`)
})

t.test('every flag and its environment variable are in the README', async t => {
  for (const s of SETTINGS) {
    t.match(readme, `--${s.flag}`, s.flag)
    t.match(readme, s.env, s.env)
  }
})

t.test('every field of both log shapes is in the README', async t => {
  const logs = readme.slice(readme.indexOf('## Logs'), readme.indexOf('## Tools'))
  const schemas = { AccessRecordSchema, FailureRecordSchema, LogpushRecordSchema, HighproxyFactsSchema }
  for (const [name, schema] of Object.entries(schemas)) {
    for (const field of Object.keys(schema.properties)) {
      if (field !== 'msg') t.match(logs, `\`${field}\``, `${name}.${field}`)
    }
  }
})
