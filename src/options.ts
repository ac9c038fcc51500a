import type { MeterProvider } from '@opentelemetry/api'
import type { Request } from 'express'
import pino, { type Logger } from 'pino'
import { ConfigError } from './config-error.js'
import { nearest } from './did-you-mean.js'
import { type Duration, parseDuration, warnIfMilliseconds } from './duration.js'
import { MemcachedStore } from './store/memcached.js'
import { assertCacheStore, type CacheStore } from './store/types.js'

/** Options a route may override with `cache.route({...})`. */
export interface RouteOptions {
  /** Set to false to never serve or store this route from the cache. Default true. */
  enabled?: boolean
  /** How long an entry is fresh. Default 60 s. */
  ttl?: Duration
  /** How long after `ttl` the stale copy is served while one request regenerates. Default 300 s. */
  grace?: Duration
  /**
   * How long after `ttl` the stale copy replaces a 5xx, a thrown error or an unreachable origin
   * (RFC 5861 §4, RFC 9111 §4.2.4). Default 300 s, whatever `grace` is: serving a known-good copy
   * beats an error page. Responses that forbid stale serving (must-revalidate, no-cache, s-maxage)
   * get none unless they grant `stale-if-error` themselves.
   */
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
  /**
   * How a request carrying a `Cookie` (other than `ignoredCookies`) is treated. 'private' (default):
   * like `Authorization` in RFC 9111 §3.5 — answered only from entries whose response said `public`
   * or `s-maxage`, and its own response stored for others only when it says so. 'ignore': cookies do
   * not matter on this route.
   */
  cookies?: 'private' | 'ignore'
  /**
   * Cookie names that never make a request private (analytics cookies); a trailing `*` matches a
   * prefix. Replaces the default ['_ga', '_ga_*', '_gid', '_gat*', '_fbp', '_hj*', '__utm*'].
   */
  ignoredCookies?: readonly string[]
  /**
   * Tags stored with the entry, for invalidation by tag: a list, or a function of the request
   * (return undefined for none). 1 to 128 printable ASCII characters each, no spaces.
   */
  tags?: readonly string[] | ((req: Request) => readonly string[] | undefined)
}

/** The in-process tier in front of the store; `true` means 32 MiB and 1 s. */
export interface HotCacheOptions {
  /** Bytes of bodies and headers kept in this process. Default 32 MiB. */
  maxBytes?: number
  /** How long an entry is served from this process without asking the store. > 0, <= 60 s. Default 1 s. */
  ttl?: Duration
}

/** Options of `responseCache(options)`. */
export interface ResponseCacheOptions extends RouteOptions {
  /** Where entries live. Default: `new MemcachedStore()` (MEMCACHE_SERVERS, then 127.0.0.1:11211). */
  store?: CacheStore
  /**
   * Shorthand for `store: new MemcachedStore({ servers })`: 'host:port' entries, as an array or a
   * comma/space-separated string. Cannot be combined with `store`.
   */
  servers?: string | readonly string[]
  /** Deadline for the cache reads on a request's path, in total. Default 100 ms. */
  timeout?: Duration
  /** Interval at which a waiting request polls for another process's render. Default 100 ms. */
  pollInterval?: Duration
  /** Key prefix, to share one memcached between apps. Default 'eftc'. */
  prefix?: string
  /**
   * Logger for store failures, configuration warnings and, without pino-http, per-request outcomes.
   * Default: pino at level 'warn' on stderr, named 'express-ft-cache'.
   */
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
  /**
   * Response header fields that belong to one request: never stored, never replayed. Extends the
   * default x-request-id, request-id, x-correlation-id, traceparent, tracestate, server-timing,
   * x-response-time.
   */
  perRequestHeaders?: readonly string[]
  /** An in-process tier in front of the store for the hottest entries. Default off. */
  hotCache?: boolean | HotCacheOptions
  /**
   * Keep the response's `Surrogate-Key` header (its tags) on what clients receive. Default false: the
   * tags are stored, and the header is stripped.
   */
  keepSurrogateKey?: boolean
  /** How often each process checks the fleet-wide invalidation record; 10 ms to 250 ms. Default 100 ms. */
  invalidationPoll?: Duration
  /** Where the cache's metrics go. Default: the global MeterProvider of @opentelemetry/api. */
  meterProvider?: MeterProvider
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
  readonly cookies: 'private' | 'ignore'
  readonly ignoredCookies: readonly string[]
  /** Whether a cookie name is in `ignoredCookies` (exact names and `prefix*` patterns), compiled once. */
  readonly isIgnoredCookie: (name: string) => boolean
  /** Valid, frozen tags for a request (never undefined); undefined when the route has no `tags`. */
  readonly tags: ((req: Request) => readonly string[]) | undefined
}

export interface HotCacheConfig {
  readonly maxBytes: number
  readonly ttlMs: number
}

/** App-level configuration: the route defaults plus what only the app can set. */
export interface CacheConfig extends RouteConfig {
  readonly store: CacheStore
  readonly ownsStore: boolean
  readonly timeoutMs: number
  readonly pollIntervalMs: number
  readonly prefix: string
  readonly logger: Logger
  readonly debugHeaders: boolean
  readonly cacheName: string
  readonly honorClientNoCache: boolean
  readonly sessionCookies: readonly string[]
  readonly invalidateOnUnsafe: boolean
  /** Lower-case field names, the defaults included. */
  readonly perRequestHeaders: ReadonlySet<string>
  readonly hotCache: HotCacheConfig | undefined
  readonly keepSurrogateKey: boolean
  readonly invalidationPollMs: number
  /** undefined: the engine uses the global provider. */
  readonly meterProvider: MeterProvider | undefined
}

export const DEFAULT_STATUSES: readonly number[] = [200, 203, 204, 300, 301, 404, 410]

/** Analytics cookies: set by scripts for every visitor, they say nothing about who is asking. */
export const DEFAULT_IGNORED_COOKIES: readonly string[] = Object.freeze([
  '_ga',
  '_ga_*',
  '_gid',
  '_gat*',
  '_fbp',
  '_hj*',
  '__utm*',
])

/** Fields that identify one request or one render; replaying them would lie about another. */
export const DEFAULT_PER_REQUEST_HEADERS: readonly string[] = Object.freeze([
  'x-request-id',
  'request-id',
  'x-correlation-id',
  'traceparent',
  'tracestate',
  'server-timing',
  'x-response-time',
])

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
  'cookies',
  'ignoredCookies',
  'tags',
] as const satisfies readonly (keyof RouteOptions)[]

export const APP_KEYS = [
  ...ROUTE_KEYS,
  'store',
  'servers',
  'timeout',
  'pollInterval',
  'prefix',
  'logger',
  'debugHeaders',
  'cacheName',
  'honorClientNoCache',
  'sessionCookies',
  'invalidateOnUnsafe',
  'perRequestHeaders',
  'hotCache',
  'keepSurrogateKey',
  'invalidationPoll',
  'meterProvider',
] as const satisfies readonly (keyof ResponseCacheOptions)[]

const fail = (message: string, option?: string): never => {
  throw new ConfigError(message, option)
}

/** Rejects unknown option names, suggesting the nearest known one. */
export function rejectUnknownOptions(given: object, known: readonly string[], where: string): void {
  for (const name of Object.keys(given)) {
    if (known.includes(name)) continue
    // An app-wide option given to cache.route() is not a typo: say where it belongs instead of
    // suggesting the nearest route option.
    if (where === 'cache.route()' && (APP_KEYS as readonly string[]).includes(name)) {
      fail(
        `\`${name}\` can only be set app-wide, on responseCache({...}), not per route in cache.route().`,
        name,
      )
    }
    const best = nearest(name, known)
    const hint =
      best !== undefined ? ` Did you mean \`${best}\`?` : ` Known options: ${known.join(', ')}.`
    fail(`unknown option \`${name}\` in ${where}.${hint}`, name)
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
  if (typeof value !== 'boolean')
    fail(`\`${name}\` must be true or false (got ${String(value)}).`, name)
  return value as boolean
}

/** A duration in seconds, with the one-time "numbers are seconds" warning for suspicious numbers. */
function seconds(value: unknown, name: string, logger: Logger): number {
  const s = parseDuration(value, name)
  warnIfMilliseconds(value, name, logger)
  return s
}

function ms(value: unknown, name: string, logger: Logger): number {
  return Math.round(seconds(value, name, logger) * 1000)
}

/** token (RFC 9110 §5.6.2): what header names and cookie names are made of. */
const TOKEN = /^[!#$%&'*+.^_`|~\w-]+$/

const isStringArray = (value: unknown): value is readonly string[] =>
  Array.isArray(value) && value.every((v) => typeof v === 'string')

/** A lower-case, validated list of request header names: field names are case-insensitive (RFC 9110 §5.1). */
function headerList(value: unknown, name: string): readonly string[] {
  if (!isStringArray(value) || value.some((h) => !TOKEN.test(h))) {
    return fail(
      `\`${name}\` must be an array of request header names, e.g. ['accept-language'].`,
      name,
    )
  }
  return Object.freeze([...new Set(value.map((h) => h.toLowerCase()))].sort())
}

/**
 * A validated list of cookie names, case kept: cookie names are case-sensitive tokens (RFC 6265
 * §4.1.1, §5.3), so lower-casing `SessionID` would never match the request's cookie.
 */
function cookieList(value: unknown, name: string): readonly string[] {
  if (!isStringArray(value) || value.some((c) => !TOKEN.test(c))) {
    return fail(
      `\`${name}\` must be an array of cookie names (case-sensitive), e.g. ['connect.sid'].`,
      name,
    )
  }
  return Object.freeze([...new Set(value)].sort())
}

/** Cookie name patterns: a name, or a prefix followed by one trailing `*`. */
function cookiePatterns(value: unknown, name: string): readonly string[] {
  const ok = (p: string): boolean => {
    const body = p.endsWith('*') ? p.slice(0, -1) : p
    return (body === '' ? p === '*' : TOKEN.test(body)) && !body.includes('*')
  }
  if (!isStringArray(value) || value.some((p) => !ok(p))) {
    return fail(
      `\`${name}\` must be an array of cookie names (case-sensitive), a trailing \`*\` matching a prefix, e.g. ['_ga', '_ga_*'].`,
      name,
    )
  }
  return Object.freeze([...new Set(value)])
}

/** Compiles cookie patterns once: a Set lookup for names, a prefix scan for `prefix*`. */
export function cookieMatcher(patterns: readonly string[]): (name: string) => boolean {
  const exact = new Set<string>()
  const prefixes: string[] = []
  for (const p of patterns) {
    if (p.endsWith('*')) prefixes.push(p.slice(0, -1))
    else exact.add(p)
  }
  return (cookie) => exact.has(cookie) || prefixes.some((p) => cookie.startsWith(p))
}

/**
 * A tag goes into memcached keys and into the space-separated `Surrogate-Key` header: printable
 * ASCII without spaces, short enough to leave room for the prefix in a 250-byte key.
 */
const TAG = /^[\x21-\x7e]{1,128}$/
export const isValidTag = (tag: unknown): tag is string => typeof tag === 'string' && TAG.test(tag)

const NO_TAGS: readonly string[] = Object.freeze([])

function tagsOption(value: unknown, logger: Logger): (req: Request) => readonly string[] {
  if (typeof value === 'function') {
    const fn = value as (req: Request) => unknown
    let warned = false
    return (req) => {
      const tags = fn(req)
      if (tags === undefined) return NO_TAGS
      if (Array.isArray(tags) && tags.every(isValidTag)) return Object.freeze([...new Set(tags)])
      // A bad tag at request time must not fail the request: keep the valid ones, say so once.
      if (!warned) {
        warned = true
        logger.warn(
          { code: 'EFTC_TAGS', tags },
          'express-ft-cache: the `tags` function returned something other than an array of tags (1-128 printable ASCII characters, no spaces); invalid tags are dropped',
        )
      }
      return Array.isArray(tags) ? Object.freeze([...new Set(tags.filter(isValidTag))]) : NO_TAGS
    }
  }
  if (!Array.isArray(value) || !value.every(isValidTag)) {
    return fail(
      "`tags` must be an array of tags (1 to 128 printable ASCII characters, no spaces), e.g. ['products'], or a function (req) => string[] | undefined.",
      'tags',
    )
  }
  const tags = Object.freeze([...new Set(value as readonly string[])])
  return () => tags
}

function parseRoute(
  options: RouteOptions,
  base: RouteConfig,
  where: string,
  logger: Logger,
): RouteConfig {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    return fail(`${where} takes an options object, e.g. ${where.replace('()', '({ ttl: 60 })')}.`)
  }
  const o = defined(options)
  const ttlMs = o.ttl === undefined ? base.ttlMs : ms(o.ttl, 'ttl', logger)
  const graceMs = o.grace === undefined ? base.graceMs : ms(o.grace, 'grace', logger)
  const staleIfErrorMs =
    o.staleIfError === undefined ? base.staleIfErrorMs : ms(o.staleIfError, 'staleIfError', logger)
  const lockTtl = o.lockTtl === undefined ? base.lockTtlS : seconds(o.lockTtl, 'lockTtl', logger)
  // memcached expiry has one-second granularity: a 1 s lock may expire at once (protocol.txt).
  if (lockTtl < 2)
    fail(
      `\`lockTtl\` must be at least 2 seconds (got ${lockTtl}s): memcached may expire a 1 s item at once.`,
      'lockTtl',
    )
  if (ttlMs + Math.max(graceMs, staleIfErrorMs) > 2_592_000_000) {
    fail(
      '`ttl` plus `grace`/`staleIfError` must stay within 30 days, the longest relative expiry memcached accepts (numbers are seconds).',
      'ttl',
    )
  }
  let statuses = base.statuses
  if (o.statuses !== undefined) {
    if (
      !Array.isArray(o.statuses) ||
      o.statuses.some((s) => !Number.isInteger(s) || s < 100 || s > 599)
    ) {
      fail('`statuses` must be an array of HTTP status codes, e.g. [200, 404].', 'statuses')
    }
    const bad = o.statuses.filter((s) => s === 206 || s === 304 || s >= 500)
    if (bad.length > 0) {
      fail(
        `\`statuses\` cannot include ${bad.join(', ')}: partial (206), not-modified (304) and 5xx responses are never stored.`,
        'statuses',
      )
    }
    statuses = new Set(o.statuses)
  }
  if (o.key !== undefined && typeof o.key !== 'function')
    fail('`key` must be a function (req) => string | undefined.', 'key')
  if (o.maxBodySize !== undefined && (!Number.isInteger(o.maxBodySize) || o.maxBodySize < 0)) {
    fail('`maxBodySize` must be a whole number of bytes, e.g. 1048576.', 'maxBodySize')
  }
  if (o.cookies !== undefined && o.cookies !== 'private' && o.cookies !== 'ignore') {
    fail(
      `\`cookies\` must be 'private' or 'ignore' (got ${JSON.stringify(o.cookies) ?? String(o.cookies)}).`,
      'cookies',
    )
  }
  const ignoredCookies =
    o.ignoredCookies === undefined
      ? base.ignoredCookies
      : cookiePatterns(o.ignoredCookies, 'ignoredCookies')
  return Object.freeze({
    enabled: boolOption(o.enabled, 'enabled', base.enabled),
    ttlMs,
    graceMs,
    staleIfErrorMs,
    lockTtlS: Math.ceil(lockTtl),
    waitTimeoutMs:
      o.waitTimeout === undefined ? base.waitTimeoutMs : ms(o.waitTimeout, 'waitTimeout', logger),
    vary: o.vary === undefined ? base.vary : headerList(o.vary, 'vary'),
    key: o.key ?? base.key,
    statuses,
    maxBodySize: o.maxBodySize ?? base.maxBodySize,
    stripSetCookie: boolOption(o.stripSetCookie, 'stripSetCookie', base.stripSetCookie),
    responseTtl: boolOption(o.responseTtl, 'responseTtl', base.responseTtl),
    hitForMissMs:
      o.hitForMiss === undefined ? base.hitForMissMs : ms(o.hitForMiss, 'hitForMiss', logger),
    cookies: o.cookies ?? base.cookies,
    ignoredCookies,
    isIgnoredCookie:
      o.ignoredCookies === undefined ? base.isIgnoredCookie : cookieMatcher(ignoredCookies),
    tags: o.tags === undefined ? base.tags : tagsOption(o.tags, logger),
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
  cookies: 'private',
  ignoredCookies: DEFAULT_IGNORED_COOKIES,
  isIgnoredCookie: cookieMatcher(DEFAULT_IGNORED_COOKIES),
  tags: undefined,
})

let fallbackLogger: Logger | undefined

/**
 * The logger when none is given: warnings must reach someone (an unreachable memcached, `ttl: 60000`),
 * so not silence. One per process, synchronous writes to stderr: warnings are rare, and a sync
 * destination holds no buffer to lose at exit nor a handle that keeps the process alive.
 */
export function defaultLogger(): Logger {
  fallbackLogger ??= pino(
    { name: 'express-ft-cache', level: 'warn' },
    pino.destination({ dest: 2, sync: true }),
  )
  return fallbackLogger
}

/**
 * Fields the cache itself reads to decide what may be stored and how to replay it: dropping them as
 * "per request" would store what must not be (`Set-Cookie`) or replay a body without its metadata.
 */
const RESERVED_HEADERS: Readonly<Record<string, string>> = {
  'set-cookie': 'use `stripSetCookie` to store responses without their cookies',
  'surrogate-key': 'use `keepSurrogateKey` to decide whether clients see it',
  'cache-control': 'the cache reads it to decide what to store',
  vary: 'the cache keys variants on it',
  expires: 'the cache reads it to decide how long to store',
  date: 'the cache reads it to compute Age',
  age: 'the cache computes it',
  etag: 'the cache answers If-None-Match with it',
  'last-modified': 'the cache answers If-Modified-Since with it',
  'content-type': 'a replayed body needs it',
  'content-encoding': 'a replayed body needs it',
  'content-length': 'the cache sets it from the stored body',
}

function perRequestHeaders(value: unknown): ReadonlySet<string> {
  const given = value === undefined ? [] : headerList(value, 'perRequestHeaders')
  for (const h of given) {
    const why = RESERVED_HEADERS[h]
    if (why !== undefined)
      fail(`\`perRequestHeaders\` cannot include \`${h}\`: ${why}.`, 'perRequestHeaders')
  }
  return new Set([...DEFAULT_PER_REQUEST_HEADERS, ...given])
}

const HOT_CACHE_DEFAULTS: HotCacheConfig = Object.freeze({
  maxBytes: 32 * 1024 * 1024,
  ttlMs: 1000,
})

function hotCache(value: unknown, logger: Logger): HotCacheConfig | undefined {
  if (value === undefined || value === false) return undefined
  if (value === true) return HOT_CACHE_DEFAULTS
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return fail(
      "`hotCache` must be true, false or { maxBytes?: number, ttl?: Duration }, e.g. { maxBytes: 16777216, ttl: '2s' }.",
      'hotCache',
    )
  }
  rejectUnknownOptions(value, ['maxBytes', 'ttl'], 'hotCache')
  const o = defined(value as HotCacheOptions)
  const maxBytes = o.maxBytes ?? HOT_CACHE_DEFAULTS.maxBytes
  if (!Number.isSafeInteger(maxBytes) || maxBytes <= 0) {
    fail(
      `\`hotCache.maxBytes\` must be a positive whole number of bytes, e.g. 33554432 (got ${String(o.maxBytes)}).`,
      'hotCache',
    )
  }
  const ttlMs = o.ttl === undefined ? HOT_CACHE_DEFAULTS.ttlMs : ms(o.ttl, 'hotCache.ttl', logger)
  // The hot tier is not told about invalidations by other processes: keep its staleness short.
  if (ttlMs <= 0 || ttlMs > 60_000) {
    fail(
      `\`hotCache.ttl\` must be above 0 and at most 60 seconds, e.g. '1s' (got ${JSON.stringify(o.ttl)}; numbers are seconds).`,
      'hotCache',
    )
  }
  return Object.freeze({ maxBytes, ttlMs })
}

function servers(value: unknown): string | readonly string[] {
  if (typeof value === 'string' || isStringArray(value)) return value
  return fail(
    "`servers` must be 'host:port' entries, as an array or a comma-separated string, e.g. ['mc1:11211', 'mc2:11211'].",
    'servers',
  )
}

/** Re-throws a store's own validation error as a ConfigError for `option`. */
function asConfigError<T>(option: string, build: () => T): T {
  try {
    return build()
  } catch (err) {
    if (err instanceof TypeError && !(err instanceof ConfigError))
      throw new ConfigError(err.message, option, { cause: err })
    throw err
  }
}

/**
 * Parses `responseCache(options)` once; `makeDefaultStore` is only called when neither `store` nor
 * `servers` is given.
 */
export function parseOptions(
  options: ResponseCacheOptions,
  makeDefaultStore: () => CacheStore = () => new MemcachedStore(),
): CacheConfig {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    return fail('responseCache() takes an options object, e.g. responseCache({ ttl: 60 }).')
  }
  rejectUnknownOptions(options, APP_KEYS, 'responseCache()')
  const o = defined(options)
  // The logger first: parsing the rest may warn through it.
  const given = o.logger
  if (
    given !== undefined &&
    (given === null || typeof given !== 'object' || typeof given.warn !== 'function')
  ) {
    fail('`logger` must be a pino logger, e.g. pino({ level: "warn" }).', 'logger')
  }
  const logger = given ?? defaultLogger()
  const route = parseRoute(o, ROUTE_DEFAULTS, 'responseCache()', logger)
  if (o.store !== undefined) {
    if (o.servers !== undefined) {
      fail(
        'give either `servers` or `store`, not both: `servers` is shorthand for `store: new MemcachedStore({ servers })`; to set more store options, pass that store and drop `servers`.',
        'servers',
      )
    }
    asConfigError('store', () => assertCacheStore(o.store))
  }
  const serverList = o.servers === undefined ? undefined : servers(o.servers)
  // `null` is rejected like every other option, not silently read as the default.
  const prefix = o.prefix === undefined ? 'eftc' : o.prefix
  // The prefix is part of every memcached key: printable, no spaces, no `~` (the suffix separator).
  if (typeof prefix !== 'string' || !/^[\x21-\x7d]{1,64}$/.test(prefix) || prefix.includes('~')) {
    fail(
      '`prefix` must be 1 to 64 printable ASCII characters without spaces or `~`, e.g. "myapp".',
      'prefix',
    )
  }
  const cacheName = o.cacheName === undefined ? 'express-ft-cache' : o.cacheName
  if (typeof cacheName !== 'string' || !TOKEN.test(cacheName)) {
    fail('`cacheName` must be an HTTP token (letters, digits, -), e.g. "edge-cache".', 'cacheName')
  }
  const timeoutMs = o.timeout === undefined ? 100 : ms(o.timeout, 'timeout', logger)
  if (timeoutMs < 1) fail('`timeout` must be at least 1ms, e.g. "100ms".', 'timeout')
  const pollIntervalMs =
    o.pollInterval === undefined ? 100 : ms(o.pollInterval, 'pollInterval', logger)
  if (pollIntervalMs < 5) fail('`pollInterval` must be at least 5ms, e.g. "100ms".', 'pollInterval')
  const invalidationPollMs =
    o.invalidationPoll === undefined ? 100 : ms(o.invalidationPoll, 'invalidationPoll', logger)
  // Below 10 ms the polls cost the store more than they save; above 250 ms an invalidation takes
  // visibly long to reach every process.
  if (invalidationPollMs < 10 || invalidationPollMs > 250) {
    fail(
      `\`invalidationPoll\` must be between 10ms and 250ms, e.g. '100ms' (got ${JSON.stringify(o.invalidationPoll)}; numbers are seconds).`,
      'invalidationPoll',
    )
  }
  const meterProvider = o.meterProvider
  if (
    meterProvider !== undefined &&
    (meterProvider === null ||
      typeof meterProvider !== 'object' ||
      typeof meterProvider.getMeter !== 'function')
  ) {
    fail(
      '`meterProvider` must be an OpenTelemetry MeterProvider (an object with getMeter()), e.g. new MeterProvider({ readers }) from @opentelemetry/sdk-metrics.',
      'meterProvider',
    )
  }
  const rest = {
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
    perRequestHeaders: perRequestHeaders(o.perRequestHeaders),
    hotCache: hotCache(o.hotCache, logger),
    keepSurrogateKey: boolOption(o.keepSurrogateKey, 'keepSurrogateKey', false),
    invalidationPollMs,
    meterProvider,
  }
  // Stores are built last, once every option is known to be valid: an invalid option never opens
  // a connection.
  const store =
    o.store ??
    (serverList === undefined
      ? makeDefaultStore()
      : asConfigError('servers', () => new MemcachedStore({ servers: serverList })))
  return Object.freeze({ ...route, ...rest, store, ownsStore: o.store === undefined })
}

/** Parses `cache.route(options)` against the app-level configuration. */
export function parseRouteOptions(options: RouteOptions, base: CacheConfig): RouteConfig {
  if (options !== null && typeof options === 'object')
    rejectUnknownOptions(options, ROUTE_KEYS, 'cache.route()')
  return parseRoute(options, base, 'cache.route()', base.logger)
}
