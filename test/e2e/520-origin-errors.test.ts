// 520: the origin accepted the connection and then did something that is not an HTTP
// response. Each sub-cause is a real TCP server on loopback (src/lab/faults.ts).

import t from 'tap'
import { emptyOrigin, garbageOrigin, hugeHeadersOrigin, resetOrigin } from '../../src/lab/faults.js'
import type { LabOrigin } from '../../src/lab/loopback.js'
import { UNKNOWN_ERROR_DETAIL, type UnknownErrorCause } from '../../src/status/catalog.js'
import type { ErrorBody } from '../../src/page/render.js'
import { accessFor, failureFor, get, rayOf, startProxy, type Got } from '../helpers.js'
import { timed, oneOfTwo, shown, type Timed } from '../timing.js'


const CASES: Array<{ cause: UnknownErrorCause, start: () => Promise<LabOrigin>, what: string }> = [
  { cause: 'reset', start: resetOrigin, what: 'reads the request, then RST' },
  { cause: 'empty', start: emptyOrigin, what: 'reads the request, then FIN without a byte' },
  { cause: 'invalid', start: garbageOrigin, what: 'answers with an SSH banner' },
  { cause: 'headers_too_large', start: hugeHeadersOrigin, what: 'answers with 200 KiB of headers' }
]

const details = new Map<UnknownErrorCause, string>()

for (const { cause, start, what } of CASES) {
  t.test(`520 ${cause}: origin ${what}`, async t => {
    const origin = await start()
    t.teardown(() => origin.close())
    const originPort = new URL(origin.url).port
    const proxy = await startProxy({ origin: origin.url, timeouts: { connect: '400ms', response: '500ms' } })
    t.teardown(() => proxy.close())

    const once = (): Promise<Timed<Got>> => timed(() => get(`${proxy.url}/page`, { headers: { accept: 'application/json' } }))
    const res = await once()
    t.equal(res.status, 520)
    t.equal(res.headers['retry-after'], '60')
    t.match(res.headers['content-type'], /^application\/json/)
    // Well under the response timeout: the origin failed at once, nothing was waited for.
    const atOnce = (x: Timed<Got>): boolean => x.ms < 400 + x.late
    t.ok((await oneOfTwo(res, once, atOnce)).some(atOnce), `answered well before the 500 ms response timeout: ${shown([res])}`)

    const body = JSON.parse(res.body) as ErrorBody
    t.equal(body.status, 520)
    t.equal(body.error_code, 520)
    t.equal(body.error_name, 'unknown_error')
    t.equal(body.error_category, 'origin')
    t.equal(body.retry_after, 60)
    t.equal(body.ray_id, rayOf(res))
    t.ok(body.detail.startsWith(UNKNOWN_ERROR_DETAIL[cause]), `detail names the cause: ${body.detail}`)
    details.set(cause, body.detail)
    // What a visitor sees never names the origin.
    t.notMatch(body.detail, '127.0.0.1')
    t.notMatch(body.detail, originPort)
    t.notMatch(res.body, `127.0.0.1:${originPort}`)

    const failure = await proxy.waitForLog(failureFor(rayOf(res)))
    t.equal(failure.edge_status, 520)
    t.equal(failure.cause, cause)
    t.equal(failure.phase, 'response')
    t.equal(failure.classified, true)
    t.equal(failure.truncated, false)
    t.equal(failure.injected, false)
    t.equal(failure.origin.url, origin.url)
    t.equal(failure.origin.address, '127.0.0.1')
    t.equal(failure.origin.port, Number(originPort))
    t.equal(failure.timings.ttfb_ms, null, 'no valid response headers ever arrived')
    t.type(failure.timings.connect_ms, 'number')
    // pino's numeric level, or its label once the logger writes labels.
    t.ok(failure.level === 40 || failure.level === 'warn', `a classified origin failure is a warning (level ${String(failure.level)})`)
    const access = await proxy.waitForLog(accessFor(rayOf(res)))
    t.equal(access.status, 520)
    t.equal(access.edge_status, 520)

    // The HTML page tells the same story to a browser.
    const html = await get(`${proxy.url}/page`)
    t.equal(html.status, 520)
    t.match(html.headers['content-type'], /^text\/html/)
    t.match(html.body, UNKNOWN_ERROR_DETAIL[cause])
    t.notMatch(html.body, `127.0.0.1:${originPort}`)
  })
}

t.test('each 520 cause has its own detail', async t => {
  t.equal(details.size, CASES.length, 'every cause was seen')
  t.equal(new Set(details.values()).size, CASES.length, 'no two causes share a detail')
})
