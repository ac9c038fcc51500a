/**
 * The random input of the property test: an app (cache options and a few routes, each with its own
 * handler behaviour) and the traffic it gets (batches of concurrent requests, clock jumps).
 */
import fc from 'fast-check'

/** How a handler writes its response. */
export const MODES = [
  'send', // res.status().set().send(body)
  'writeHead', // res.writeHead(status, headers); res.end(body)
  'writeHeadRaw', // res.writeHead(status, [name, value, …]); res.end(body)
  'chunks', // res.write(a); later res.write(b); res.end(c)
  'flush', // res.flushHeaders(); later res.end(body)
  'pipe', // a Readable piped into res
  'throw', // throws (sync) or next(err) (after a delay): Express answers 500
  'destroy', // writes part of the body, then res.destroy()
  'shortLength', // declares Content-Length for the whole body, writes only part of it, ends
] as const
export type Mode = (typeof MODES)[number]
const WELL_BEHAVED = ['send', 'writeHead', 'chunks', 'flush', 'pipe'] as const satisfies Mode[]

export const STATUSES = [200, 203, 204, 301, 302, 304, 404, 500, 503] as const

export const RESPONSE_DIRECTIVES = [
  'public',
  'private',
  'no-store',
  'no-cache',
  'max-age=60',
  'max-age=0',
  's-maxage=30',
  'must-revalidate',
  'stale-while-revalidate=100',
  'stale-if-error=600',
] as const

export interface RouteSpec {
  /** Status of the first render. */
  readonly status: number
  /** Status of every later render (a resource that starts failing, for stale-if-error). */
  readonly later?: number
  readonly mode: Mode
  readonly cacheControl?: string
  readonly vary?: string
  readonly setCookie?: true
  readonly etag?: true
  readonly lastModified?: true
  /** Milliseconds before the handler starts answering. */
  readonly delayMs: number
  /** Intended body length in bytes (the length marker the body starts with). */
  readonly size: number
}

/** Cookie headers: a session, another session, analytics-only ones (not a credential), a mix. */
export const COOKIES = [
  'sid=alice',
  'sid=bob',
  'theme=dark',
  '_ga=GA1.1.42',
  '_ga=GA1.1.42; _gid=GA1.1.7',
  'sid=alice; _ga=GA1.1.42',
] as const
export const AUTHORIZATIONS = ['Bearer alice', 'Bearer bob'] as const
export const ACCEPTS = ['text/html', 'application/json'] as const
/** Routes answer with ETag `"e<route index>"`, so some of these match and some do not. */
export const IF_NONE_MATCH = ['*', '"e0"', 'W/"e0"', '"e1"', '"zz"', '"zz", "e0"'] as const
/** After the routes' Last-Modified (a match), and before it. */
export const IF_MODIFIED_SINCE = [
  'Sat, 01 Jan 2022 00:00:00 GMT',
  'Thu, 01 Jan 1970 00:00:01 GMT',
] as const
export const LAST_MODIFIED = 'Wed, 01 Jan 2020 00:00:00 GMT'
export const REQUEST_DIRECTIVES = ['no-cache', 'max-age=0', 'only-if-cached', 'no-store'] as const

export interface RequestSpec {
  readonly route: number
  readonly method: 'GET' | 'HEAD' | 'POST'
  readonly cookie?: string
  readonly authorization?: string
  readonly accept?: string
  readonly ifNoneMatch?: string
  readonly ifModifiedSince?: string
  readonly range?: string
  readonly cacheControl?: string
}

export type Step =
  /** Requests sent at once; `settle` waits for the cache's background writes afterwards. */
  | { readonly kind: 'batch'; readonly requests: readonly RequestSpec[]; readonly settle: boolean }
  /** Moves the middleware's clock (Date.now) forward, past freshness or grace windows. */
  | { readonly kind: 'tick'; readonly seconds: number }

export interface CacheOptionsSpec {
  readonly stripSetCookie?: true
  readonly honorClientNoCache?: true
  readonly sessionCookies?: readonly string[]
  readonly maxBodySize?: number
}

export interface Scenario {
  readonly options: CacheOptionsSpec
  readonly routes: readonly RouteSpec[]
  readonly steps: readonly Step[]
}

const T = fc.constant(true as const)

/** `arb` in about `percent` % of cases, else absent; shrinks towards absent. */
function sometimes<V>(percent: number, arb: fc.Arbitrary<V>): fc.Arbitrary<V | undefined> {
  return fc.oneof(
    { withCrossShrink: true },
    { weight: 100 - percent, arbitrary: fc.constant(undefined) },
    { weight: percent, arbitrary: arb },
  )
}

/** Drops absent fields, so counterexamples print only what a case has. */
function present<O extends object>(o: O): O {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as O
}

function routeArb(): fc.Arbitrary<RouteSpec> {
  return fc
    .record({
      status: fc.oneof(
        { weight: 2, arbitrary: fc.constant(200) },
        { weight: 1, arbitrary: fc.constantFrom(...STATUSES) },
      ),
      later: sometimes(25, fc.constantFrom(...STATUSES)),
      // Well-behaved writers more often than failing ones, so entries get stored and served.
      mode: fc.oneof(
        { weight: 2, arbitrary: fc.constantFrom(...WELL_BEHAVED) },
        { weight: 1, arbitrary: fc.constantFrom(...MODES) },
      ),
      cacheControl: sometimes(
        50,
        fc
          .subarray([...RESPONSE_DIRECTIVES], { minLength: 1, maxLength: 2 })
          .map((d) => d.join(', ')),
      ),
      vary: sometimes(30, fc.constantFrom('Accept', 'Cookie', 'Accept, Cookie', '*')),
      setCookie: sometimes(15, T),
      etag: sometimes(50, T),
      lastModified: sometimes(30, T),
      delayMs: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 30 })),
      size: fc.integer({ min: 80, max: 400 }),
    })
    .map(present)
}

/** Most routes a scenario has; a request's `route` is taken modulo the scenario's route count. */
export const MAX_ROUTES = 3

function requestArb(): fc.Arbitrary<RequestSpec> {
  return fc
    .record({
      route: fc.integer({ min: 0, max: MAX_ROUTES - 1 }),
      method: fc.oneof(
        { weight: 6, arbitrary: fc.constant('GET' as const) },
        { weight: 2, arbitrary: fc.constant('HEAD' as const) },
        { weight: 1, arbitrary: fc.constant('POST' as const) },
      ),
      cookie: sometimes(25, fc.constantFrom(...COOKIES)),
      authorization: sometimes(12, fc.constantFrom(...AUTHORIZATIONS)),
      accept: sometimes(30, fc.constantFrom(...ACCEPTS)),
      ifNoneMatch: sometimes(25, fc.constantFrom(...IF_NONE_MATCH)),
      ifModifiedSince: sometimes(10, fc.constantFrom(...IF_MODIFIED_SINCE)),
      range: sometimes(10, fc.constant('bytes=0-9')),
      cacheControl: sometimes(15, fc.constantFrom(...REQUEST_DIRECTIVES)),
    })
    .map(present)
}

function stepArb(): fc.Arbitrary<Step> {
  return fc.oneof(
    {
      weight: 6,
      arbitrary: fc.record({
        kind: fc.constant('batch' as const),
        requests: fc.array(requestArb(), { minLength: 1, maxLength: 4 }),
        settle: fc.boolean(),
      }),
    },
    {
      weight: 2,
      // 30 s: still fresh (default ttl 60 s, max-age=60), past s-maxage=30. 70 s: stale, within
      // grace. 400 s: past the default grace and stale-if-error windows.
      arbitrary: fc.record({
        kind: fc.constant('tick' as const),
        seconds: fc.oneof(
          { weight: 3, arbitrary: fc.constant(70) },
          { weight: 1, arbitrary: fc.constantFrom(30, 400) },
        ),
      }),
    },
  )
}

// No `chain` (routes first, then requests naming them): independent parts shrink much better.
export function scenarioArb(): fc.Arbitrary<Scenario> {
  return fc.record({
    options: fc
      .record({
        stripSetCookie: sometimes(25, T),
        honorClientNoCache: sometimes(25, T),
        sessionCookies: sometimes(20, fc.constant(['sid'])),
        maxBodySize: sometimes(20, fc.constant(256)),
      })
      .map(present),
    routes: fc.array(routeArb(), { minLength: 1, maxLength: MAX_ROUTES }),
    steps: fc.array(stepArb(), { minLength: 1, maxLength: 8 }),
  })
}
