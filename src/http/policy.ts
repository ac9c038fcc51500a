import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http'
import type { RouteConfig } from '../options.js'
import {
  type Directives,
  deltaSeconds,
  fieldNames,
  MAX_DELTA_SECONDS,
  parseCacheControl,
  parseDeltaSeconds,
} from './cache-control.js'
import { parseHttpDate, parseVary } from './headers.js'
import { targetedDirectives } from './targeted.js'

/** Why a response is not stored; `transient` ones (errors) do not leave a hit-for-miss marker. */
export interface Refusal {
  readonly store: false
  readonly reason: string
  readonly transient: boolean
}

export interface Acceptance {
  readonly store: true
  /** Response fields to leave out of the stored copy. */
  readonly drop: ReadonlySet<string>
  /** Field names of the response's own Vary, sorted, lower-case. */
  readonly vary: readonly string[]
  /** How long the copy may be used without asking the origin; 0 when every use must be validated. */
  readonly freshMs: number
  readonly graceMs: number
  readonly errorMs: number
  readonly initialAge: number
  /**
   * Once stale, the copy must not be used unless the origin validates it (no-cache, must-revalidate,
   * proxy-revalidate, s-maxage; RFC 9111 §4.2.4, §5.2.2), except inside an explicit stale-if-error.
   */
  readonly mustRevalidate: boolean
  /**
   * The stored copy carries a validator (ETag or Last-Modified), so once stale it can be revalidated
   * with a conditional request (RFC 9111 §4.3.1) instead of being fetched again in full. Always
   * false unless the cache said it revalidates ({@link JudgeOptions.revalidate}).
   */
  readonly validatable: boolean
  /**
   * How long after turning stale the copy is worth keeping in the store: the stale windows, and for
   * a validatable copy at least {@link REVALIDATION_KEEP_MS}, so a 304 can refresh it.
   */
  readonly keepMs: number
}

export type Verdict = Refusal | Acceptance

/**
 * How long a stale copy with a validator is kept for revalidation (Varnish calls this `keep`): a
 * 304 then refreshes it without the body crossing the network again (RFC 9111 §4.3.4).
 */
export const REVALIDATION_KEEP_MS = 600_000

const refuse = (reason: string, transient = false): Refusal => ({ store: false, reason, transient })

const header = (h: OutgoingHttpHeaders, name: string): string | undefined => {
  const v = h[name]
  return v === undefined ? undefined : Array.isArray(v) ? v.join(', ') : String(v)
}

/** Request facts that bear on storing its response. */
export interface RequestFacts {
  /** The request carried Authorization (RFC 9111 §3.5). */
  readonly authorized: boolean
  /** The request said Cache-Control: no-store (RFC 9111 §5.2.1.5). */
  readonly noStore: boolean
}

/** Targeted cache-control fields obeyed, first present and valid wins (RFC 9213 §2.2). */
export const DEFAULT_TARGETED_FIELDS: readonly string[] = ['cdn-cache-control']

/** What the cache using the verdict can do. */
export interface JudgeOptions {
  /** Targeted cache-control fields (RFC 9213) obeyed, in order of precedence. */
  readonly targeted?: readonly string[]
  /**
   * The cache revalidates stale copies with conditional requests (RFC 9111 §4.3): store responses
   * that are only usable after validation (no-cache, stale on arrival) when they have a validator.
   * Off by default: a cache that cannot revalidate would only re-render them on every request, and
   * never hand such a copy to a waiter.
   */
  readonly revalidate?: boolean
}

/** Decides whether a response may be stored by a shared cache, and for how long. */
export function judgeResponse(
  status: number,
  headers: OutgoingHttpHeaders,
  request: RequestFacts,
  route: RouteConfig,
  now: number,
  options: JudgeOptions = {},
): Verdict {
  const targeted = options.targeted ?? DEFAULT_TARGETED_FIELDS
  // RFC 9111 §3: only final responses are stored.
  if (status < 200) return refuse(`status ${status}`, true)
  // RFC 9111 §5.2.1.5: a request's no-store forbids storing any part of its response.
  if (request.noStore) return refuse('request no-store', true)
  // 206 needs range-aware storage, 304 has no body to serve to an unconditional request (RFC 9111
  // §3.3, §4.3.4). Both answer this request's Range or conditions (RFC 9110 §15.3.7, §15.4.5), not
  // the resource: transient, so one Range request does not mark the resource uncacheable.
  if (status === 206 || status === 304) return refuse(`status ${status}`, true)
  // RFC 9213 §2.1: a valid targeted field replaces Cache-Control and Expires for this cache.
  const target = targetedDirectives(headers, targeted)
  const cc = target ?? parseCacheControl(headers['cache-control'] as string | string[] | undefined)
  // A failed render is not a property of the resource: never stored nor remembered, even with an
  // explicit lifetime (a deliberate deviation from RFC 9111 §3: Express's error page keeps the
  // Cache-Control a route set before it threw, and one crash must not be served for max-age).
  // Stale copies stay; RFC 5861 §4 lets them answer instead.
  if (status >= 500) return refuse(`status ${status}`, true)
  const explicit = hasExplicitFreshness(cc, target === undefined ? headers : {})
  if (!explicit) {
    // RFC 9111 §3: without explicit freshness only the configured ("heuristically cacheable",
    // RFC 9110 §15.1) statuses are stored on the configured ttl.
    if (!route.statuses.has(status)) return refuse(`status ${status}`)
  }
  // RFC 9111 §5.2.2.3: no-store.
  if (cc.has('no-store')) return refuse('no-store')
  // RFC 9111 §5.2.2.7: an unqualified private is for private caches only. A qualified one with no
  // field names (`private=""`) is read as unqualified: it names nothing a shared cache could drop.
  const privateFields = fieldNames(cc, 'private')
  if (cc.has('private') && privateFields.length === 0) return refuse('private')
  const validatable =
    options.revalidate === true &&
    (header(headers, 'etag') !== undefined || header(headers, 'last-modified') !== undefined)
  // RFC 9111 §5.2.2.4: an unqualified no-cache may be stored but every use must be validated; worth
  // storing only with a validator, which lets a 304 answer instead of the whole body.
  const noCacheFields = fieldNames(cc, 'no-cache')
  const noCache = cc.has('no-cache') && noCacheFields.length === 0
  if (noCache && !validatable) return refuse('no-cache')
  // RFC 9111 §3.5: a response to an authenticated request is shared only when it says so.
  if (
    request.authorized &&
    !cc.has('public') &&
    !cc.has('s-maxage') &&
    !cc.has('must-revalidate')
  ) {
    return refuse('authorization', true)
  }
  const vary = parseVary(header(headers, 'vary'))
  // RFC 9111 §4.1: Vary: * never matches a later request.
  if (vary.includes('*')) return refuse('vary *')
  // RFC 9111 §3.1, §5.2.2.4, §5.2.2.7: qualified no-cache/private name fields a shared cache must
  // not store (no-cache: not reuse without revalidation); the rest of the response may be stored.
  const drop = new Set([...noCacheFields, ...privateFields])
  if (headers['set-cookie'] !== undefined) {
    // A cookie is one visitor's; replaying it to the next is the classic cache leak.
    if (!route.stripSetCookie) return refuse('set-cookie')
    drop.add('set-cookie')
  }
  const lifetimeMs = freshnessMs(cc, target === undefined ? headers : {}, route, now)
  const initialAge = ageValue(headers)
  // RFC 9111 §4.2: fresh while the freshness lifetime exceeds the current age. A stale copy is
  // still worth storing when it can be validated (RFC 9111 §4.3.1): the next use sends a condition.
  const remaining = noCache ? 0 : Math.max(0, lifetimeMs - initialAge * 1000)
  if (remaining <= 0 && !validatable) return refuse('stale on arrival')
  // RFC 9111 §4.2.4, §5.2.2.2, §5.2.2.8, §5.2.2.10: must-revalidate, proxy-revalidate and s-maxage
  // forbid serving stale unless the response grants it explicitly (RFC 5861 §3, §4); no-cache
  // forbids any use without validation, so stale-while-revalidate cannot apply to it.
  const strict =
    noCache || cc.has('must-revalidate') || cc.has('proxy-revalidate') || cc.has('s-maxage')
  // RFC 5861: the response's own windows replace the configured ones, even when those are 0: the
  // origin states how much staleness it tolerates for this response. A copy stored already stale
  // (max-age=0 with a validator) gets no configured grace: the origin asked for a check on each use.
  const swr = noCache ? undefined : deltaSeconds(cc, 'stale-while-revalidate')
  const sie = deltaSeconds(cc, 'stale-if-error')
  const graceMs = swr !== undefined ? swr * 1000 : strict || remaining === 0 ? 0 : route.graceMs
  const errorMs = sie !== undefined ? sie * 1000 : strict ? 0 : route.staleIfErrorMs
  return {
    store: true,
    drop,
    vary,
    freshMs: remaining,
    graceMs,
    errorMs,
    initialAge,
    mustRevalidate: strict,
    validatable,
    keepMs: Math.max(graceMs, errorMs, validatable ? REVALIDATION_KEEP_MS : 0),
  }
}

/**
 * Explicit freshness (RFC 9111 §3, §4.2.1): a lifetime the response states (max-age, s-maxage,
 * Expires) or `public`, which makes any final status storable. Without it only the configured
 * statuses are stored, on the configured ttl.
 */
export function hasExplicitFreshness(cc: Directives, headers: OutgoingHttpHeaders): boolean {
  return (
    cc.has('max-age') ||
    cc.has('s-maxage') ||
    cc.has('public') ||
    header(headers, 'expires') !== undefined
  )
}

/**
 * age_value (RFC 9111 §4.2.3): the Age header as delta-seconds (RFC 9111 §5.1), capped at 2^31
 * (§1.2.2); 0 when absent or invalid ("if not available"). Of repeated values the first is used
 * (RFC 9111 §4.2.1).
 */
function ageValue(headers: OutgoingHttpHeaders): number {
  const first = header(headers, 'age')?.split(',')[0]?.trim()
  return parseDeltaSeconds(first) ?? 0
}

/**
 * Freshness lifetime (RFC 9111 §4.2.1): s-maxage (shared caches) beats max-age beats Expires − Date;
 * without any, the configured ttl. With `responseTtl: false` a stated lifetime can only shorten ttl.
 */
function freshnessMs(
  cc: Directives,
  headers: OutgoingHttpHeaders,
  route: RouteConfig,
  now: number,
): number {
  let statedMs: number | undefined
  const directive = cc.has('s-maxage') ? 's-maxage' : cc.has('max-age') ? 'max-age' : undefined
  if (directive !== undefined) {
    // RFC 9111 §4.2.1: invalid freshness information (`max-age=-1`, `max-age=soon`) counts as stale.
    statedMs = (deltaSeconds(cc, directive) ?? 0) * 1000
  } else {
    const expires = header(headers, 'expires')
    if (expires !== undefined) {
      // RFC 9111 §5.3: an invalid Expires (e.g. "0") means already expired. RFC 9111 §4.2.1: the
      // lifetime is Expires − Date; without a valid Date, the time the response was received.
      const at = parseHttpDate(expires, now)
      const date = parseHttpDate(header(headers, 'date'), now) ?? now
      statedMs = at === undefined ? 0 : Math.min(at - date, MAX_DELTA_SECONDS * 1000)
    }
  }
  if (statedMs === undefined) return route.ttlMs
  return route.responseTtl ? statedMs : Math.min(statedMs, route.ttlMs)
}

/** What a request says about caching (RFC 9111 §5.2.1, §5.4). */
export interface RequestDirectives {
  readonly noCache: boolean
  readonly noStore: boolean
  readonly onlyIfCached: boolean
}

const NO_DIRECTIVES: RequestDirectives = Object.freeze({
  noCache: false,
  noStore: false,
  onlyIfCached: false,
})

export function requestDirectives(headers: IncomingHttpHeaders): RequestDirectives {
  // Most requests carry neither field: no parse, no object.
  if (headers['cache-control'] === undefined && headers.pragma === undefined) return NO_DIRECTIVES
  const cc = parseCacheControl(headers['cache-control'])
  const pragma = headers.pragma
  return {
    // RFC 9111 §5.2.1.4: no-cache; §5.2.1.1: max-age=0 (any stored response is too old);
    // §5.4: Pragma: no-cache counts only when Cache-Control is absent.
    noCache:
      cc.has('no-cache') ||
      deltaSeconds(cc, 'max-age') === 0 ||
      (headers['cache-control'] === undefined &&
        typeof pragma === 'string' &&
        /(^|,)\s*no-cache\s*(,|$)/i.test(pragma)),
    // RFC 9111 §5.2.1.5.
    noStore: cc.has('no-store'),
    // RFC 9111 §5.2.1.7.
    onlyIfCached: cc.has('only-if-cached'),
  }
}
