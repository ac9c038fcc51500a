/**
 * The engine: sequences the stages of src/engine for each request, once, top to bottom —
 * classify → (hot tier) → lookup → decide → coordinate → render | respond — and holds what they
 * share. Nothing else lives here.
 */
import type { NextFunction, Request, RequestHandler, Response } from 'express'
import type { Logger } from 'pino'
import { classify, type Lookup as LookupRequest, requestTags } from './engine/classify.js'
import { Coordinator, type Plan } from './engine/coordinate.js'
import { decide } from './engine/decide.js'
import { HotTier } from './engine/hot-tier.js'
import { ALL_TAG, Invalidations, invalidateAfterUnsafe, pathTag } from './engine/invalidate.js'
import { Lookup } from './engine/lookup.js'
import { instrument } from './engine/metrics.js'
import { Renderer, type RenderState, renders } from './engine/render.js'
import { Responder } from './engine/respond.js'
import { type CacheStats, Counters, type Outcome } from './engine/stats.js'
import { StoreGuard } from './guard.js'
import { RateLimitedLog, silentLogger } from './logging.js'
import {
  type CacheConfig,
  parseOptions,
  type ResponseCacheOptions,
  type RouteConfig,
  type RouteOptions,
} from './options.js'
import { MemcachedStore } from './store/memcached.js'

/**
 * What `X-Cache` says: served fresh, served stale, confirmed by the handler with a 304 (body from
 * the cache), rendered by the handler, or not cached at all.
 */
export type CacheOutcome = Outcome

/** The middleware returned by `responseCache()`, with per-route options, invalidation and shutdown. */
export interface ResponseCache extends RequestHandler {
  /** A middleware for one route, whose options override the app-level ones. */
  route(options?: RouteOptions): RequestHandler
  /**
   * Invalidates every entry of these paths across the fleet: every query string, host, scheme,
   * custom key and Vary variant. Resolves once recorded; rejects with code EFTC_INVALIDATION when
   * the store could not record it (retry).
   */
  invalidate(paths: string | readonly string[]): Promise<void>
  /**
   * Invalidates every entry carrying one of these tags (route `tags`, or the response's
   * `Surrogate-Key`). Hard (default): they become misses. Soft: they turn stale and are served
   * stale while one request regenerates them.
   */
  invalidateTags(tags: string | readonly string[], options?: { soft?: boolean }): Promise<void>
  /** Invalidates every entry of this cache (its prefix), fleet-wide. */
  invalidateAll(): Promise<void>
  /** Counters since the cache was created. */
  stats(): CacheStats
  /** Resolves when every store write started so far has finished (useful in tests and shutdown). */
  settled(): Promise<void>
  /** Waits for pending writes, then closes the store's connections. */
  close(): Promise<void>
}

declare const __VERSION__: string | undefined
const VERSION = typeof __VERSION__ === 'string' ? __VERSION__ : '0.0.0'

/**
 * The path of what `invalidate()` was given: a path, a path with a query, or an absolute URL. Paths
 * are compared as requests send them: percent-encoded (`/café` matches a request for `/caf%C3%A9`).
 */
function pathOfTarget(target: string): string {
  try {
    return new URL(target, 'http://localhost').pathname
  } catch {
    return target.split(/[?#]/)[0] ?? target
  }
}

function reqLog(req: Request): Logger | undefined {
  return (req as Request & { log?: Logger }).log
}

export class CacheEngine {
  readonly config: CacheConfig
  private readonly logger: Logger
  private readonly log: RateLimitedLog
  private readonly counters = new Counters()
  private readonly guard: StoreGuard
  private readonly hot: HotTier | undefined
  private readonly invalidations: Invalidations
  private readonly lookup: Lookup
  private readonly coordinator: Coordinator
  private readonly responder: Responder
  private readonly renderer: Renderer
  private readonly pending = new Set<Promise<unknown>>()
  private closed = false

  constructor(options: ResponseCacheOptions) {
    const cfg = parseOptions(options, () => new MemcachedStore())
    this.config = cfg
    this.logger = cfg.logger ?? silentLogger
    this.log = new RateLimitedLog(this.logger)
    const timer = instrument(cfg.meterProvider, () => this.stats(), VERSION)
    this.guard = new StoreGuard(cfg.store, this.log, Math.max(cfg.timeoutMs, 1000), {
      error: (kind) => this.counters.storeError(kind),
      duration: (op, ms) => timer.duration(op, ms),
    })
    this.hot =
      cfg.hotCache === undefined
        ? undefined
        : new HotTier(cfg.hotCache.maxBytes, cfg.hotCache.ttlMs)
    this.invalidations = new Invalidations(
      this.guard,
      cfg.prefix,
      cfg.invalidationPollMs,
      cfg.timeoutMs,
    )
    const track = (p: Promise<unknown>): void => this.track(p)
    this.lookup = new Lookup(this.guard, this.invalidations, this.hot, cfg.timeoutMs, track)
    this.coordinator = new Coordinator(
      cfg,
      this.guard,
      this.lookup,
      this.counters,
      track,
      () => this.closed,
    )
    this.responder = new Responder(cfg, this.counters, this.logger)
    this.renderer = new Renderer({
      cfg,
      guard: this.guard,
      log: this.log,
      logger: this.logger,
      counters: this.counters,
      responder: this.responder,
      invalidations: this.invalidations,
      hot: this.hot,
      variants: this.lookup.variants,
      regenerating: this.coordinator.regenerating,
      track,
    })
  }

  /** The request handler; never rejects and never calls next twice. */
  handle(
    req: Request,
    res: Response,
    next: NextFunction,
    route: RouteConfig,
    fromRoute: boolean,
  ): void {
    const existing = renders.get(req)
    if (existing !== undefined) {
      if (fromRoute) this.adoptRoute(req, res, next, existing, route)
      else next()
      return
    }
    const c = classify(req, route, this.config, this.closed)
    switch (c.kind) {
      case 'bypass':
        this.responder.mark(
          req,
          res,
          'BYPASS',
          `fwd=${c.detail === 'method' ? 'method' : `bypass; detail=${c.detail}`}`,
        )
        next()
        return
      case 'unsafe':
        invalidateAfterUnsafe(req, res, c.path, (tags) =>
          this.track(this.recordInvalidation(tags, false)),
        )
        this.responder.mark(req, res, 'BYPASS', 'fwd=method')
        next()
        return
      case 'key-error':
        this.log.warn(
          'key',
          c.error,
          'express-ft-cache: the `key` option threw; passing the request through uncached',
          reqLog(req),
        )
        this.responder.mark(req, res, 'BYPASS', 'fwd=bypass; detail=key-error')
        next()
        return
    }
    if (c.directives.noCache && this.config.honorClientNoCache) {
      this.responder.mark(req, res, 'MISS', 'fwd=request')
      if (c.isGet) this.renderRequest(req, res, c, route)
      next()
      return
    }
    // The hot tier answers synchronously, before any promise exists.
    const now = Date.now()
    const hot = this.lookup.hotHit(req, c.primary, c.tags, now)
    if (hot !== undefined && (c.credential === undefined || hot.shared)) {
      this.counters.hotHits++
      this.responder.serve(req, res, hot, 'HIT', undefined)
      return
    }
    this.run(req, res, c, route).then(
      (proceed) => {
        if (proceed) next()
      },
      (err: unknown) => {
        // A bug of ours must not take the request down: log it and let the handler answer.
        this.log.warn(
          'internal',
          err,
          'express-ft-cache: internal error; passing the request through',
        )
        if (!res.headersSent) next()
      },
    )
  }

  /** Resolves true when the request should go on to the handler, false when the cache answered. */
  private async run(
    req: Request,
    res: Response,
    c: LookupRequest,
    route: RouteConfig,
  ): Promise<boolean> {
    const log = reqLog(req)
    const deadline = Date.now() + this.config.timeoutMs
    const found = await this.lookup.read(req, c.primary, c.tags, deadline, log, true)
    const now = Date.now()
    const d = decide(found.entry, found.validity, {
      now,
      isGet: c.isGet,
      onlyIfCached: c.directives.onlyIfCached,
      credentialed: c.credential !== undefined,
      regenerating: this.coordinator.isRegenerating(found.entryKey, route, now),
      lockLost: this.coordinator.lockLost(found.entryKey, now, found.entry),
    })
    let plan: Plan
    switch (d.kind) {
      case 'hit':
        return this.serve(req, res, d.entry, 'HIT', undefined)
      case 'stale':
        return this.serve(req, res, d.entry, 'STALE', undefined)
      case 'unavailable':
        this.responder.mark(req, res, 'MISS', 'fwd=miss; detail=only-if-cached')
        res.status(504).end()
        return false
      case 'head':
        // A HEAD miss is not stored: Express sends no body for HEAD, so there is nothing to keep.
        this.responder.mark(req, res, 'MISS', 'fwd=miss')
        return true
      case 'private':
        this.responder.mark(req, res, 'BYPASS', `fwd=request; detail=${c.credential}`)
        this.renderRequest(req, res, c, route, found.entryKey, d.fallback)
        return true
      case 'pass':
        this.responder.mark(req, res, 'MISS', 'fwd=miss; detail=hit-for-miss')
        this.renderRequest(req, res, c, route, found.entryKey, d.fallback)
        return true
      case 'regenerate':
        plan = await this.coordinator.regenerate(req, c, route, found, d.entry, deadline, log)
        break
      case 'cold':
        plan = await this.coordinator.cold(
          req,
          c,
          route,
          found,
          d.fallback,
          d.validate,
          deadline,
          log,
        )
        break
    }
    if (plan.kind === 'serve') return this.serve(req, res, plan.entry, plan.outcome, plan.detail)
    this.responder.mark(req, res, 'MISS', plan.detail)
    this.renderer.render(req, res, plan.plan)
    return true
  }

  private serve(
    req: Request,
    res: Response,
    entry: Parameters<Responder['serve']>[2],
    outcome: 'HIT' | 'STALE',
    detail: string | undefined,
  ): false {
    this.responder.serve(req, res, entry, outcome, detail)
    return false
  }

  /** A render outside coordination: credentialed, hit-for-miss or client-forced. */
  private renderRequest(
    req: Request,
    res: Response,
    c: LookupRequest,
    route: RouteConfig,
    entryKey = this.lookup.entryKey(req, c.primary),
    fallback: Parameters<Renderer['render']>[2]['fallback'] = undefined,
  ): void {
    this.renderer.render(req, res, {
      route,
      primary: c.primary,
      entryKey,
      tags: c.tags,
      store: true,
      markPass: false,
      credential: c.credential,
      fallback,
    })
  }

  /**
   * `cache.route()` after `app.use(cache)`: the app-level middleware already looked up and armed the
   * capture. Route options that only change how the result is stored are applied in place; options
   * that change the key or the tags, or `enabled: false`, take the request over.
   */
  private adoptRoute(
    req: Request,
    res: Response,
    next: NextFunction,
    state: RenderState,
    route: RouteConfig,
  ): void {
    const sameKey = route.key === state.route.key && route.vary.join() === state.route.vary.join()
    if (route.enabled && sameKey && route.cookies === state.route.cookies) {
      // Same key: only how the result is stored changes (ttl, tags, ...).
      state.route = route
      if (route.tags !== undefined) state.tags = requestTags(req, route)
      next()
      return
    }
    // A route that disables caching or changes the key leaves the app-level key unrendered: mark it
    // so its lookups stop queueing for a response that is never stored there. A route that only
    // reads cookies differently renders the same key again: no marker.
    state.abandoned = true
    this.renderer.settleUncacheable(state, sameKey && route.enabled)
    renders.delete(req)
    // Give the request back the conditions the app-level capture had set aside, and only those:
    // a revalidation put the stored copy's validators there, which the client never sent.
    if (state.plan.validate !== undefined) {
      delete req.headers['if-none-match']
      delete req.headers['if-modified-since']
    }
    if (state.conditional !== undefined) Object.assign(req.headers, state.conditional)
    if (!route.enabled) {
      this.responder.mark(req, res, 'BYPASS', 'fwd=bypass; detail=disabled')
      next()
      return
    }
    this.handle(req, res, next, route, false)
  }

  private async recordInvalidation(tags: readonly string[], soft: boolean): Promise<void> {
    this.counters.invalidations++
    await this.invalidations.invalidate(tags, soft)
  }

  invalidate(paths: string | readonly string[]): Promise<void> {
    const list = typeof paths === 'string' ? [paths] : [...paths]
    return this.recordInvalidation(
      list.map((p) => pathTag(pathOfTarget(p))),
      false,
    )
  }

  invalidateTags(
    tags: string | readonly string[],
    options: { soft?: boolean } = {},
  ): Promise<void> {
    const list = typeof tags === 'string' ? [tags] : [...tags]
    return this.recordInvalidation(list, options.soft === true)
  }

  invalidateAll(): Promise<void> {
    return this.recordInvalidation([ALL_TAG], false)
  }

  stats(): CacheStats {
    const store = this.config.store as { breakerStates?: () => CacheStats['breakers'] }
    return this.counters.snapshot(
      { entries: this.hot?.entries ?? 0, bytes: this.hot?.bytes ?? 0 },
      typeof store.breakerStates === 'function' ? store.breakerStates() : {},
    )
  }

  /** Keeps a background write for `settled()`/`close()`; it can never become an unhandled rejection. */
  private track(p: Promise<unknown>): void {
    const tracked = p.then(
      () => undefined,
      (err: unknown) => this.log.warn('internal', err, 'express-ft-cache: background write failed'),
    )
    this.pending.add(tracked)
    void tracked.finally(() => this.pending.delete(tracked))
  }

  async settled(): Promise<void> {
    while (this.pending.size > 0) await Promise.allSettled([...this.pending])
  }

  async close(): Promise<void> {
    this.closed = true
    this.invalidations.close()
    // Store calls end on unref'd deadline timers; hold the loop open while we wait for them, or a
    // process awaiting close() could exit silently under the caller (memjs requests that never
    // settle after a server-side close leave nothing else alive).
    const keepAlive = setInterval(() => undefined, 1000)
    try {
      await this.settled()
      await this.config.store.close?.()
    } finally {
      clearInterval(keepAlive)
    }
  }
}
