import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { Writable } from 'node:stream'
import { describe, it } from 'node:test'
import { metrics } from '@opentelemetry/api'
import type { Request } from 'express'
import pino from 'pino'
import { ConfigError } from '../../src/config-error.js'
import type { Duration } from '../../src/duration.js'
import * as exported from '../../src/index.js'
import {
  type CacheConfig,
  DEFAULT_STATUSES,
  defaultLogger,
  parseOptions,
  parseRouteOptions,
  type ResponseCacheOptions,
  type RouteOptions,
} from '../../src/options.js'
import { responseCache } from '../../src/response-cache.js'
import { MemcachedStore } from '../../src/store/memcached.js'
import { MemoryStore } from '../../src/store/memory.js'

const makeStore = (): MemoryStore => new MemoryStore()
const parse = (options: ResponseCacheOptions): CacheConfig => parseOptions(options, makeStore)
const parseAny = (options: unknown): CacheConfig =>
  parseOptions(options as ResponseCacheOptions, makeStore)
const route = (
  options: unknown,
  base: CacheConfig = parse({}),
): ReturnType<typeof parseRouteOptions> => parseRouteOptions(options as RouteOptions, base)

/**
 * Asserts a ConfigError (a TypeError with code EFTC_OPTION) whose message starts with the library
 * name and matches every pattern.
 */
function rejects(fn: () => unknown, ...patterns: RegExp[]): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`)
    assert.ok(err instanceof TypeError)
    assert.equal(err.code, 'EFTC_OPTION')
    assert.equal(err.name, 'ConfigError')
    assert.match(err.message, /^express-ft-cache: /)
    for (const p of patterns) assert.match(err.message, p)
    return true
  })
}

describe('parseOptions: defaults', () => {
  it('applies every default', () => {
    const c = parse({})
    assert.equal(c.enabled, true)
    assert.equal(c.ttlMs, 60_000)
    assert.equal(c.graceMs, 300_000)
    assert.equal(c.staleIfErrorMs, 300_000)
    assert.equal(c.lockTtlS, 10)
    assert.equal(c.waitTimeoutMs, 5_000)
    assert.deepEqual(c.vary, [])
    assert.equal(c.key, undefined)
    assert.deepEqual([...c.statuses].sort(), [...DEFAULT_STATUSES].sort())
    assert.equal(c.maxBodySize, 1_048_576)
    assert.equal(c.stripSetCookie, false)
    assert.equal(c.responseTtl, true)
    assert.equal(c.hitForMissMs, 120_000)
    assert.equal(c.timeoutMs, 100)
    assert.equal(c.pollIntervalMs, 100)
    assert.equal(c.prefix, 'eftc')
    assert.equal(c.logger, defaultLogger())
    assert.equal(c.logger.level, 'warn')
    assert.equal(c.logger.bindings().name, 'express-ft-cache')
    assert.equal(c.debugHeaders, true)
    assert.equal(c.cacheName, 'express-ft-cache')
    assert.equal(c.honorClientNoCache, false)
    assert.deepEqual(c.sessionCookies, [])
    assert.equal(c.invalidateOnUnsafe, true)
    assert.ok(c.store instanceof MemoryStore)
    assert.equal(c.ownsStore, true)
    assert.equal(c.cookies, 'private')
    assert.deepEqual(c.ignoredCookies, ['_ga', '_ga_*', '_gid', '_gat*', '_fbp', '_hj*', '__utm*'])
    assert.equal(c.tags, undefined)
    assert.deepEqual([...c.perRequestHeaders].sort(), [
      'request-id',
      'server-timing',
      'traceparent',
      'tracestate',
      'x-correlation-id',
      'x-request-id',
      'x-response-time',
    ])
    assert.equal(c.hotCache, undefined)
    assert.equal(c.keepSurrogateKey, false)
    assert.equal(c.invalidationPollMs, 100)
    assert.equal(c.meterProvider, undefined)
  })

  it('returns a frozen configuration', () => {
    const c = parse({ vary: ['accept'], sessionCookies: ['sid'] })
    assert.ok(Object.isFrozen(c))
    assert.ok(Object.isFrozen(c.vary))
    assert.ok(Object.isFrozen(c.sessionCookies))
  })

  it('treats undefined values like omitted options', () => {
    let made = 0
    const c = parseOptions(
      {
        ttl: undefined,
        grace: undefined,
        staleIfError: undefined,
        lockTtl: undefined,
        statuses: undefined,
        store: undefined,
        prefix: undefined,
        debugHeaders: undefined,
        sessionCookies: undefined,
        timeout: undefined,
      },
      () => {
        made++
        return new MemoryStore()
      },
    )
    assert.equal(made, 1)
    assert.equal(c.ownsStore, true)
    assert.equal(c.ttlMs, 60_000)
    assert.equal(c.graceMs, 300_000)
    assert.equal(c.lockTtlS, 10)
    assert.equal(c.prefix, 'eftc')
    assert.equal(c.debugHeaders, true)
    assert.equal(c.timeoutMs, 100)
  })

  it('uses the given store and never makes the default one', () => {
    const store = new MemoryStore()
    const c = parseOptions({ store }, () => assert.fail('the default store must not be made'))
    assert.equal(c.store, store)
    assert.equal(c.ownsStore, false)
  })

  it('does not make the default store when the options are invalid', () => {
    assert.throws(
      () => parseOptions({ ttl: -1 }, () => assert.fail('made a store for invalid options')),
      TypeError,
    )
    assert.throws(
      () => parseOptions({ prefix: 'a b' }, () => assert.fail('made a store for invalid options')),
      TypeError,
    )
  })
})

describe('parseOptions: the caller’s object', () => {
  it('is not mutated', () => {
    const options = {
      ttl: '30s' as const,
      vary: ['Accept-Language'],
      sessionCookies: ['SID'],
      grace: undefined,
    }
    const snapshot = structuredClone(options)
    parse(options)
    assert.deepEqual(options, snapshot)
    assert.ok('grace' in options)
  })

  it('may be frozen, deeply', () => {
    const options = Object.freeze({
      ttl: '30s',
      vary: Object.freeze(['accept-language']),
      statuses: Object.freeze([200, 404]),
      sessionCookies: Object.freeze(['sid']),
      store: new MemoryStore(),
    })
    const c = parse(options)
    assert.equal(c.ttlMs, 30_000)
    assert.deepEqual(c.vary, ['accept-language'])
  })

  it('may be reused for several caches, with the same result', () => {
    const options = { ttl: '5m', prefix: 'shared' } as const
    assert.deepEqual({ ...parse(options), store: null }, { ...parse(options), store: null })
  })
})

describe('parseOptions: durations', () => {
  it('accepts seconds as numbers and strings with ms, s, m, h, d', () => {
    const cases: [ResponseCacheOptions['ttl'], number][] = [
      ['250ms', 250],
      ['30s', 30_000],
      ['5m', 300_000],
      ['1h', 3_600_000],
      ['1d', 86_400_000],
      ['1.5s', 1_500],
      [' 30s ' as Duration, 30_000],
      ['30' as Duration, 30_000],
      ['5 minutes', 300_000],
      ['1 hour', 3_600_000],
      ['30 seconds', 30_000],
      ['2 days', 172_800_000],
      ['250 ms', 250],
      ['1.5 hours', 5_400_000],
      ['1 min', 60_000],
      ['5 mins', 300_000],
      ['5min', 300_000],
      ['10 sec', 10_000],
      ['2 hr', 7_200_000],
      ['1 week', 604_800_000],
      [0, 0],
      [1.5, 1_500],
      [90, 90_000],
    ]
    for (const [ttl, expected] of cases) assert.equal(parse({ ttl }).ttlMs, expected, String(ttl))
  })

  it('applies to every duration option', () => {
    const c = parse({
      grace: '2m',
      staleIfError: '10m',
      lockTtl: '30s',
      waitTimeout: '250ms',
      hitForMiss: '1m',
      timeout: '250ms',
      pollInterval: '50ms',
    })
    assert.equal(c.graceMs, 120_000)
    assert.equal(c.staleIfErrorMs, 600_000)
    assert.equal(c.lockTtlS, 30)
    assert.equal(c.waitTimeoutMs, 250)
    assert.equal(c.hitForMissMs, 60_000)
    assert.equal(c.timeoutMs, 250)
    assert.equal(c.pollIntervalMs, 50)
  })

  it('rejects a negative ttl, naming the option and showing the accepted forms', () => {
    rejects(
      () => parse({ ttl: -1 }),
      /`ttl` must be a non-negative number of seconds/,
      /'250ms', '30s', '5m'/,
      /got -1/,
    )
    rejects(() => parse({ ttl: '-5s' }), /`ttl`/, /got "-5s"/)
  })

  it("rejects typos such as '5 minuts', and non-numbers", () => {
    for (const bad of ['5 minuts', '5M', '5 Minutes', '5 mo', '5 years']) {
      rejects(() => parseAny({ ttl: bad }), /`ttl` has an unknown unit/, /Units: ms, s\/sec/)
    }
    rejects(() => parseAny({ ttl: '5 minuts' }), /Did you mean "5 minutes"\?/)
    for (const bad of ['fast', '', '1e3', '.5s', '5s5', '5 m s', '1,5s']) {
      rejects(
        () => parseAny({ ttl: bad }),
        /`ttl` must be a non-negative number of seconds or a string such as/,
        new RegExp(`got ${JSON.stringify(bad).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`),
      )
    }
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, true, {}, [], null]) {
      rejects(() => parseAny({ ttl: bad }), /`ttl` must be a non-negative number/)
    }
  })

  it('names the option that is wrong', () => {
    for (const name of [
      'grace',
      'staleIfError',
      'lockTtl',
      'waitTimeout',
      'hitForMiss',
      'timeout',
      'pollInterval',
    ]) {
      rejects(
        () => parseAny({ [name]: 'soon' }),
        new RegExp(`\`${name}\` must be a non-negative number`),
      )
    }
  })

  it('keeps staleIfError independent of grace (RFC 9111 §4.2.4: stale beats an error page)', () => {
    assert.equal(parse({ grace: 42 }).staleIfErrorMs, 300_000)
    assert.equal(parse({ grace: 0 }).staleIfErrorMs, 300_000)
    assert.equal(parse({ grace: 42, staleIfError: 7 }).staleIfErrorMs, 7_000)
    assert.equal(parse({ staleIfError: 7 }).graceMs, 300_000)
  })

  it('rejects a lockTtl under 2 seconds, rounding others up to whole seconds', () => {
    for (const lockTtl of [0, 1, 1.9, '1500ms', '1s'] as Duration[]) {
      rejects(() => parse({ lockTtl }), /`lockTtl` must be at least 2 seconds/, /memcached/)
    }
    assert.equal(parse({ lockTtl: 2 }).lockTtlS, 2)
    assert.equal(parse({ lockTtl: '2500ms' }).lockTtlS, 3)
  })

  it('keeps ttl plus grace or staleIfError within memcached’s 30 days', () => {
    rejects(() => parse({ ttl: '29d', grace: '2d' }), /within 30 days/)
    rejects(() => parse({ ttl: '1d', staleIfError: '30d' }), /within 30 days/)
    assert.equal(parse({ ttl: '25d', grace: '5d' }).ttlMs, 25 * 86_400_000)
  })

  it('rejects a timeout under 1ms and a pollInterval under 5ms', () => {
    rejects(() => parse({ timeout: 0 }), /`timeout` must be at least 1ms/)
    rejects(() => parse({ pollInterval: '4ms' }), /`pollInterval` must be at least 5ms/)
  })
})

describe('parseOptions: unknown options', () => {
  it('suggests `ttl` for tl, TTL and tll', () => {
    for (const name of ['tl', 'TTL', 'tll', 'Ttl', 'ttls']) {
      rejects(
        () => parseAny({ [name]: 60 }),
        new RegExp(`unknown option \`${name}\` in responseCache\\(\\)\\. Did you mean \`ttl\`\\?`),
      )
    }
  })

  it('suggests the nearest option for other typos', () => {
    rejects(() => parseAny({ grase: 10 }), /Did you mean `grace`\?/)
    rejects(() => parseAny({ sessionCookie: ['sid'] }), /Did you mean `sessionCookies`\?/)
    rejects(() => parseAny({ stalIfError: 10 }), /Did you mean `staleIfError`\?/)
  })

  it('lists the known options when nothing is close', () => {
    rejects(
      () => parseAny({ somethingElseEntirely: 1 }),
      /unknown option `somethingElseEntirely`/,
      /Known options: enabled, ttl, grace/,
    )
  })

  it('rejects an unknown option even when its value is undefined', () => {
    rejects(() => parseAny({ tl: undefined }), /Did you mean `ttl`\?/)
  })
})

describe('parseOptions: value validation', () => {
  it('rejects statuses that are never stored: 206, 304, 5xx', () => {
    rejects(
      () => parse({ statuses: [200, 206] }),
      /`statuses` cannot include 206/,
      /partial \(206\)/,
    )
    rejects(() => parse({ statuses: [304] }), /cannot include 304/)
    rejects(() => parse({ statuses: [200, 500, 503] }), /cannot include 500, 503/, /5xx/)
  })

  it('rejects statuses that are not status codes', () => {
    for (const statuses of [[99], [600], [200.5], ['200'], '200', 200, [null]]) {
      rejects(
        () => parseAny({ statuses }),
        /`statuses` must be an array of HTTP status codes, e\.g\. \[200, 404\]/,
      )
    }
  })

  it('accepts custom statuses', () => {
    assert.deepEqual([...parse({ statuses: [200, 302, 302] }).statuses].sort(), [200, 302])
  })

  it('rejects an invalid prefix', () => {
    for (const prefix of [
      '',
      'has space',
      'a~b',
      'x'.repeat(65),
      'tab\there',
      'é',
      'new\nline',
      42,
      null,
    ]) {
      rejects(
        () => parseAny({ prefix }),
        /`prefix` must be 1 to 64 printable ASCII characters without spaces or `~`/,
      )
    }
    assert.equal(parse({ prefix: 'x'.repeat(64) }).prefix, 'x'.repeat(64))
    assert.equal(parse({ prefix: 'my-app:v2' }).prefix, 'my-app:v2')
  })

  it('lower-cases, de-duplicates and sorts vary header names', () => {
    assert.deepEqual(parse({ vary: ['X-Tenant', 'Accept-Language', 'x-tenant'] }).vary, [
      'accept-language',
      'x-tenant',
    ])
    for (const vary of ['accept', ['accept language'], ['accept:'], [''], [42]]) {
      rejects(() => parseAny({ vary }), /`vary` must be an array of request header names/)
    }
  })

  it('keeps the case of session cookie names (cookie names are case-sensitive)', () => {
    assert.deepEqual(
      parse({ sessionCookies: ['SessionID', 'connect.sid', 'SessionID'] }).sessionCookies,
      ['SessionID', 'connect.sid'],
    )
    assert.deepEqual(parse({ sessionCookies: ['SID', 'sid'] }).sessionCookies, ['SID', 'sid'])
  })

  it('rejects invalid session cookie names with a cookie-specific message', () => {
    for (const sessionCookies of ['sid', ['a b'], ['a;b'], ['a=b'], ['a,b'], [''], [42]]) {
      rejects(
        () => parseAny({ sessionCookies }),
        /`sessionCookies` must be an array of cookie names/,
        /case-sensitive/,
      )
    }
  })

  it('rejects non-boolean switches', () => {
    for (const name of [
      'enabled',
      'stripSetCookie',
      'responseTtl',
      'debugHeaders',
      'honorClientNoCache',
      'invalidateOnUnsafe',
      'keepSurrogateKey',
    ]) {
      rejects(
        () => parseAny({ [name]: 'yes' }),
        new RegExp(`\`${name}\` must be true or false \\(got yes\\)`),
      )
    }
  })

  it('rejects a key that is not a function, a bad maxBodySize, logger, cacheName or store', () => {
    rejects(() => parseAny({ key: 'tenant' }), /`key` must be a function/)
    for (const maxBodySize of [-1, 1.5, '1mb'])
      rejects(() => parseAny({ maxBodySize }), /`maxBodySize` must be a whole number of bytes/)
    rejects(() => parseAny({ logger: console.log }), /`logger` must be a pino logger/)
    rejects(() => parseAny({ logger: null }), /`logger` must be a pino logger/)
    rejects(() => parseAny({ cacheName: 'my cache' }), /`cacheName` must be an HTTP token/)
    rejects(() => parseAny({ cacheName: null }), /`cacheName` must be an HTTP token/)
    rejects(
      () => parseAny({ store: {} }),
      /`store` must implement the CacheStore interface/,
      /missing: get, set, add, delete/,
    )
    rejects(() => parseAny({ store: { get() {}, set() {} } }), /missing: add, delete/)
  })

  it('accepts a pino logger and a token cache name', () => {
    const logger = pino({ level: 'silent' })
    const c = parse({ logger, cacheName: 'edge-cache' })
    assert.equal(c.logger, logger)
    assert.equal(c.cacheName, 'edge-cache')
  })

  it('rejects something that is not an options object', () => {
    for (const options of [null, 'ttl=60', 60, [], true]) {
      rejects(
        () => parseAny(options),
        /responseCache\(\) takes an options object, e\.g\. responseCache\(\{ ttl: 60 \}\)/,
      )
    }
  })
})

describe('parseRouteOptions (cache.route())', () => {
  it('inherits the app configuration and overrides what it sets', () => {
    const base = parse({ ttl: 30, grace: 100, vary: ['x-tenant'], statuses: [200] })
    const r = route({ ttl: '5m' }, base)
    assert.equal(r.ttlMs, 300_000)
    assert.equal(r.graceMs, 100_000)
    assert.equal(r.staleIfErrorMs, 300_000)
    assert.deepEqual(r.vary, ['x-tenant'])
    assert.deepEqual([...r.statuses], [200])
    assert.ok(Object.isFrozen(r))
    assert.equal('store' in r, false, 'a route configuration carries no app-only fields')
  })

  it('a route inherits staleIfError, independent of its grace', () => {
    const base = parse({ grace: 100, staleIfError: 500 })
    assert.equal(route({}, base).staleIfErrorMs, 500_000)
    assert.equal(route({ grace: 10 }, base).staleIfErrorMs, 500_000)
    assert.equal(route({ grace: 10, staleIfError: 20 }, base).staleIfErrorMs, 20_000)
  })

  it('says that app-wide options cannot be set per route', () => {
    const appOnly = [
      'store',
      'timeout',
      'pollInterval',
      'prefix',
      'logger',
      'debugHeaders',
      'cacheName',
      'honorClientNoCache',
      'sessionCookies',
      'invalidateOnUnsafe',
      'servers',
      'perRequestHeaders',
      'hotCache',
      'keepSurrogateKey',
      'invalidationPoll',
      'meterProvider',
    ]
    for (const name of appOnly) {
      rejects(
        () => route({ [name]: undefined }),
        new RegExp(
          `\`${name}\` can only be set app-wide, on responseCache\\(\\{\\.\\.\\.\\}\\), not per route`,
        ),
      )
    }
    rejects(() => route({ store: new MemoryStore() }), /`store` can only be set app-wide/)
  })

  it('suggests the nearest route option for a typo', () => {
    rejects(
      () => route({ tl: 5 }),
      /unknown option `tl` in cache\.route\(\)\. Did you mean `ttl`\?/,
    )
  })

  it('validates values like the app level does', () => {
    rejects(() => route({ ttl: 'soon' }), /`ttl` must be a non-negative number/)
    rejects(() => route({ lockTtl: 1 }), /`lockTtl` must be at least 2 seconds/)
    rejects(() => route({ statuses: [500] }), /`statuses` cannot include 500/)
    for (const options of [null, 'x', []]) {
      rejects(
        () => route(options),
        /cache\.route\(\) takes an options object, e\.g\. cache\.route\(\{ ttl: 60 \}\)/,
      )
    }
  })

  it('accepts undefined values and a frozen object', () => {
    const base = parse({ ttl: 30 })
    assert.equal(route(Object.freeze({ ttl: undefined, enabled: false }), base).ttlMs, 30_000)
    assert.equal(route({ enabled: false }, base).enabled, false)
  })
})

describe('responseCache()', () => {
  const fakeReq = { method: 'GET', url: '/', headers: { host: 'example.com' } }
  const fakeRes = { setHeader() {}, end() {} }
  const next = (): void => assert.fail('next must not be called')

  it('says to call it when mounted as app.use(responseCache)', () => {
    const asMiddleware = responseCache as unknown as (
      req: unknown,
      res: unknown,
      next: unknown,
    ) => void
    rejects(
      () => asMiddleware(fakeReq, fakeRes, next),
      /responseCache\(\) is a factory and was used as a middleware/,
      /Call it: app\.use\(responseCache\(\{ ttl: 60 \}\)\)/,
    )
  })

  it('says to call cache.route when mounted as app.get(path, cache.route, …)', async () => {
    const cache = responseCache({ store: new MemoryStore() })
    try {
      const asMiddleware = cache.route as unknown as (
        req: unknown,
        res: unknown,
        next: unknown,
      ) => void
      rejects(
        () => asMiddleware(fakeReq, fakeRes, next),
        /cache\.route\(\) is a factory/,
        /Call it: app\.use\(cache\.route\(\{ ttl: 60 \}\)\)/,
      )
    } finally {
      await cache.close()
    }
  })

  it('validates its options when called', () => {
    rejects(() => responseCache({ ttl: -5 }), /`ttl` must be a non-negative number/)
    rejects(() => responseCache({ tl: 5 } as ResponseCacheOptions), /Did you mean `ttl`\?/)
    rejects(
      () => responseCache({ store: new MemoryStore(), statuses: [206] }),
      /cannot include 206/,
    )
  })

  it('cache.route({ store }) says store can only be set app-wide', async () => {
    const cache = responseCache({ store: new MemoryStore() })
    try {
      rejects(
        () => cache.route({ store: new MemoryStore() } as RouteOptions),
        /`store` can only be set app-wide/,
      )
      rejects(
        () => cache.route({ prefix: 'x' } as RouteOptions),
        /`prefix` can only be set app-wide/,
      )
      rejects(() => cache.route({ tll: 5 } as RouteOptions), /Did you mean `ttl`\?/)
      assert.equal(typeof cache.route({ ttl: '5m' }), 'function')
      assert.equal(typeof cache.route(), 'function')
    } finally {
      await cache.close()
    }
  })

  it('does not mutate a frozen options object', async () => {
    const options = Object.freeze({
      store: new MemoryStore(),
      ttl: '30s',
      sessionCookies: Object.freeze(['SID']),
    })
    const cache = responseCache(options)
    await cache.close()
    assert.equal(options.ttl, '30s')
  })
})

/** A pino logger whose lines are kept as parsed objects. */
function capture(): { logger: pino.Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = []
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>)
      done()
    },
  })
  return { logger: pino({ level: 'warn' }, stream), lines }
}

describe('ConfigError', () => {
  it('is exported, a TypeError, with a stable code and the option at fault', () => {
    assert.equal(exported.ConfigError, ConfigError)
    assert.throws(
      () => parseAny({ ttl: 'soon' }),
      (err: unknown) =>
        err instanceof exported.ConfigError &&
        err instanceof TypeError &&
        err.code === 'EFTC_OPTION' &&
        err.option === 'ttl',
    )
    assert.throws(
      () => parseAny({ hotCache: { ttl: 120 } }),
      (err: unknown) => err instanceof ConfigError && err.option === 'hotCache',
    )
  })

  it('wraps the store’s own validation errors', () => {
    assert.throws(
      () => parseAny({ store: {} }),
      (err: unknown) =>
        err instanceof ConfigError && err.option === 'store' && err.cause instanceof TypeError,
    )
    rejects(() => parseAny({ servers: ['mc1:notaport'] }), /mc1:notaport/)
  })

  it('is what responseCache() throws when used as a middleware', () => {
    const asMiddleware = responseCache as unknown as (req: unknown, res: unknown) => void
    assert.throws(
      () => asMiddleware({ method: 'GET', headers: {} }, {}),
      (err: unknown) => err instanceof ConfigError && err.code === 'EFTC_OPTION',
    )
  })
})

describe('servers', () => {
  it('builds a MemcachedStore from an array or a string, without calling makeDefaultStore', async () => {
    for (const servers of [
      ['mc2:11211', 'mc1:11211'],
      'mc1:11211,mc2:11211',
      'mc1:11211 mc2:11211',
    ]) {
      const c = parseOptions({ servers }, () => assert.fail('the default store must not be made'))
      assert.ok(c.store instanceof MemcachedStore)
      assert.deepEqual(c.store.servers, ['mc1:11211', 'mc2:11211'])
      assert.equal(c.ownsStore, true)
      await c.store.close()
    }
  })

  it('cannot be combined with store', () => {
    rejects(
      () => parse({ servers: ['mc1:11211'], store: new MemoryStore() }),
      /give either `servers` or `store`, not both/,
      /new MemcachedStore\(\{ servers \}\)/,
    )
  })

  it('must be host:port entries', () => {
    for (const servers of [42, [42], null, {}]) {
      rejects(() => parseAny({ servers }), /`servers` must be 'host:port' entries/)
    }
  })

  it('is not made when another option is invalid', () => {
    // The store is built last: an invalid option never opens a connection.
    rejects(() => parseAny({ servers: ['mc1:11211'], prefix: 'a b' }), /`prefix`/)
  })
})

describe('logger default', () => {
  it('is one pino logger at warn, named express-ft-cache', () => {
    const a = parse({}).logger
    assert.equal(a, parse({}).logger)
    assert.equal(a, defaultLogger())
    assert.equal(a.level, 'warn')
    assert.equal(a.bindings().name, 'express-ft-cache')
  })

  it('writes warnings to stderr and nothing below warn', () => {
    const script = [
      "import { defaultLogger } from './src/options.ts'",
      "defaultLogger().info('not shown')",
      "defaultLogger().warn({ code: 'X' }, 'shown')",
    ].join('\n')
    const r = spawnSync(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', script],
      { cwd: new URL('../..', import.meta.url), encoding: 'utf8', timeout: 60_000 },
    )
    assert.equal(r.status, 0, r.stderr)
    assert.equal(r.stdout, '')
    const lines = r.stderr.trim().split('\n')
    assert.equal(lines.length, 1, r.stderr)
    const line = JSON.parse(lines[0] ?? '') as Record<string, unknown>
    assert.equal(line.name, 'express-ft-cache')
    assert.equal(line.level, 40)
    assert.equal(line.msg, 'shown')
  })

  it('is replaced by the given logger', () => {
    const { logger } = capture()
    assert.equal(parse({ logger }).logger, logger)
    assert.equal(route({}, parse({ logger })).tags, undefined)
  })
})

describe('cookies and ignoredCookies', () => {
  it("defaults to 'private', accepts 'ignore', rejects anything else", () => {
    assert.equal(parse({}).cookies, 'private')
    assert.equal(parse({ cookies: 'ignore' }).cookies, 'ignore')
    for (const cookies of ['public', 'Ignore', true, null]) {
      rejects(() => parseAny({ cookies }), /`cookies` must be 'private' or 'ignore'/)
    }
  })

  it('is set per route, inheriting the app setting', () => {
    const base = parse({ cookies: 'ignore' })
    assert.equal(route({}, base).cookies, 'ignore')
    assert.equal(route({ cookies: 'private' }, base).cookies, 'private')
  })

  it('ignores analytics cookies by default: _ga and _ga_XYZ both match', () => {
    const { isIgnoredCookie } = parse({})
    for (const name of [
      '_ga',
      '_ga_XYZ123',
      '_gid',
      '_gat',
      '_gat_UA12345',
      '_fbp',
      '_hjSessionUser_1',
      '__utma',
      '__utmz',
    ]) {
      assert.equal(isIgnoredCookie(name), true, name)
    }
    for (const name of ['_gax', '_GA', 'ga', 'sid', 'connect.sid', '_fbc', '__utm', 'x_ga']) {
      assert.equal(isIgnoredCookie(name), name === '__utm', name)
    }
  })

  it('replaces the default list, with exact names and prefix* patterns, case-sensitive', () => {
    const c = parse({ ignoredCookies: ['theme', 'consent_*', 'theme'] })
    assert.deepEqual(c.ignoredCookies, ['theme', 'consent_*'])
    assert.ok(Object.isFrozen(c.ignoredCookies))
    assert.equal(c.isIgnoredCookie('theme'), true)
    assert.equal(c.isIgnoredCookie('Theme'), false)
    assert.equal(c.isIgnoredCookie('consent_v2'), true)
    assert.equal(c.isIgnoredCookie('_ga'), false)
    assert.equal(parse({ ignoredCookies: [] }).isIgnoredCookie('_ga'), false)
    assert.equal(parse({ ignoredCookies: ['*'] }).isIgnoredCookie('anything'), true)
  })

  it('compiles a route’s list, and reuses the app matcher when the route has none', () => {
    const base = parse({ ignoredCookies: ['a'] })
    assert.equal(route({}, base).isIgnoredCookie, base.isIgnoredCookie)
    const r = route({ ignoredCookies: ['b*'] }, base)
    assert.equal(r.isIgnoredCookie('a'), false)
    assert.equal(r.isIgnoredCookie('bee'), true)
  })

  it('rejects patterns that are not cookie names with an optional trailing *', () => {
    for (const ignoredCookies of ['_ga', ['a*b'], ['*a'], ['a**'], ['a b'], [''], [42], ['a;b']]) {
      rejects(
        () => parseAny({ ignoredCookies }),
        /`ignoredCookies` must be an array of cookie names \(case-sensitive\), a trailing `\*` matching a prefix/,
      )
    }
  })
})

describe('perRequestHeaders', () => {
  it('extends the default list, lower-cased', () => {
    const c = parse({ perRequestHeaders: ['X-Trace-Id', 'x-request-id'] })
    assert.ok(c.perRequestHeaders.has('x-trace-id'))
    assert.ok(c.perRequestHeaders.has('traceparent'))
    assert.ok(c.perRequestHeaders.has('x-response-time'))
    assert.equal(c.perRequestHeaders.size, 8)
  })

  it('rejects fields the cache itself relies on, saying what to use instead', () => {
    rejects(
      () => parse({ perRequestHeaders: ['Set-Cookie'] }),
      /cannot include `set-cookie`: use `stripSetCookie`/,
    )
    rejects(() => parse({ perRequestHeaders: ['surrogate-key'] }), /use `keepSurrogateKey`/)
    for (const h of ['cache-control', 'vary', 'content-type', 'etag', 'date', 'age'])
      rejects(() => parse({ perRequestHeaders: [h] }), new RegExp(`cannot include \`${h}\``))
  })

  it('rejects what is not a list of header names', () => {
    for (const perRequestHeaders of ['x-request-id', ['x request'], [''], [1]]) {
      rejects(
        () => parseAny({ perRequestHeaders }),
        /`perRequestHeaders` must be an array of request header names/,
      )
    }
  })
})

describe('hotCache', () => {
  it('is off by default and with false; true means 32 MiB for 1 s', () => {
    assert.equal(parse({}).hotCache, undefined)
    assert.equal(parse({ hotCache: false }).hotCache, undefined)
    assert.deepEqual(parse({ hotCache: true }).hotCache, { maxBytes: 33_554_432, ttlMs: 1000 })
  })

  it('fills what an object leaves out', () => {
    assert.deepEqual(parse({ hotCache: { maxBytes: 1024 } }).hotCache, {
      maxBytes: 1024,
      ttlMs: 1000,
    })
    const c = parse({ hotCache: { ttl: '250ms' } })
    assert.deepEqual(c.hotCache, { maxBytes: 33_554_432, ttlMs: 250 })
    assert.ok(Object.isFrozen(c.hotCache))
    assert.equal(parse({ hotCache: { ttl: 60 } }).hotCache?.ttlMs, 60_000)
    assert.equal(parse({ hotCache: { ttl: undefined } }).hotCache?.ttlMs, 1000)
  })

  it('validates maxBytes, ttl and unknown keys', () => {
    for (const maxBytes of [0, -1, 1.5, '1mb', Number.POSITIVE_INFINITY]) {
      rejects(
        () => parseAny({ hotCache: { maxBytes } }),
        /`hotCache\.maxBytes` must be a positive whole number of bytes/,
      )
    }
    for (const ttl of [0, '0ms', 61, '2 minutes']) {
      rejects(
        () => parseAny({ hotCache: { ttl } }),
        /`hotCache\.ttl` must be above 0 and at most 60 seconds/,
      )
    }
    rejects(() => parseAny({ hotCache: { ttl: 'soon' } }), /`hotCache\.ttl` must be a non-negative/)
    rejects(
      () => parseAny({ hotCache: { maxbytes: 1 } }),
      /unknown option `maxbytes` in hotCache\. Did you mean `maxBytes`\?/,
    )
    for (const hotCache of ['yes', 1, null, []]) {
      rejects(() => parseAny({ hotCache }), /`hotCache` must be true, false or \{ maxBytes\?/)
    }
  })
})

describe('tags', () => {
  const req = {} as Request

  it('wraps a list in a function returning the same frozen, de-duplicated array', () => {
    const c = parse({ tags: ['products', 'home', 'products'] })
    const tags = c.tags?.(req)
    assert.deepEqual(tags, ['products', 'home'])
    assert.ok(Object.isFrozen(tags))
    assert.equal(c.tags?.(req), tags)
  })

  it('calls a function per request, undefined meaning no tags', () => {
    const c = parse({ tags: (r) => (r.path === '/a' ? ['a', 'all'] : undefined) })
    assert.deepEqual(c.tags?.({ path: '/a' } as Request), ['a', 'all'])
    assert.deepEqual(c.tags?.({ path: '/b' } as Request), [])
  })

  it('drops invalid tags a function returns, and warns once', () => {
    const { logger, lines } = capture()
    const c = parse({ logger, tags: () => ['ok', 'has space', ''] })
    assert.deepEqual(c.tags?.(req), ['ok'])
    assert.deepEqual(c.tags?.(req), ['ok'])
    assert.equal(lines.length, 1)
    assert.equal(lines[0]?.code, 'EFTC_TAGS')
    const odd = parse({ logger, tags: () => 'ok' as unknown as string[] })
    assert.deepEqual(odd.tags?.(req), [])
  })

  it('accepts 1 to 128 printable ASCII characters without spaces', () => {
    const longest = 'x'.repeat(128)
    assert.deepEqual(parse({ tags: [longest, 'a:b/c~d'] }).tags?.(req), [longest, 'a:b/c~d'])
    for (const tags of [['x'.repeat(129)], [''], ['a b'], ['é'], ['tab\t'], [42], 'products', {}]) {
      rejects(
        () => parseAny({ tags }),
        /`tags` must be an array of tags \(1 to 128 printable ASCII/,
      )
    }
  })

  it('is set per route, inheriting the app tags', () => {
    const base = parse({ tags: ['site'] })
    assert.deepEqual(route({}, base).tags?.(req), ['site'])
    assert.deepEqual(route({ tags: ['news'] }, base).tags?.(req), ['news'])
  })
})

describe('keepSurrogateKey, invalidationPoll, meterProvider', () => {
  it('keepSurrogateKey is a boolean, false by default', () => {
    assert.equal(parse({ keepSurrogateKey: true }).keepSurrogateKey, true)
  })

  it('invalidationPoll is between 10ms and 250ms', () => {
    assert.equal(parse({ invalidationPoll: '50ms' }).invalidationPollMs, 50)
    assert.equal(parse({ invalidationPoll: 0.01 }).invalidationPollMs, 10)
    assert.equal(parse({ invalidationPoll: '250 ms' }).invalidationPollMs, 250)
    for (const invalidationPoll of ['5ms', '251ms', 1, 100] as Duration[]) {
      rejects(
        () => parse({ invalidationPoll }),
        /`invalidationPoll` must be between 10ms and 250ms/,
        /numbers are seconds/,
      )
    }
  })

  it('meterProvider must have getMeter; the global one is left to the engine', () => {
    const provider = metrics.getMeterProvider()
    assert.equal(parse({ meterProvider: provider }).meterProvider, provider)
    for (const meterProvider of [{}, 'otel', null]) {
      rejects(
        () => parseAny({ meterProvider }),
        /`meterProvider` must be an OpenTelemetry MeterProvider/,
      )
    }
  })
})
