import type { NextFunction, Request, RequestHandler, Response } from 'express'
import { CacheEngine, type ResponseCache } from './middleware.js'
import { parseRouteOptions, type ResponseCacheOptions, type RouteOptions } from './options.js'

/** `app.use(responseCache)` passes a request where options belong: say how to fix it. */
function rejectRequestAsOptions(value: unknown, call: string): void {
  if (value !== null && typeof value === 'object' && 'method' in value && 'headers' in value) {
    throw new TypeError(
      `express-ft-cache: ${call} is a factory and was used as a middleware. Call it: app.use(${call.replace('()', '({ ttl: 60 })')}).`,
    )
  }
}

/**
 * Creates the response cache middleware. Options are parsed and validated once, here; invalid
 * options throw a TypeError that says how to fix them.
 */
export function responseCache(options: ResponseCacheOptions = {}): ResponseCache {
  rejectRequestAsOptions(options, 'responseCache()')
  const engine = new CacheEngine(options)
  const config = engine.config
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
  cache.settled = () => engine.settled()
  cache.close = () => engine.close()
  return cache
}
