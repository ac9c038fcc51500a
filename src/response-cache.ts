import type { NextFunction, Request, RequestHandler, Response } from 'express'
import { ConfigError } from './config-error.js'
import { CacheEngine, type ResponseCache } from './middleware.js'
import { parseRouteOptions, type ResponseCacheOptions, type RouteOptions } from './options.js'
import { probeMemcached } from './reachability.js'
import { MemcachedStore } from './store/memcached.js'

/** `app.use(responseCache)` passes a request where options belong: say how to fix it. */
function rejectRequestAsOptions(value: unknown, call: string): void {
  if (value !== null && typeof value === 'object' && 'method' in value && 'headers' in value) {
    throw new ConfigError(
      `${call} is a factory and was used as a middleware. Call it: app.use(${call.replace('()', '({ ttl: 60 })')}).`,
    )
  }
}

/**
 * Creates the response cache middleware. Options are parsed and validated once, here; invalid
 * options throw a {@link ConfigError} (code EFTC_OPTION) that says how to fix them.
 */
export function responseCache(options: ResponseCacheOptions = {}): ResponseCache {
  rejectRequestAsOptions(options, 'responseCache()')
  const engine = new CacheEngine(options)
  const config = engine.config
  // Only a store the cache built itself is probed: a given store is its owner's to check.
  const probe =
    config.ownsStore && config.store instanceof MemcachedStore
      ? probeMemcached(config.store.servers, config.prefix, config.timeoutMs, config.logger)
      : undefined
  const cache = function expressFtCache(req: Request, res: Response, next: NextFunction): void {
    engine.handle(req, res, next, config, false)
  } as ResponseCache
  cache.route = (routeOptions: RouteOptions = {}): RequestHandler => {
    rejectRequestAsOptions(routeOptions, 'cache.route()')
    const route = parseRouteOptions(routeOptions, config)
    return function expressFtCacheRoute(req: Request, res: Response, next: NextFunction): void {
      engine.handle(req, res, next, route, true)
    }
  }
  cache.invalidate = (paths) => engine.invalidate(paths)
  cache.invalidateTags = (tags, options) => engine.invalidateTags(tags, options)
  cache.invalidateAll = () => engine.invalidateAll()
  cache.stats = () => engine.stats()
  cache.settled = () => engine.settled()
  cache.close = async () => {
    await probe?.cancel()
    await engine.close()
  }
  return cache
}
