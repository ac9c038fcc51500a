import type { Request } from 'express'
import type { Logger } from 'pino'
import { type Duration, parseDuration } from './duration.js'
import { assertCacheStore, type CacheStore } from './store/types.js'

/** Options a route may override with `cache.route({...})`. */
export interface RouteOptions {
  /** Set to false to never serve or store this route from the cache. Default true. */
  enabled?: boolean
  /** How long an entry is fresh. Default 60 s. */
  ttl?: Duration
  /** How long after `ttl` the stale copy is served while one request regenerates. Default 300 s. */
  grace?: Duration
  /** How long after `ttl` the stale copy replaces a 5xx or a thrown error (RFC 5861). Default: `grace`. */
  staleIfError?: Duration
  /** How long the regenerating request holds the mint lock (MintCache's MINT_DELAY). >= 2 s. Default 10 s. */
  lockTtl?: Duration
  /** How long a request on a cold key waits for another request's render. Default 5 s. */
  waitTimeout?: Duration
  /** Request headers to key on, besides the response's own `Vary`. Default []. */
  vary?: readonly string[]
  /** Extra key part, e.g. a tenant id. Return undefined for none. */
  key?: (req: Request) => string | undefined
  /** Status codes that may be stored. Default [200, 203, 204, 300, 301, 404, 410]. */
  statuses?: readonly number[]
  /** Largest body stored, in bytes; larger responses pass through unstored. Default 1 MiB. */
  maxBodySize?: number
  /**
   * Store responses that set cookies, with `Set-Cookie` removed from the stored copy (the client that
   * caused the render still gets its cookie). Default false: such responses are not stored.
   */
  stripSetCookie?: boolean
  /**
   * When true (default), a freshness lifetime stated by the response (`s-maxage`, `max-age`,
   * `Expires`) replaces `ttl`, longer or shorter. When false it can only shorten `ttl`.
   */
  responseTtl?: boolean
  /** How long an uncacheable result makes later requests skip coalescing (hit-for-miss). Default 120 s. */
  hitForMiss?: Duration
}

/** Options of `responseCache(options)`. */
export interface ResponseCacheOptions extends RouteOptions {
  /** Where entries live. Default: `new MemcachedStore()` (MEMCACHE_SERVERS, then 127.0.0.1:11211). */
  store?: CacheStore
  /** Deadline for the cache reads on a request's path, in total. Default 100 ms. */
  timeout?: Duration
  /** Interval at which a waiting request polls for another process's render. Default 100 ms. */
  pollInterval?: Duration
  /** Key prefix, to share one memcached between apps. Default 'eftc'. */
  prefix?: string
  /** Logger for store failures and, without pino-http, per-request outcomes. Default: silent pino. */
  logger?: Logger
  /** Send `X-Cache` and `Cache-Status` headers. Default true. */
  debugHeaders?: boolean
  /** Cache name in `Cache-Status` (RFC 9211). Default 'express-ft-cache'. */
  cacheName?: string
  /**
   * Let a client's `Cache-Control: no-cache` / `max-age=0` / `Pragma: no-cache` force a regeneration.
   * Default false: on a public site any client could otherwise bust the cache at will.
   */
  honorClientNoCache?: boolean
  /** Cookie names that mark a request as a user session: such requests bypass the cache. Default []. */
  sessionCookies?: readonly string[]
  /** Invalidate the cached GET after a successful POST/PUT/PATCH/DELETE (RFC 9111 §4.4). Default true. */
  invalidateOnUnsafe?: boolean
}

/** Route-level configuration with every default applied; durations in milliseconds. */
export interface RouteConfig {
  readonly enabled: boolean
  readonly ttlMs: number
  readonly graceMs: number
  readonly staleIfErrorMs: number
  readonly lockTtlS: number
  readonly waitTimeoutMs: number
  readonly vary: readonly string[]
  readonly key: ((req: Request) => string | undefined) | undefined
  readonly statuses: ReadonlySet<number>
  readonly maxBodySize: number
  readonly stripSetCookie: boolean
  readonly responseTtl: boolean
  readonly hitForMissMs: number
}

/** App-level configuration: the route defaults plus what only the app can set. */
export interface CacheConfig extends RouteConfig {
  readonly store: CacheStore
  readonly ownsStore: boolean
  readonly timeoutMs: number
  readonly pollIntervalMs: number
  readonly prefix: string
  readonly logger: Logger | undefined
  readonly debugHeaders: boolean
  readonly cacheName: string
  readonly honorClientNoCache: boolean
  readonly sessionCookies: readonly string[]
  readonly invalidateOnUnsafe: boolean
}

export const DEFAULT_STATUSES: readonly number[] = [200, 203, 204, 300, 301, 404, 410]

export const ROUTE_KEYS = [
  'enabled',
  'ttl',
  'grace',
  'staleIfError',
  'lockTtl',
  'waitTimeout',
  'vary',
  'key',
  'statuses',
  'maxBodySize',
  'stripSetCookie',
  'responseTtl',
  'hitForMiss',
] as const satisfies readonly (keyof RouteOptions)[]

export const APP_KEYS = [
  ...ROUTE_KEYS,
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
] as const satisfies readonly (keyof ResponseCacheOptions)[]

const fail = (message: string): never => {
  throw new TypeError(`express-ft-cache: ${message}`)
}

/** Levenshtein distance, for "did you mean" hints on misspelt option names. */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i)
  for (let i = 1; i <= a.length; i++) {
    const row = [i]
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1]?.toLowerCase() === b[j - 1]?.toLowerCase() ? 0 : 1
      row.push(Math.min((row[j - 1] ?? 0) + 1, (prev[j] ?? 0) + 1, (prev[j - 1] ?? 0) + cost))
    }
    prev = row
  }
  return prev[b.length] ?? 0
}

/** Rejects unknown option names, suggesting the nearest known one. */
export function rejectUnknownOptions(given: object, known: readonly string[], where: string): void {
  for (const name of Object.keys(given)) {
    if (known.includes(name)) continue
    const best = known.reduce(
      (acc, k) => {
        const d = distance(name, k)
        return d < acc.d ? { k, d } : acc
      },
      { k: '', d: Number.POSITIVE_INFINITY },
    )
    // An app-wide option given to cache.route() is not a typo: say where it belongs instead of
    // suggesting the nearest route option.
    if (where === 'cache.route()' && (APP_KEYS as readonly string[]).includes(name)) {
      fail(
        `\`${name}\` can only be set app-wide, on responseCache({...}), not per route in cache.route().`,
      )
    }
    const hint =
      best.d <= 3 ? ` Did you mean \`${best.k}\`?` : ` Known options: ${known.join(', ')}.`
    fail(`unknown option \`${name}\` in ${where}.${hint}`)
  }
}

/** Treat `undefined` like an omitted option, so `{ ttl: process.env.X && Number(X) }` falls back. */
function defined<T extends object>(options: T): Partial<T> {
  const out: Partial<T> = {}
  for (const [k, v] of Object.entries(options)) {
    if (v !== undefined) (out as Record<string, unknown>)[k] = v
  }
  return out
}

function boolOption(value: unknown, name: string, fallback: boolean): boolean {
  if (value === undefined) return fallback
  if (typeof value !== 'boolean') fail(`\`${name}\` must be true or false (got ${String(value)}).`)
  return value as boolean
}

function ms(value: Duration | undefined, name: string, fallbackSeconds: number): number {
  return Math.round((value === undefined ? fallbackSeconds : parseDuration(value, name)) * 1000)
}

/** token (RFC 9110 §5.6.2): what header names and cookie names are made of. */
const TOKEN = /^[!#$%&'*+.^_`|~\w-]+$/

/** A lower-case, validated list of request header names: field names are case-insensitive (RFC 9110 §5.1). */
function headerList(value: unknown, name: string): readonly string[] {
  if (!Array.isArray(value) || value.some((h) => typeof h !== 'string' || !TOKEN.test(h))) {
    return fail(`\`${name}\` must be an array of request header names, e.g. ['accept-language'].`)
  }
  return Object.freeze([...new Set((value as string[]).map((h) => h.toLowerCase()))].sort())
}

/**
 * A validated list of cookie names, case kept: cookie names are case-sensitive tokens (RFC 6265
 * §4.1.1, §5.3), so lower-casing `SessionID` would never match the request's cookie.
 */
function cookieList(value: unknown, name: string): readonly string[] {
  if (!Array.isArray(value) || value.some((c) => typeof c !== 'string' || !TOKEN.test(c))) {
    return fail(
      `\`${name}\` must be an array of cookie names (case-sensitive), e.g. ['connect.sid'].`,
    )
  }
  return Object.freeze([...new Set(value as string[])].sort())
}

function parseRoute(options: RouteOptions, base: RouteConfig, where: string): RouteConfig {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    return fail(`${where} takes an options object, e.g. ${where.replace('()', '({ ttl: 60 })')}.`)
  }
  const o = defined(options)
  const ttlMs = o.ttl === undefined ? base.ttlMs : ms(o.ttl, 'ttl', 0)
  const graceMs = o.grace === undefined ? base.graceMs : ms(o.grace, 'grace', 0)
  const staleIfErrorMs =
    o.staleIfError === undefined
      ? o.grace === undefined
        ? base.staleIfErrorMs
        : graceMs
      : ms(o.staleIfError, 'staleIfError', 0)
  const lockTtl = o.lockTtl === undefined ? base.lockTtlS : parseDuration(o.lockTtl, 'lockTtl')
  // memcached expiry has one-second granularity: a 1 s lock may expire at once (protocol.txt).
  if (lockTtl < 2)
    fail(
      `\`lockTtl\` must be at least 2 seconds (got ${lockTtl}s): memcached may expire a 1 s item at once.`,
    )
  if (ttlMs + Math.max(graceMs, staleIfErrorMs) > 2_592_000_000) {
    fail(
      '`ttl` plus `grace`/`staleIfError` must stay within 30 days, the longest relative expiry memcached accepts.',
    )
  }
  let statuses = base.statuses
  if (o.statuses !== undefined) {
    if (
      !Array.isArray(o.statuses) ||
      o.statuses.some((s) => !Number.isInteger(s) || s < 100 || s > 599)
    ) {
      fail('`statuses` must be an array of HTTP status codes, e.g. [200, 404].')
    }
    const bad = o.statuses.filter((s) => s === 206 || s === 304 || s >= 500)
    if (bad.length > 0) {
      fail(
        `\`statuses\` cannot include ${bad.join(', ')}: partial (206), not-modified (304) and 5xx responses are never stored.`,
      )
    }
    statuses = new Set(o.statuses)
  }
  if (o.key !== undefined && typeof o.key !== 'function')
    fail('`key` must be a function (req) => string | undefined.')
  if (o.maxBodySize !== undefined && (!Number.isInteger(o.maxBodySize) || o.maxBodySize < 0)) {
    fail('`maxBodySize` must be a whole number of bytes, e.g. 1048576.')
  }
  return Object.freeze({
    enabled: boolOption(o.enabled, 'enabled', base.enabled),
    ttlMs,
    graceMs,
    staleIfErrorMs,
    lockTtlS: Math.ceil(lockTtl),
    waitTimeoutMs:
      o.waitTimeout === undefined ? base.waitTimeoutMs : ms(o.waitTimeout, 'waitTimeout', 0),
    vary: o.vary === undefined ? base.vary : headerList(o.vary, 'vary'),
    key: o.key ?? base.key,
    statuses,
    maxBodySize: o.maxBodySize ?? base.maxBodySize,
    stripSetCookie: boolOption(o.stripSetCookie, 'stripSetCookie', base.stripSetCookie),
    responseTtl: boolOption(o.responseTtl, 'responseTtl', base.responseTtl),
    hitForMissMs:
      o.hitForMiss === undefined ? base.hitForMissMs : ms(o.hitForMiss, 'hitForMiss', 0),
  })
}

const ROUTE_DEFAULTS: RouteConfig = Object.freeze({
  enabled: true,
  ttlMs: 60_000,
  graceMs: 300_000,
  staleIfErrorMs: 300_000,
  lockTtlS: 10,
  waitTimeoutMs: 5_000,
  vary: Object.freeze([]),
  key: undefined,
  statuses: new Set(DEFAULT_STATUSES),
  maxBodySize: 1_048_576,
  stripSetCookie: false,
  responseTtl: true,
  hitForMissMs: 120_000,
})

/** Parses `responseCache(options)` once; `makeDefaultStore` is only called when no store is given. */
export function parseOptions(
  options: ResponseCacheOptions,
  makeDefaultStore: () => CacheStore,
): CacheConfig {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    return fail('responseCache() takes an options object, e.g. responseCache({ ttl: 60 }).')
  }
  rejectUnknownOptions(options, APP_KEYS, 'responseCache()')
  const o = defined(options)
  const route = parseRoute(o, ROUTE_DEFAULTS, 'responseCache()')
  if (o.store !== undefined) assertCacheStore(o.store)
  // `null` is rejected like every other option, not silently read as the default.
  const prefix = o.prefix === undefined ? 'eftc' : o.prefix
  // The prefix is part of every memcached key: printable, no spaces, no `~` (the suffix separator).
  if (typeof prefix !== 'string' || !/^[\x21-\x7d]{1,64}$/.test(prefix) || prefix.includes('~')) {
    fail('`prefix` must be 1 to 64 printable ASCII characters without spaces or `~`, e.g. "myapp".')
  }
  const logger = o.logger
  if (
    logger !== undefined &&
    (logger === null || typeof logger !== 'object' || typeof logger.warn !== 'function')
  ) {
    fail('`logger` must be a pino logger, e.g. pino({ level: "warn" }).')
  }
  const cacheName = o.cacheName === undefined ? 'express-ft-cache' : o.cacheName
  if (typeof cacheName !== 'string' || !/^[!#$%&'*+.^_`|~\w-]+$/.test(cacheName)) {
    fail('`cacheName` must be an HTTP token (letters, digits, -), e.g. "edge-cache".')
  }
  const timeoutMs = ms(o.timeout, 'timeout', 0.1)
  if (timeoutMs < 1) fail('`timeout` must be at least 1ms, e.g. "100ms".')
  const pollIntervalMs = ms(o.pollInterval, 'pollInterval', 0.1)
  if (pollIntervalMs < 5) fail('`pollInterval` must be at least 5ms, e.g. "100ms".')
  return Object.freeze({
    ...route,
    store: o.store ?? makeDefaultStore(),
    ownsStore: o.store === undefined,
    timeoutMs,
    pollIntervalMs,
    prefix,
    logger,
    debugHeaders: boolOption(o.debugHeaders, 'debugHeaders', true),
    cacheName,
    honorClientNoCache: boolOption(o.honorClientNoCache, 'honorClientNoCache', false),
    sessionCookies:
      o.sessionCookies === undefined
        ? Object.freeze([])
        : cookieList(o.sessionCookies, 'sessionCookies'),
    invalidateOnUnsafe: boolOption(o.invalidateOnUnsafe, 'invalidateOnUnsafe', true),
  })
}

/** Parses `cache.route(options)` against the app-level configuration. */
export function parseRouteOptions(options: RouteOptions, base: CacheConfig): RouteConfig {
  if (options !== null && typeof options === 'object')
    rejectUnknownOptions(options, ROUTE_KEYS, 'cache.route()')
  return parseRoute(options, base, 'cache.route()')
}
