// The edge's flat header list as the headers object of an HTTP/2 response (page/write.ts).

import t from 'tap'
import { headerObject } from '../../src/page/write.js'

t.test('names lower-cased, repeats kept as a list in order, the status as :status', async t => {
  const out = headerObject(200, ['Set-Cookie', 'a=1', 'Content-Type', 'text/plain', 'set-cookie', 'b=2', 'SET-COOKIE', 'c=3', 'X-One', ''])
  t.same({ ...out }, { ':status': 200, 'set-cookie': ['a=1', 'b=2', 'c=3'], 'content-type': 'text/plain', 'x-one': '' })
})

t.test('no prototype: a header named like an Object property is just a header', async t => {
  const out = headerObject(204, ['constructor', 'x', '__proto__', 'y', 'tostring', 'z'])
  t.equal(Object.getPrototypeOf(out), null)
  t.same(Object.keys(out), [':status', 'constructor', '__proto__', 'tostring'])
  t.equal(out.constructor, 'x')
})
