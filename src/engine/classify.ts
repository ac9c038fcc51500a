/**
 * Classify: which requests the cache may answer, under which key, with which tags. Reads `req`
 * only; no store, no response.
 */
import type { Request } from 'express'
import { isSafeMethod } from '../http/method.js'
import { type RequestDirectives, requestDirectives } from '../http/policy.js'
import { pathOf, resourceFor } from '../key.js'
import type { CacheConfig, RouteConfig } from '../options.js'
import { pathTag } from './invalidate.js'

/** A request the cache looks up. */
export interface Lookup {
  readonly kind: 'lookup'
  readonly primary: string
  readonly path: string
  /** Tags every entry rendered for this request carries: its path tag and the route's tags. */
  readonly tags: readonly string[]
  readonly isGet: boolean
  readonly directives: RequestDirectives
  /**
   * RFC 9111 §3.5: Authorization, or (by default) a Cookie that is not an ignored analytics
   * cookie. Such a request is answered only from entries whose response said `public` or
   * `s-maxage`, and its own response is stored only when it says so.
   */
  readonly credential: 'authorization' | 'cookie' | undefined
}

export type Classified =
  | Lookup
  /** Not for the cache; `detail` goes into Cache-Status. */
  | { readonly kind: 'bypass'; readonly detail: string }
  /** RFC 9111 §4.4: an unsafe method; a non-error response invalidates what it names. */
  | { readonly kind: 'unsafe'; readonly path: string }
  /** The `key` option threw. */
  | { readonly kind: 'key-error'; readonly error: unknown }

export function classify(
  req: Request,
  route: RouteConfig,
  cfg: CacheConfig,
  closed: boolean,
): Classified {
  const method = req.method
  if (method !== 'GET' && method !== 'HEAD') {
    if (isSafeMethod(method) || !cfg.invalidateOnUnsafe) return { kind: 'bypass', detail: 'method' }
    return { kind: 'unsafe', path: pathOf(req) }
  }
  if (!route.enabled || closed) return { kind: 'bypass', detail: 'disabled' }
  const cookie = req.headers.cookie
  if (
    cookie !== undefined &&
    cfg.sessionCookies.length > 0 &&
    hasCookie(cookie, cfg.sessionCookies)
  )
    return { kind: 'bypass', detail: 'session' }
  let custom: string | undefined
  if (route.key !== undefined) {
    try {
      const part = route.key(req)
      if (part !== undefined && typeof part !== 'string')
        throw new TypeError('`key` must return a string or undefined')
      // A route's own key never equals the app-level key, even when it returns undefined: the
      // app-level lookup (which runs first) must not find what a keyed route rendered.
      custom = route.key === cfg.key ? part : JSON.stringify(['route', part ?? null])
    } catch (error) {
      return { kind: 'key-error', error }
    }
  }
  const { primary, path, pathTags } = resourceFor(req, cfg.prefix, custom)
  return {
    kind: 'lookup',
    primary,
    path,
    tags: route.tags === undefined ? pathTags : requestTags(req, route, path),
    isGet: method === 'GET',
    directives: requestDirectives(req.headers),
    // With both, the cookie rule wins: it is the stricter (must-revalidate shares an Authorization
    // response, RFC 9111 §3.5, but not a cookie session's page), and the render checks both.
    credential:
      cookie !== undefined && route.cookies === 'private' && counts(cookie, route)
        ? 'cookie'
        : req.headers.authorization !== undefined
          ? 'authorization'
          : undefined,
  }
}

/** The tags of what this request renders: its path tag and the route's tags. */
export function requestTags(
  req: Request,
  route: RouteConfig,
  path = pathOf(req),
): readonly string[] {
  const routeTags = route.tags?.(req) ?? []
  return routeTags.length === 0 ? [pathTag(path)] : [pathTag(path), ...routeTags]
}

/** Cookie names in a Cookie header (RFC 6265 §5.4: `name=value` pairs separated by `;`). */
function* cookieNames(header: string): Generator<string> {
  for (const part of header.split(';')) {
    const eq = part.indexOf('=')
    const name = (eq === -1 ? part : part.slice(0, eq)).trim()
    if (name !== '') yield name
  }
}

function hasCookie(header: string, names: readonly string[]): boolean {
  for (const name of cookieNames(header)) if (names.includes(name)) return true
  return false
}

/** Whether a Cookie header holds any cookie that is not ignored (analytics cookies by default). */
function counts(header: string, route: RouteConfig): boolean {
  for (const name of cookieNames(header)) if (!route.isIgnoredCookie(name)) return true
  return false
}
