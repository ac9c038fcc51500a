/**
 * The contenders of the peer benchmark (../peers.ts), each mounted on an Express 5 app in front of
 * the same routes: `GET {base}/b/{kb}` sends a constant string body of 1, 10, 100 or 500 KB, and
 * `GET {base}/slow` sends the 10 KB body after a 100 ms wait (an origin that waits on a database).
 * Every handler call is counted, so the parent can tell how often each cache went to the origin.
 *
 * Bodies are strings, not Buffers: route-cache passes Buffer bodies through uncached.
 */

import type { OutgoingHttpHeaders } from 'node:http'
import { createRequire } from 'node:module'
import type { Express, NextFunction, Request, RequestHandler, Response } from 'express'
import { type Logger, pino } from 'pino'
import type { ResponseCache, ResponseCacheOptions } from '../../src/index.js'
import { MemcachedStore, responseCache } from './library.js'

export const CONTENDERS = [
  'plain',
  'ceiling',
  'eftc',
  'eftc-hot',
  'apicache',
  'route-cache',
] as const
export type ContenderId = (typeof CONTENDERS)[number]

export const LABELS: Record<ContenderId, string> = {
  plain: 'plain Express (no cache)',
  ceiling: 'ceiling: bare Map middleware',
  eftc: 'express-ft-cache, memcached',
  'eftc-hot': 'express-ft-cache, memcached + hot tier',
  apicache: 'apicache (in-process memory)',
  'route-cache': 'route-cache (in-process memory)',
}

export const SIZES_KB = [1, 10, 100, 500] as const
export const SLOW_KB = 10

/** A deterministic HTML-like body of exactly `kb` × 1000 bytes (ASCII). */
export function body(kb: number): string {
  const row = (i: number): string =>
    `<tr><td>${i}</td><td>item-${(i * 7919) % 10007}</td><td>lorem ipsum dolor sit amet</td></tr>\n`
  let out = '<!doctype html><html><body><table>\n'
  for (let i = 0; out.length < kb * 1000; i++) out += row(i)
  return out.slice(0, kb * 1000)
}

// apicache and route-cache ship no types: the little of their API used here.
interface Apicache {
  middleware(duration: string): RequestHandler
}
interface RouteCache {
  cacheSeconds(seconds: number): RequestHandler
}
const require = createRequire(import.meta.url)

export interface ContenderEnv {
  /** memcached servers for express-ft-cache. */
  readonly servers: readonly string[]
  /** Key prefix in memcached (distinct per run and contender). */
  readonly prefix: string
  /** Freshness lifetime of every cache, in seconds. */
  readonly ttlS: number
  /** Wait of the slow origin, in ms. */
  readonly originMs: number
  /** Counts one origin (handler) call for this URL. */
  readonly count: (url: string) => void
  /** express-ft-cache's logger (warnings on stderr when debugging a run); default silent. */
  readonly logger?: Logger
}

export type Mounted =
  | { readonly skipped: string }
  | { readonly skipped?: undefined; settled(): Promise<void>; close(): Promise<void> }

/**
 * The reference ceiling: a Map lookup by URL in a middleware before the routes, then one writeHead
 * and one end. A miss records what the route passes to `res.end`. Entries expire only when
 * `ttlMs` is finite (the stampede runs need expiry; the throughput runs measure the bare lookup).
 */
function ceiling(ttlMs: number): RequestHandler {
  const map = new Map<string, { headers: OutgoingHttpHeaders; body: Buffer; expires: number }>()
  const expiring = Number.isFinite(ttlMs)
  return (req: Request, res: Response, next: NextFunction): void => {
    const url = req.originalUrl
    const hit = map.get(url)
    if (hit !== undefined && (!expiring || hit.expires > Date.now())) {
      res.writeHead(200, hit.headers)
      res.end(hit.body)
      return
    }
    const end = res.end.bind(res) as (chunk?: unknown, encoding?: unknown) => Response
    ;(res as { end: unknown }).end = (chunk?: unknown, encoding?: unknown): Response => {
      if (res.statusCode === 200 && (typeof chunk === 'string' || Buffer.isBuffer(chunk))) {
        const bytes = Buffer.isBuffer(chunk)
          ? chunk
          : Buffer.from(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8')
        map.set(url, {
          headers: {
            'content-type': String(res.getHeader('content-type') ?? 'application/octet-stream'),
            'content-length': bytes.length,
          },
          body: bytes,
          expires: Date.now() + ttlMs,
        })
      }
      return end(chunk, encoding)
    }
    next()
  }
}

function expressFtCache(env: ContenderEnv, hot: boolean): ResponseCache | string {
  const store = new MemcachedStore({ servers: [...env.servers] })
  // A plain variable, not a literal: `hotCache` may not be a known option of this version yet.
  const options: ResponseCacheOptions & Record<string, unknown> = {
    store,
    prefix: env.prefix,
    ttl: env.ttlS,
    // Silent like the peers, unless a run is being debugged (store warnings under overload would
    // otherwise interleave with the report).
    logger: env.logger ?? pino({ level: 'silent' }),
  }
  if (hot) options.hotCache = true
  try {
    return responseCache(options)
  } catch (error) {
    void store.close()
    const message = error instanceof Error ? error.message : String(error)
    if (hot && message.includes('hotCache')) {
      return 'skipped: this version rejects the `hotCache` option'
    }
    throw error
  }
}

/**
 * Mounts contender `id` under `base` ('' for the root) with its own copy of the routes.
 */
export function mountContender(
  app: Express,
  id: ContenderId,
  base: string,
  env: ContenderEnv,
): Mounted {
  const handlers: RequestHandler[] = []
  let cache: ResponseCache | undefined
  /** Mounts a middleware before this contender's routes. */
  const before = (mw: RequestHandler): void => {
    if (base === '') app.use(mw)
    else app.use(base, mw)
  }
  switch (id) {
    case 'plain':
      break
    case 'ceiling':
      before(ceiling(Number.isFinite(env.ttlS) ? env.ttlS * 1000 : Number.POSITIVE_INFINITY))
      break
    // The app-level caches are mounted before the routes, as their READMEs show (`app.use(cache)`,
    // `app.use(apicache.middleware(...))`), like the ceiling; route-cache works per route only.
    case 'eftc':
    case 'eftc-hot': {
      const made = expressFtCache(env, id === 'eftc-hot')
      if (typeof made === 'string') return { skipped: made }
      cache = made
      before(made)
      break
    }
    case 'apicache': {
      const apicache = require('apicache') as Apicache
      // '1 hour' is how users write it; other lifetimes in seconds (apicache parses both).
      before(apicache.middleware(env.ttlS === 3600 ? '1 hour' : `${env.ttlS} seconds`))
      break
    }
    case 'route-cache': {
      const routeCache = require('route-cache') as RouteCache
      handlers.push(routeCache.cacheSeconds(env.ttlS))
      break
    }
  }
  for (const kb of SIZES_KB) {
    const text = body(kb)
    app.get(`${base}/b/${kb}`, ...handlers, (req: Request, res: Response): void => {
      env.count(req.originalUrl)
      res.type('html').send(text)
    })
  }
  const slowText = body(SLOW_KB)
  app.get(`${base}/slow`, ...handlers, (req: Request, res: Response): void => {
    env.count(req.originalUrl)
    setTimeout(() => res.type('html').send(slowText), env.originMs)
  })
  return {
    settled: async () => cache?.settled(),
    close: async () => cache?.close(),
  }
}
