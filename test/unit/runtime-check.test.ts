// One warning line at start-up on a Node.js line past its end of life (Node 20 since
// 2026-04-30), none on a supported one.

import t from 'tap'
import { endOfLifeWarning } from '../../src/runtime-check.js'

const on = (date: string): Date => new Date(`${date}T12:00:00Z`)

t.test('end-of-life lines warn, supported ones do not', async t => {
  t.match(endOfLifeWarning('v20.20.2', on('2026-12-07')), /^Node\.js 20\.20\.2 is end-of-life since 2026-04-30 and gets no security fixes; run highproxy on Node\.js 24 \(LTS\)$/)
  t.equal(endOfLifeWarning('v20.20.2', on('2026-04-29')), null, 'Node 20 before its end')
  t.match(endOfLifeWarning('v18.20.0', on('2026-12-07')), /Node\.js 18\.20\.0 is end-of-life/, 'an older line than the table')
  t.match(endOfLifeWarning('v23.11.0', on('2026-12-07')), /since 2025-06-01/, 'an odd line past its end')
  t.equal(endOfLifeWarning('v22.21.0', on('2026-12-07')), null, 'Node 22: maintenance until 2027-04-30')
  t.match(endOfLifeWarning('v22.21.0', on('2027-05-01')), /since 2027-04-30/, 'and past it after that')
  t.equal(endOfLifeWarning('v24.11.0', on('2026-12-07')), null, 'Node 24')
  t.equal(endOfLifeWarning('v26.0.0', on('2026-12-07')), null, 'Node 26')
  t.equal(endOfLifeWarning('v30.0.0', on('2026-12-07')), null, 'a line newer than the table')
})
