import assert from 'node:assert/strict'
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http'
import { describe, it } from 'node:test'
import {
  type Acceptance,
  judgeResponse,
  REVALIDATION_KEEP_MS,
  type Refusal,
  requestDirectives,
  type Verdict,
} from '../../src/http/policy.js'
import { parseOptions, type RouteConfig } from '../../src/options.js'
import { MemoryStore } from '../../src/store/memory.js'

const NOW = Date.UTC(2026, 0, 15, 12, 0, 0)
const httpDate = (ms: number): string => new Date(ms).toUTCString()

/** The defaults, as the middleware sees them: ttl 60 s, grace 300 s, staleIfError 300 s. */
const BASE: RouteConfig = parseOptions({ store: new MemoryStore() }, () => new MemoryStore())
const route = (over: Partial<RouteConfig> = {}): RouteConfig => ({ ...BASE, ...over })

const ANON = { authorized: false, noStore: false }
const AUTH = { authorized: true, noStore: false }

/** Response headers as an app may set them: res.setHeader accepts arrays and numbers for any field. */
type Headers = Record<string, string | number | readonly string[] | undefined>

function judge(
  headers: Headers,
  opts: { status?: number; req?: typeof ANON; route?: RouteConfig } = {},
): Verdict {
  return judgeResponse(
    opts.status ?? 200,
    headers as OutgoingHttpHeaders,
    opts.req ?? ANON,
    opts.route ?? BASE,
    NOW,
  )
}

function stored(verdict: Verdict): Acceptance {
  assert.equal(verdict.store, true, `expected storage, got ${JSON.stringify(verdict)}`)
  return verdict as Acceptance
}

function refused(verdict: Verdict, reason: string | RegExp, transient = false): Refusal {
  assert.equal(verdict.store, false, `expected a refusal, got ${JSON.stringify(verdict)}`)
  const r = verdict as Refusal
  if (typeof reason === 'string') assert.equal(r.reason, reason)
  else assert.match(r.reason, reason)
  assert.equal(r.transient, transient, `transient for ${r.reason}`)
  return r
}

const fresh = (headers: Headers, r?: RouteConfig): number =>
  stored(judge(headers, r ? { route: r } : {})).freshMs

describe('judgeResponse: storability', () => {
  it('stores a plain 200 with the configured windows', () => {
    const v = stored(judge({ 'content-type': 'text/html' }))
    assert.deepEqual([...v.drop], [])
    assert.deepEqual(v.vary, [])
    assert.equal(v.freshMs, 60_000)
    assert.equal(v.graceMs, 300_000)
    assert.equal(v.errorMs, 300_000)
    assert.equal(v.initialAge, 0)
  })

  it('refuses 5xx without explicit freshness as transient (no hit-for-miss marker)', () => {
    for (const status of [500, 502, 503, 504, 599]) {
      refused(judge({}, { status }), `status ${status}`, true)
      refused(judge({ 'cache-control': 'no-cache="x"' }, { status }), `status ${status}`, true)
    }
    // Even when listed: a failed render on the configured ttl alone is never stored.
    const r = route({ statuses: new Set([200, 500]) })
    refused(judge({}, { status: 500, route: r }), 'status 500', true)
  })

  it('never stores a 5xx, even with explicit freshness (a thrown error keeps the route header)', () => {
    for (const status of [500, 502, 503, 504, 599]) {
      for (const cc of ['max-age=60', 's-maxage=60', 'public']) {
        refused(judge({ 'cache-control': cc }, { status }), `status ${status}`, true)
      }
    }
  })

  it('stores any other final status with explicit freshness (RFC 9111 §3)', () => {
    for (const status of [201, 202, 299, 302, 303, 307, 308, 400, 403, 405, 418, 499]) {
      for (const cc of ['max-age=60', 's-maxage=60', 'public']) {
        stored(judge({ 'cache-control': cc }, { status }))
      }
      stored(judge({ expires: httpDate(NOW + 60_000), date: httpDate(NOW) }, { status }))
    }
    assert.equal(stored(judge({ 'cache-control': 'public' }, { status: 302 })).freshMs, 60_000)
  })

  it('never stores 1xx (not final, RFC 9111 §3)', () => {
    refused(judge({ 'cache-control': 'max-age=60' }, { status: 103 }), 'status 103', true)
  })

  it('refuses, as transient, any response to a request that said no-store (RFC 9111 §5.2.1.5)', () => {
    refused(
      judge({ 'cache-control': 'max-age=60' }, { req: { authorized: false, noStore: true } }),
      'request no-store',
      true,
    )
  })

  it('refuses 206 and 304 as transient, even when the status list includes them', () => {
    // They answer the request's Range or conditions, so they must not mark the resource uncacheable.
    const all = route({ statuses: new Set([200, 206, 304]) })
    refused(judge({}, { status: 206, route: all }), 'status 206', true)
    refused(judge({}, { status: 304, route: all }), 'status 304', true)
    refused(judge({ 'cache-control': 'max-age=60' }, { status: 206 }), 'status 206', true)
  })

  it('without explicit freshness stores only the configured statuses (default 200 203 204 300 301 404 410)', () => {
    for (const status of [200, 203, 204, 300, 301, 404, 410]) stored(judge({}, { status }))
    for (const status of [201, 202, 302, 303, 307, 308, 400, 401, 403, 405, 418]) {
      refused(judge({}, { status }), `status ${status}`)
      refused(judge({ 'cache-control': 'no-cache="x"' }, { status }), `status ${status}`)
    }
    const only200 = route({ statuses: new Set([200]) })
    refused(judge({}, { status: 404, route: only200 }), 'status 404')
    stored(judge({ 'cache-control': 'max-age=5' }, { status: 404, route: only200 }))
    stored(judge({}, { status: 302, route: route({ statuses: new Set([302]) }) }))
  })

  it('refuses no-store (RFC 9111 §5.2.2.3), in any case and on any field line', () => {
    refused(judge({ 'cache-control': 'no-store' }), 'no-store')
    refused(judge({ 'cache-control': 'public, max-age=60, No-Store' }), 'no-store')
    refused(judge({ 'cache-control': ['public', 'max-age=60', 'no-store'] }), 'no-store')
  })

  it('refuses unqualified private (RFC 9111 §5.2.2.7), and private="" which names nothing', () => {
    refused(judge({ 'cache-control': 'private' }), 'private')
    refused(judge({ 'cache-control': 'PRIVATE, max-age=60' }), 'private')
    refused(judge({ 'cache-control': 'private=""' }), 'private')
    refused(judge({ 'cache-control': 'private=", "' }), 'private')
    // Malformed qualified private reads as unqualified.
    refused(judge({ 'cache-control': 'private="x-user, max-age=60' }), 'private')
  })

  it('stores a qualified private="…" without the named fields', () => {
    const v = stored(judge({ 'cache-control': 'private="X-User, x-Session", max-age=60' }))
    assert.deepEqual([...v.drop].sort(), ['x-session', 'x-user'])
    assert.equal(v.freshMs, 60_000)
    assert.deepEqual([...stored(judge({ 'cache-control': 'private=x-user' })).drop], ['x-user'])
  })

  it('refuses unqualified no-cache (RFC 9111 §5.2.2.4): this cache never revalidates', () => {
    refused(judge({ 'cache-control': 'no-cache' }), 'no-cache')
    refused(judge({ 'cache-control': 'public, max-age=600, no-cache' }), 'no-cache')
    refused(judge({ 'cache-control': 'no-cache=""' }), 'no-cache')
  })

  it('stores a qualified no-cache="…" without the named fields', () => {
    const v = stored(judge({ 'cache-control': 'no-cache="x-a, X-B"' }))
    assert.deepEqual([...v.drop].sort(), ['x-a', 'x-b'])
  })

  it('unions the fields of qualified private and no-cache', () => {
    const v = stored(judge({ 'cache-control': ['no-cache="x-a"', 'private="x-b"'] }))
    assert.deepEqual([...v.drop].sort(), ['x-a', 'x-b'])
  })

  it('refuses Set-Cookie unless stripSetCookie, which drops it from the stored copy', () => {
    refused(judge({ 'set-cookie': 'sid=1' }), 'set-cookie')
    refused(
      judge({ 'set-cookie': ['a=1', 'b=2'], 'cache-control': 'public, max-age=60' }),
      'set-cookie',
    )
    const strip = route({ stripSetCookie: true })
    const v = stored(judge({ 'set-cookie': ['a=1', 'b=2'] }, { route: strip }))
    assert.deepEqual([...v.drop], ['set-cookie'])
    // A response without cookies stores nothing extra.
    assert.deepEqual([...stored(judge({}, { route: strip })).drop], [])
  })

  it('refuses Vary: * (RFC 9111 §4.1), alone or in a list', () => {
    refused(judge({ vary: '*' }), 'vary *')
    refused(judge({ vary: 'Accept-Encoding, *' }), 'vary *')
    refused(judge({ vary: ['accept-encoding', '*'] }), 'vary *')
  })

  it("returns the response's Vary names sorted, lower-case and de-duplicated", () => {
    const v = stored(judge({ vary: ['Accept-Language, accept-encoding', 'ACCEPT-ENCODING'] }))
    assert.deepEqual(v.vary, ['accept-encoding', 'accept-language'])
  })

  it('refuses, as transient, an authorized request’s response unless it allows sharing (RFC 9111 §3.5)', () => {
    refused(judge({}, { req: AUTH }), 'authorization', true)
    refused(judge({ 'cache-control': 'max-age=60' }, { req: AUTH }), 'authorization', true)
    refused(
      judge({ 'cache-control': 'proxy-revalidate, max-age=60' }, { req: AUTH }),
      'authorization',
      true,
    )
    for (const cc of [
      'public',
      'public, max-age=60',
      's-maxage=60',
      'must-revalidate, max-age=60',
    ]) {
      stored(judge({ 'cache-control': cc }, { req: AUTH }))
    }
    // The other rules still apply.
    refused(judge({ 'cache-control': 'public, no-store' }, { req: AUTH }), 'no-store')
    refused(judge({ 'cache-control': 'public, private' }, { req: AUTH }), 'private')
  })
})

describe('judgeResponse: freshness lifetime (RFC 9111 §4.2.1)', () => {
  it('uses the configured ttl without any stated lifetime', () => {
    assert.equal(fresh({}), 60_000)
    assert.equal(fresh({}, route({ ttlMs: 5_000 })), 5_000)
  })

  it('max-age replaces ttl, longer or shorter', () => {
    assert.equal(fresh({ 'cache-control': 'max-age=30' }), 30_000)
    assert.equal(fresh({ 'cache-control': 'max-age=3600' }), 3_600_000)
  })

  it('s-maxage beats max-age for a shared cache', () => {
    assert.equal(fresh({ 'cache-control': 'max-age=100, s-maxage=10' }), 10_000)
    assert.equal(fresh({ 'cache-control': 's-maxage=100, max-age=10' }), 100_000)
  })

  it('max-age beats Expires', () => {
    assert.equal(
      fresh({
        'cache-control': 'max-age=30',
        expires: httpDate(NOW + 3_600_000),
        date: httpDate(NOW),
      }),
      30_000,
    )
  })

  it('Expires − Date, using the response Date rather than the local clock', () => {
    assert.equal(fresh({ expires: httpDate(NOW + 120_000), date: httpDate(NOW) }), 120_000)
    assert.equal(fresh({ expires: httpDate(NOW + 90_000), date: httpDate(NOW - 30_000) }), 120_000)
  })

  it('Expires − now when Date is absent or invalid', () => {
    assert.equal(fresh({ expires: httpDate(NOW + 45_000) }), 45_000)
    assert.equal(fresh({ expires: httpDate(NOW + 45_000), date: 'yesterday' }), 45_000)
  })

  it('accepts the obsolete RFC 850 and asctime formats for Expires (RFC 9110 §5.6.7)', () => {
    // 2026-01-15 12:10:00 GMT was a Thursday.
    assert.equal(
      fresh({ expires: 'Thursday, 15-Jan-26 12:10:00 GMT', date: httpDate(NOW) }),
      600_000,
    )
    assert.equal(fresh({ expires: 'Thu Jan 15 12:10:00 2026', date: httpDate(NOW) }), 600_000)
  })

  it('an Expires in the past or equal to Date is stale on arrival', () => {
    refused(judge({ expires: httpDate(NOW - 1000), date: httpDate(NOW) }), 'stale on arrival')
    refused(judge({ expires: httpDate(NOW), date: httpDate(NOW) }), 'stale on arrival')
  })

  it('an invalid Expires means already expired (RFC 9111 §5.3), even values Date.parse accepts', () => {
    for (const expires of [
      '0',
      '-1',
      '1',
      '3000',
      '12/25/2030',
      '2030-01-01',
      'tomorrow',
      'Thu, 01 Jan 2099 00:00:00 PST',
      '',
    ]) {
      refused(judge({ expires }), 'stale on arrival', false)
    }
    // Two Expires field lines: invalid as one value.
    refused(
      judge({ expires: [httpDate(NOW + 60_000), httpDate(NOW + 120_000)] }),
      'stale on arrival',
    )
  })

  it('invalid max-age or s-maxage is invalid freshness information: stale (RFC 9111 §4.2.1)', () => {
    for (const cc of [
      'max-age=-1',
      'max-age=soon',
      'max-age',
      'max-age=1.5',
      's-maxage=x, max-age=60',
      'max-age="60',
    ]) {
      refused(
        judge({ 'cache-control': cc, expires: httpDate(NOW + 3_600_000) }),
        'stale on arrival',
      )
    }
  })

  it('max-age=0 and s-maxage=0 are stale on arrival, not transient (they leave a hit-for-miss marker)', () => {
    refused(judge({ 'cache-control': 'max-age=0' }), 'stale on arrival', false)
    refused(judge({ 'cache-control': 's-maxage=0, max-age=60' }), 'stale on arrival', false)
  })

  it('caps huge lifetimes at 2^31 seconds', () => {
    assert.equal(fresh({ 'cache-control': 'max-age=999999999999999999999' }), 2 ** 31 * 1000)
  })

  it('with responseTtl: false a stated lifetime can only shorten ttl', () => {
    const r = route({ responseTtl: false, ttlMs: 60_000 })
    assert.equal(fresh({ 'cache-control': 'max-age=600' }, r), 60_000)
    assert.equal(fresh({ 'cache-control': 'max-age=10' }, r), 10_000)
    assert.equal(fresh({ expires: httpDate(NOW + 3_600_000), date: httpDate(NOW) }, r), 60_000)
    assert.equal(fresh({ expires: httpDate(NOW + 20_000), date: httpDate(NOW) }, r), 20_000)
    assert.equal(fresh({}, r), 60_000)
    refused(judge({ 'cache-control': 'max-age=0' }, { route: r }), 'stale on arrival')
  })
})

describe('judgeResponse: Age (RFC 9111 §4.2.3, §5.1)', () => {
  it('subtracts the Age header from the freshness lifetime and reports it', () => {
    const v = stored(judge({ 'cache-control': 'max-age=60', age: '10' }))
    assert.equal(v.freshMs, 50_000)
    assert.equal(v.initialAge, 10)
  })

  it('subtracts it from Expires − Date and from the configured ttl too', () => {
    assert.equal(
      fresh({ expires: httpDate(NOW + 100_000), date: httpDate(NOW), age: '40' }),
      60_000,
    )
    assert.equal(fresh({ age: '15' }), 45_000)
  })

  it('a response as old as its lifetime is stale on arrival', () => {
    refused(judge({ 'cache-control': 'max-age=60', age: '60' }), 'stale on arrival')
    refused(judge({ 'cache-control': 'max-age=60', age: '61' }), 'stale on arrival')
    refused(judge({ age: '3600' }), 'stale on arrival')
  })

  it('accepts a numeric Age (res.setHeader("age", 10))', () => {
    assert.equal(stored(judge({ 'cache-control': 'max-age=60', age: 10 })).initialAge, 10)
  })

  it('ignores an invalid Age (age_value is 0 when not available)', () => {
    for (const age of ['age=50', '-5', '1.5', 'abc', '', ' ', '10s', '0x10']) {
      const v = stored(judge({ 'cache-control': 'max-age=60', age }))
      assert.equal(v.initialAge, 0, JSON.stringify(age))
      assert.equal(v.freshMs, 60_000)
    }
  })

  it('uses the first of repeated Age values', () => {
    assert.equal(stored(judge({ 'cache-control': 'max-age=60', age: ['5', '30'] })).initialAge, 5)
  })

  it('caps a huge Age at 2^31', () => {
    const v = judge({ 'cache-control': 'max-age=99999999999999', age: '99999999999999' })
    refused(v, 'stale on arrival')
    assert.equal(
      stored(judge({ 'cache-control': 'max-age=99999999999999', age: '2147483647' })).freshMs,
      1000,
    )
    assert.equal(
      stored(judge({ 'cache-control': 'max-age=99999999999999', age: '2147483647' })).initialAge,
      2147483647,
    )
  })
})

describe('judgeResponse: stale windows (RFC 5861, RFC 9111 §4.2.4)', () => {
  it('stale-while-revalidate sets the grace window and stale-if-error the error window', () => {
    const v = stored(
      judge({ 'cache-control': 'max-age=60, stale-while-revalidate=30, stale-if-error=600' }),
    )
    assert.equal(v.graceMs, 30_000)
    assert.equal(v.errorMs, 600_000)
  })

  it('each one alone leaves the other at the configured value', () => {
    const r = route({ graceMs: 11_000, staleIfErrorMs: 22_000 })
    const swr = stored(judge({ 'cache-control': 'stale-while-revalidate=5' }, { route: r }))
    assert.deepEqual([swr.graceMs, swr.errorMs], [5_000, 22_000])
    const sie = stored(judge({ 'cache-control': 'stale-if-error=7' }, { route: r }))
    assert.deepEqual([sie.graceMs, sie.errorMs], [11_000, 7_000])
  })

  it('=0 turns a window off', () => {
    const v = stored(judge({ 'cache-control': 'stale-while-revalidate=0, stale-if-error=0' }))
    assert.deepEqual([v.graceMs, v.errorMs], [0, 0])
  })

  it('must-revalidate, proxy-revalidate and s-maxage forbid stale serving unless granted', () => {
    for (const cc of [
      'must-revalidate',
      'proxy-revalidate',
      's-maxage=60',
      'max-age=60, MUST-REVALIDATE',
    ]) {
      const v = stored(judge({ 'cache-control': cc }))
      assert.deepEqual([v.graceMs, v.errorMs], [0, 0], cc)
    }
  })

  it('an explicit stale-while-revalidate / stale-if-error still grants them under those', () => {
    const v = stored(
      judge({
        'cache-control':
          'must-revalidate, max-age=60, stale-while-revalidate=30, stale-if-error=90',
      }),
    )
    assert.deepEqual([v.graceMs, v.errorMs], [30_000, 90_000])
    const s = stored(judge({ 'cache-control': 's-maxage=60, stale-if-error=90' }))
    assert.deepEqual([s.graceMs, s.errorMs], [0, 90_000])
  })

  it('an invalid window value falls back: to the configured value, or 0 under must-revalidate', () => {
    const v = stored(judge({ 'cache-control': 'stale-while-revalidate=soon, stale-if-error=-1' }))
    assert.deepEqual([v.graceMs, v.errorMs], [300_000, 300_000])
    const m = stored(judge({ 'cache-control': 'must-revalidate, stale-while-revalidate=soon' }))
    assert.deepEqual([m.graceMs, m.errorMs], [0, 0])
  })
})

describe('requestDirectives (RFC 9111 §5.2.1, §5.4)', () => {
  const rd = (headers: IncomingHttpHeaders) => requestDirectives(headers)

  it('is all false for a plain request', () => {
    assert.deepEqual(rd({}), { noCache: false, noStore: false, onlyIfCached: false })
  })

  it('no-cache and max-age=0 ask for a fresh render; other max-age values do not', () => {
    assert.equal(rd({ 'cache-control': 'no-cache' }).noCache, true)
    assert.equal(rd({ 'cache-control': 'No-Cache' }).noCache, true)
    assert.equal(rd({ 'cache-control': 'max-age=0' }).noCache, true)
    assert.equal(rd({ 'cache-control': 'max-age=000' }).noCache, true)
    assert.equal(rd({ 'cache-control': 'max-age=5' }).noCache, false)
    assert.equal(rd({ 'cache-control': 'max-age=-0' }).noCache, false)
    assert.equal(rd({ 'cache-control': 'max-stale=0' }).noCache, false)
  })

  it('Pragma: no-cache counts only without Cache-Control', () => {
    assert.equal(rd({ pragma: 'no-cache' }).noCache, true)
    assert.equal(rd({ pragma: 'No-Cache' }).noCache, true)
    assert.equal(rd({ pragma: 'x-ext, no-cache' }).noCache, true)
    assert.equal(rd({ pragma: 'no-cache-please' }).noCache, false)
    assert.equal(rd({ pragma: 'x-no-cache' }).noCache, false)
    assert.equal(rd({ pragma: 'no-cache', 'cache-control': 'max-age=60' }).noCache, false)
    assert.equal(rd({ pragma: 'no-cache', 'cache-control': '' }).noCache, false)
  })

  it('no-store and only-if-cached', () => {
    assert.deepEqual(rd({ 'cache-control': 'NO-STORE' }), {
      noCache: false,
      noStore: true,
      onlyIfCached: false,
    })
    assert.deepEqual(rd({ 'cache-control': 'only-if-cached' }), {
      noCache: false,
      noStore: false,
      onlyIfCached: true,
    })
    assert.deepEqual(rd({ 'cache-control': 'no-cache, no-store, only-if-cached' }), {
      noCache: true,
      noStore: true,
      onlyIfCached: true,
    })
  })
})

describe('judgeResponse: responses that need validation (RFC 9111 §4.3)', () => {
  const etag = { etag: '"v1"' }
  const lm = { 'last-modified': httpDate(NOW - 3_600_000) }
  /** As judge(), for a cache that revalidates. */
  const judge = (headers: Headers, opts: { route?: RouteConfig } = {}): Verdict =>
    judgeResponse(200, headers as OutgoingHttpHeaders, ANON, opts.route ?? BASE, NOW, {
      revalidate: true,
    })

  it('without revalidate, refuses them as before and reports nothing validatable', () => {
    const plain = (h: Headers) => judgeResponse(200, h as OutgoingHttpHeaders, ANON, BASE, NOW)
    refused(plain({ 'cache-control': 'no-cache', ...etag }), 'no-cache')
    refused(plain({ 'cache-control': 'max-age=0', ...etag }), 'stale on arrival')
    const v = stored(plain({ 'cache-control': 'max-age=60', ...etag }))
    assert.deepEqual([v.validatable, v.keepMs], [false, 300_000])
  })

  it('stores an unqualified no-cache with a validator: fresh for 0 ms, never served stale', () => {
    for (const validator of [etag, lm]) {
      const v = stored(judge({ 'cache-control': 'no-cache, max-age=600', ...validator }))
      assert.equal(v.freshMs, 0)
      assert.deepEqual([v.graceMs, v.errorMs], [0, 0])
      assert.equal(v.mustRevalidate, true)
      assert.equal(v.validatable, true)
      assert.equal(v.keepMs, REVALIDATION_KEEP_MS)
    }
    // stale-while-revalidate cannot apply to no-cache; an explicit stale-if-error still does.
    const s = stored(
      judge({
        'cache-control': 'no-cache, stale-while-revalidate=60, stale-if-error=90',
        ...etag,
      }),
    )
    assert.deepEqual([s.graceMs, s.errorMs, s.keepMs], [0, 90_000, REVALIDATION_KEEP_MS])
  })

  it('still refuses no-cache without a validator: a full fetch on every use gains nothing', () => {
    refused(judge({ 'cache-control': 'no-cache' }), 'no-cache')
    // An ETag in a header that is not ETag does not count.
    refused(judge({ 'cache-control': 'no-cache', 'x-etag': '"v1"' }), 'no-cache')
  })

  it('stores max-age=0 (and any stale-on-arrival response) with a validator, without configured grace', () => {
    for (const headers of [
      { 'cache-control': 'max-age=0', ...etag },
      { 'cache-control': 'public, max-age=0', ...lm },
      { expires: '0', ...etag },
      { 'cache-control': 'max-age=10', age: '20', ...etag },
    ]) {
      const v = stored(judge(headers))
      assert.equal(v.freshMs, 0, JSON.stringify(headers))
      assert.equal(v.graceMs, 0)
      assert.equal(v.errorMs, 300_000, 'a copy stored stale may still replace an error')
      assert.equal(v.mustRevalidate, false)
      assert.equal(v.validatable, true)
    }
    // Its own stale-while-revalidate is honoured.
    const w = stored(judge({ 'cache-control': 'max-age=0, stale-while-revalidate=5', ...etag }))
    assert.equal(w.graceMs, 5_000)
  })

  it('marks must-revalidate, proxy-revalidate and s-maxage as mustRevalidate', () => {
    for (const cc of ['max-age=60, must-revalidate', 'max-age=60, proxy-revalidate', 's-maxage=60'])
      assert.equal(stored(judge({ 'cache-control': cc })).mustRevalidate, true, cc)
    assert.equal(stored(judge({ 'cache-control': 'max-age=60' })).mustRevalidate, false)
  })

  it('keeps a validatable copy for revalidation beyond its stale windows', () => {
    const plain = stored(judge({ 'cache-control': 'max-age=60' }))
    assert.equal(plain.validatable, false)
    assert.equal(plain.keepMs, 300_000)
    const zero = route({ graceMs: 0, staleIfErrorMs: 0 })
    assert.equal(stored(judge({ 'cache-control': 'max-age=60' }, { route: zero })).keepMs, 0)
    const v = stored(judge({ 'cache-control': 'max-age=60', ...etag }, { route: zero }))
    assert.deepEqual([v.validatable, v.keepMs], [true, REVALIDATION_KEEP_MS])
    const long = route({ graceMs: 3_600_000 })
    assert.equal(stored(judge({ ...etag }, { route: long })).keepMs, 3_600_000)
  })
})

describe('judgeResponse: stale windows with grace 0 (RFC 5861)', () => {
  const zero = route({ graceMs: 0, staleIfErrorMs: 0 })

  it("the response's own stale-while-revalidate / stale-if-error open the windows", () => {
    const v = stored(
      judge(
        { 'cache-control': 'max-age=1, stale-while-revalidate=4, stale-if-error=9' },
        { route: zero },
      ),
    )
    assert.deepEqual([v.graceMs, v.errorMs], [4_000, 9_000])
  })

  it('they replace a larger configured window too: the origin states what it tolerates', () => {
    const v = stored(judge({ 'cache-control': 'max-age=1, stale-while-revalidate=4' }))
    assert.equal(v.graceMs, 4_000)
  })
})

describe('judgeResponse: CDN-Cache-Control (RFC 9213)', () => {
  it('a valid targeted field replaces Cache-Control and Expires', () => {
    const v = stored(judge({ 'cdn-cache-control': 'max-age=600', 'cache-control': 'max-age=1' }))
    assert.equal(v.freshMs, 600_000)
    assert.equal(
      stored(judge({ 'cdn-cache-control': 'max-age=1', 'cache-control': 'max-age=3600' })).freshMs,
      1_000,
    )
    stored(judge({ 'cdn-cache-control': 'max-age=600', 'cache-control': 'no-store' }))
    refused(judge({ 'cdn-cache-control': 'no-store', 'cache-control': 'max-age=600' }), 'no-store')
    refused(judge({ 'cdn-cache-control': 'private', 'cache-control': 'max-age=600' }), 'private')
    refused(judge({ 'cdn-cache-control': 'no-cache', 'cache-control': 'max-age=600' }), 'no-cache')
    // Expires is ignored under a targeted field: max-age=0 stays stale.
    refused(
      judge({
        'cdn-cache-control': 'max-age=0',
        expires: httpDate(NOW + 10_000_000),
        date: httpDate(NOW),
      }),
      'stale on arrival',
    )
  })

  it('Age counts against the targeted lifetime', () => {
    refused(judge({ 'cdn-cache-control': 'max-age=3600', age: '7200' }), 'stale on arrival')
  })

  it('an invalid targeted field is ignored: Cache-Control applies', () => {
    for (const cdn of ['max-age=10000, &&&&&', 'max-age="10000"', 'max-age=1.5', 'max-age=-1'])
      refused(judge({ 'cdn-cache-control': cdn, 'cache-control': 'no-store' }), 'no-store', false)
  })

  it('can be turned off, or pointed at another field', () => {
    const headers = { 'cdn-cache-control': 'no-store', 'x-my-cc': 'max-age=5' }
    const off = judgeResponse(200, headers, ANON, BASE, NOW, { targeted: [] })
    assert.equal(stored(off).freshMs, 60_000)
    const other = judgeResponse(200, headers, ANON, BASE, NOW, {
      targeted: ['x-my-cc', 'cdn-cache-control'],
    })
    assert.equal(stored(other).freshMs, 5_000)
  })
})
