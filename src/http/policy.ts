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
  readonly freshMs: number
  readonly graceMs: number
  readonly errorMs: number
  readonly initialAge: number
}

export type Verdict = Refusal | Acceptance

const refuse = (reason: string, transient = false): Refusal => ({ store: false, reason, transient })

const header = (h: OutgoingHttpHeaders, name: string): string | undefined => {
  const v = h[name]
  return v === undefined ? undefined : Array.isArray(v) ? v.join(', ') : String(v)
}

/**
 * Decides whether a response may be stored by a shared cache, and for how long.
 * `authorized`: the request carried Authorization; `requestNoStore`: it said Cache-Control: no-store.
 */
export function judgeResponse(
  status: number,
  headers: OutgoingHttpHeaders,
  request: { readonly authorized: boolean; readonly noStore: boolean },
  route: RouteConfig,
  now: number,
): Verdict {
  // A failed render is not a property of the resource: never stored, never remembered (and stale
  // copies stay in place; RFC 5861 §4 lets them answer instead).
  if (status >= 500) return refuse(`status ${status}`, true)
  // RFC 9111 §5.2.1.5: a request's no-store forbids storing any part of its response.
  if (request.noStore) return refuse('request no-store', true)
  // 206 needs range-aware storage, 304 has no body to serve to an unconditional request (RFC 9111
  // §3.3, §4.3.4). Both answer this request's Range or conditions (RFC 9110 §15.3.7, §15.4.5), not
  // the resource: transient, so one Range request does not mark the resource uncacheable.
  if (status === 206 || status === 304) return refuse(`status ${status}`, true)
  if (!route.statuses.has(status)) return refuse(`status ${status}`)
  const cc = parseCacheControl(headers['cache-control'] as string | string[] | undefined)
  // RFC 9111 §5.2.2.3: no-store.
  if (cc.has('no-store')) return refuse('no-store')
  // RFC 9111 §5.2.2.7: an unqualified private is for private caches only. A qualified one with no
  // field names (`private=""`) is read as unqualified: it names nothing a shared cache could drop.
  const privateFields = fieldNames(cc, 'private')
  if (cc.has('private') && privateFields.length === 0) return refuse('private')
  // RFC 9111 §5.2.2.4: an unqualified no-cache may be stored but must be revalidated before every
  // use. This cache does not revalidate with the origin, so it does not store such responses.
  const noCacheFields = fieldNames(cc, 'no-cache')
  if (cc.has('no-cache') && noCacheFields.length === 0) return refuse('no-cache')
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
  const freshMs = freshnessMs(cc, headers, route, now)
  const initialAge = ageValue(headers)
  // RFC 9111 §4.2: fresh while the freshness lifetime exceeds the current age.
  const remaining = freshMs - initialAge * 1000
  if (remaining <= 0) return refuse('stale on arrival')
  // RFC 9111 §4.2.4, §5.2.2.2, §5.2.2.8, §5.2.2.10: must-revalidate, proxy-revalidate and s-maxage
  // forbid serving stale unless the response grants it explicitly (RFC 5861 §3, §4).
  const strict = cc.has('must-revalidate') || cc.has('proxy-revalidate') || cc.has('s-maxage')
  const swr = deltaSeconds(cc, 'stale-while-revalidate')
  const sie = deltaSeconds(cc, 'stale-if-error')
  return {
    store: true,
    drop,
    vary,
    freshMs: remaining,
    graceMs: swr !== undefined ? swr * 1000 : strict ? 0 : route.graceMs,
    errorMs: sie !== undefined ? sie * 1000 : strict ? 0 : route.staleIfErrorMs,
    initialAge,
  }
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

export function requestDirectives(headers: IncomingHttpHeaders): RequestDirectives {
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
