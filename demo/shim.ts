/**
 * TEMPORARY (SHIM): stands in for `stats()`, `invalidateTags()` and the `tags` route option until the
 * ResponseCache in this checkout has them. When it does, `withShim` returns the cache untouched, so
 * the demo already runs on the real API. To remove: delete this file, replace
 * `withShim(responseCache(...))` by `responseCache(...)` and `DemoCache` by `ResponseCache` in
 * app.ts and control.ts, and drop the `shim` branch marked SHIM in test/demo/dashboard.test.ts.
 */
import type { NextFunction, Request, RequestHandler, Response } from 'express'
import type { ResponseCache, RouteOptions } from '../src/index.js'

/** The counters `cache.stats()` returns (the lead's API, copied verbatim). */
export interface CacheStats {
  requests: { hit: number; stale: number; miss: number; bypass: number }
  renders: number
  coalesced: number
  locks: { won: number; lost: number }
  storeErrors: Record<string, number>
  breakers: Record<string, 'closed' | 'open' | 'half-open'>
  hot: { hits: number; entries: number; bytes: number }
  invalidations: number
}

type Tags = readonly string[] | ((req: Request) => readonly string[])

/** A ResponseCache with the API the demo is written against. */
export interface DemoCache extends RequestHandler {
  route(options?: RouteOptions & { tags?: Tags }): RequestHandler
  settled(): Promise<void>
  close(): Promise<void>
  invalidateTags(tags: string | readonly string[], options?: { soft?: boolean }): Promise<void>
  stats(): CacheStats
}

/** Which parts are shimmed, for the dashboard to say so; [] on the real API. */
export const shimmed: string[] = []

export function withShim(cache: ResponseCache): DemoCache {
  const real = cache as Partial<DemoCache>
  if (typeof real.stats === 'function' && typeof real.invalidateTags === 'function') {
    return cache as unknown as DemoCache
  }
  shimmed.push('stats', 'invalidateTags', 'tags')
  const counts: CacheStats = {
    requests: { hit: 0, stale: 0, miss: 0, bypass: 0 },
    renders: 0,
    coalesced: 0,
    locks: { won: 0, lost: 0 },
    storeErrors: {},
    breakers: {},
    hot: { hits: 0, entries: 0, bytes: 0 },
    invalidations: 0,
  }
  // Tag invalidation by generation: a tagged route keys on its tags' versions, so bumping one makes
  // new keys and the old entries are never read again.
  const versions = new Map<string, number>()
  const outcome = { HIT: 'hit', STALE: 'stale', MISS: 'miss', BYPASS: 'bypass' } as const
  const shim = function demoShim(req: Request, res: Response, next: NextFunction): void {
    res.once('finish', () => {
      const name = outcome[String(res.getHeader('x-cache')) as keyof typeof outcome]
      if (name !== undefined) counts.requests[name]++
    })
    cache(req, res, next)
  } as DemoCache
  shim.settled = () => cache.settled()
  shim.close = () => cache.close()
  shim.stats = () => structuredClone(counts)
  shim.invalidateTags = async (tags) => {
    for (const tag of typeof tags === 'string' ? [tags] : tags) {
      versions.set(tag, (versions.get(tag) ?? 0) + 1)
    }
    counts.invalidations++
  }
  shim.route = ({ tags, ...options } = {}) => {
    if (tags === undefined) return cache.route(options)
    const own = options.key
    return cache.route({
      ...options,
      key: (req) => {
        const list = typeof tags === 'function' ? tags(req) : tags
        return `${own?.(req) ?? ''}|${list.map((t) => `${t}.${versions.get(t) ?? 0}`).join(',')}`
      },
    })
  }
  return shim
}
