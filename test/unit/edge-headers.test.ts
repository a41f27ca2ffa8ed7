// The edge's own response headers (page/edge-headers.ts), from plain values.

import t from 'tap'
import { SERVER_NAME, edgeHeaders, edgeResponseHeaders } from '../../src/page/edge-headers.js'
import { rayHeaderValue } from '../../src/log/ray.js'

const names = { rayHeader: 'x-ray', edgeName: 'EDGE1' }

t.test('the ray id as cf-ray shapes it, our Server, then the extras in order', async t => {
  t.same(edgeHeaders('0123456789abcdef', names, ['x-a', '1', 'x-b', '2'], false, false),
    ['x-ray', '0123456789abcdef-EDGE1', 'server', SERVER_NAME, 'x-a', '1', 'x-b', '2'])
  t.equal(rayHeaderValue('0123456789abcdef', 'EDGE1'), '0123456789abcdef-EDGE1')
})

t.test('draining closes HTTP/1.1 connections; HTTP/2 has no Connection header', async t => {
  t.same(edgeHeaders('0123456789abcdef', names, [], true, false), ['x-ray', '0123456789abcdef-EDGE1', 'server', SERVER_NAME, 'connection', 'close'])
  t.same(edgeHeaders('0123456789abcdef', names, [], true, true), ['x-ray', '0123456789abcdef-EDGE1', 'server', SERVER_NAME])
})

t.test('HSTS is the only header every route gets, when configured', async t => {
  t.same(edgeResponseHeaders(null), [])
  t.same(edgeResponseHeaders(undefined), [])
  t.same(edgeResponseHeaders('max-age=31536000'), ['strict-transport-security', 'max-age=31536000'])
})
