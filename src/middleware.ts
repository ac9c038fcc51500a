import type { OutgoingHttpHeaders } from 'node:http'
import type { NextFunction, Request, RequestHandler, Response } from 'express'
import type { Logger } from 'pino'
import { type Captured, captureResponse, type Replier } from './capture.js'
import { decodeEntry, type Entry, encodeEntry, isServable, type ResponseEntry } from './entry.js'
import { FAILED, StoreGuard } from './guard.js'
import { isNotModified, NOT_MODIFIED_FIELDS } from './http/conditional.js'
import { getStored, toStoredHeaders } from './http/headers.js'
import { type Acceptance, judgeResponse, requestDirectives, type Verdict } from './http/policy.js'
import { canonicalQuery, primaryKey, resourceId, variantKey, varyValues } from './key.js'
import { bindOutcome, RateLimitedLog, silentLogger } from './logging.js'
import { acquireLock, Flight, type FlightResult, type Lock, releaseLock, sleep } from './mint.js'
import {
  type CacheConfig,
  parseOptions,
  type ResponseCacheOptions,
  type RouteConfig,
  type RouteOptions,
} from './options.js'
import { MemcachedStore } from './store/memcached.js'
import { MAX_RELATIVE_TTL_SECONDS } from './store/types.js'

/** What `X-Cache` says: served fresh, served stale, rendered by the handler, or not cached at all. */
export type CacheOutcome = 'HIT' | 'STALE' | 'MISS' | 'BYPASS'

/** The middleware returned by `responseCache()`, with per-route options and shutdown. */
export interface ResponseCache extends RequestHandler {
  /** A middleware for one route, whose options override the app-level ones. */
  route(options?: RouteOptions): RequestHandler
  /** Resolves when every store write started so far has finished (useful in tests and shutdown). */
  settled(): Promise<void>
  /** Waits for pending writes, then closes the store's connections. */
  close(): Promise<void>
}

const UNSAFE = new Set(['POST', 'PUT', 'PATCH', 'DELETE'])
/** RFC 5861 §4: stale-if-error covers these statuses (and a thrown error, which Express turns into a 500). */
const STALE_IF_ERROR = new Set([500, 502, 503, 504])
/** Fields of the render's own response that a 304 answering its client keeps. */
const PER_RESPONSE_FIELDS = new Set(['set-cookie', 'x-cache', 'cache-status'])

/** How a request that goes to the handler relates to the cache. */
interface Render {
  route: RouteConfig
  /** The key a cacheable result is stored under (primary, or variant when a variants record exists). */
  readonly primary: string
  /** Store the result when cacheable. */
  store: boolean
  /** Write a hit-for-miss marker when the result is uncacheable. */
  readonly markPass: boolean
  flight: Flight | undefined
  lock: Lock | undefined
  /** A stale copy that may answer instead of a 5xx (stale-if-error). */
  readonly fallback: ResponseEntry | undefined
  /** Conditional headers taken off the request so the handler renders a full, storable 200. */
  readonly conditional: { 'if-none-match'?: string; 'if-modified-since'?: string } | undefined
  verdict: Verdict | undefined
  /** Set when a route-level `cache.route()` took this request over from the app-level middleware. */
  abandoned: boolean
  /** Why the handler's output is held back: a 5xx replaced by the stale copy, or a 304 to answer. */
  divert?: 'stale' | 'conditional'
}

interface Lookup {
  readonly failed: boolean
  readonly entry: Entry | undefined
  /** Where this request's response lives: the primary key or its variant key. */
  readonly entryKey: string
  /** The varied request headers, when the primary key held a variants record. */
  readonly varyNames: readonly string[]
}

export class CacheEngine {
  readonly config: CacheConfig
  private readonly guard: StoreGuard
  private readonly log: RateLimitedLog
  private readonly logger: Logger
  /** In-process single flights, by entry key. */
  private readonly flights = new Map<string, Flight>()
  /**
   * Entry keys this process is regenerating, with when it started: their other requests get the
   * stale copy without asking for the lock, until the regeneration outlives its lock TTL.
   */
  private readonly regenerating = new Map<string, number>()
  private readonly pending = new Set<Promise<unknown>>()
  private readonly kRender = Symbol('express-ft-cache.render')
  private closed = false

  constructor(options: ResponseCacheOptions) {
    this.config = parseOptions(options, () => new MemcachedStore())
    this.logger = this.config.logger ?? silentLogger
    this.log = new RateLimitedLog(this.logger)
    this.guard = new StoreGuard(this.config.store, this.log, Math.max(this.config.timeoutMs, 1000))
  }

  /** The request handler; never rejects and never calls next twice. */
  handle(
    req: Request,
    res: Response,
    next: NextFunction,
    route: RouteConfig,
    fromRoute: boolean,
  ): void {
    const existing = (req as unknown as Record<symbol, Render | undefined>)[this.kRender]
    if (existing !== undefined) {
      if (fromRoute) this.adoptRoute(req, res, next, existing, route)
      else next()
      return
    }
    this.start(req, res, route).then(
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
  private async start(req: Request, res: Response, route: RouteConfig): Promise<boolean> {
    const cfg = this.config
    const method = req.method
    if (method !== 'GET' && method !== 'HEAD') {
      if (cfg.invalidateOnUnsafe && UNSAFE.has(method)) this.invalidateAfter(req, res, route)
      this.mark(req, res, 'BYPASS', 'fwd=method')
      return true
    }
    if (!route.enabled || this.closed) return this.bypass(req, res, 'detail=disabled')
    if (cfg.sessionCookies.length > 0 && hasCookie(req, cfg.sessionCookies)) {
      return this.bypass(req, res, 'detail=session')
    }
    const custom = this.customKey(req, route)
    if (custom === FAILED) return this.bypass(req, res, 'detail=key-error')
    const primary = primaryKey(cfg.prefix, resourceId(req, custom))
    const directives = requestDirectives(req.headers)
    const isGet = method === 'GET'

    // RFC 9111 §3.5: a stored response never answers a request with Authorization; its own response
    // is stored only when it says it may be shared (checked in judgeResponse).
    if (req.headers.authorization !== undefined) {
      this.mark(req, res, 'BYPASS', 'fwd=request; detail=authorization')
      if (isGet) this.render(req, res, { route, primary, store: true, markPass: false })
      return true
    }
    if (directives.noCache && cfg.honorClientNoCache) {
      this.mark(req, res, 'MISS', 'fwd=request')
      if (isGet) this.render(req, res, { route, primary, store: true, markPass: false })
      return true
    }

    const deadline = Date.now() + cfg.timeoutMs
    const found = await this.lookup(req, primary, deadline)
    const now = Date.now()
    const entry = found.entry?.kind === 'response' ? found.entry : undefined

    if (entry !== undefined) {
      if (now < entry.staleAt) return this.serve(req, res, entry, 'HIT')
      if (now < entry.graceUntil) {
        // HEAD cannot regenerate a GET body, and only-if-cached must not reach the origin.
        // A regeneration older than its lock is presumed hung: the lock has expired, so compete again.
        const regenStarted = this.regenerating.get(found.entryKey) ?? Number.NEGATIVE_INFINITY
        if (!isGet || directives.onlyIfCached || now - regenStarted < route.lockTtlS * 1000) {
          return this.serve(req, res, entry, 'STALE')
        }
        const lock = await acquireLock(
          this.guard,
          found.entryKey,
          route.lockTtlS,
          deadline,
          reqLog(req),
        )
        if (lock === 'lost' || lock === 'failed') return this.serve(req, res, entry, 'STALE')
        const fresher = await this.freshAfterLock(req, primary, lock, deadline)
        if (fresher !== undefined) return this.serve(req, res, fresher.entry, 'HIT')
        // This request won the fleet-wide lock: it renders; everyone else keeps getting the stale copy.
        this.mark(req, res, 'MISS', 'fwd=stale')
        this.regenerating.set(found.entryKey, Date.now())
        this.render(req, res, {
          route,
          primary,
          store: true,
          markPass: true,
          lock,
          fallback: now < entry.errorUntil ? entry : undefined,
          entryKey: found.entryKey,
        })
        return true
      }
    }
    // Past the grace window, a copy still inside stale-if-error may replace a failed render.
    const fallback = entry !== undefined && now < entry.errorUntil ? entry : undefined
    if (directives.onlyIfCached) {
      // RFC 9111 §5.2.1.7: nothing stored to answer with.
      this.mark(req, res, 'MISS', 'fwd=miss; detail=only-if-cached')
      res.status(504).end()
      return false
    }
    if (!isGet) {
      // A HEAD miss is not stored: Express sends no body for HEAD, so there is nothing to keep.
      this.mark(req, res, 'MISS', 'fwd=miss')
      return true
    }
    if (found.entry?.kind === 'pass') {
      // Hit-for-miss: the last render was uncacheable; go straight to the handler, no queueing.
      this.mark(req, res, 'MISS', 'fwd=miss; detail=hit-for-miss')
      this.render(req, res, { route, primary, store: true, markPass: false, fallback })
      return true
    }
    return this.coldMiss(req, res, route, primary, found, fallback, deadline)
  }

  /**
   * No usable entry: one request per process renders, one process per fleet holds the lock, the
   * others wait (bounded by waitTimeout) for the stored result or pass through without storing.
   */
  private async coldMiss(
    req: Request,
    res: Response,
    route: RouteConfig,
    primary: string,
    found: Lookup,
    fallback: ResponseEntry | undefined,
    /** The request's read deadline: taking the lock shares it. Polling is bounded by waitTimeout. */
    deadline: number,
  ): Promise<boolean> {
    const entryKey = found.entryKey
    const local = this.flights.get(entryKey)
    // A render that outlived its lock is presumed stuck (the fleet has moved on too): take over
    // rather than make every later request wait out waitTimeout behind it.
    if (local !== undefined && Date.now() - local.startedAt < route.lockTtlS * 1000) {
      const result = await local.wait(route.waitTimeoutMs)
      return this.afterWait(req, res, route, primary, result, fallback)
    }
    const flight = new Flight(() => {
      if (this.flights.get(entryKey) === flight) this.flights.delete(entryKey)
    })
    this.flights.set(entryKey, flight)
    const lead = (lock: Lock | undefined): true => {
      this.mark(req, res, 'MISS', 'fwd=miss')
      this.render(req, res, {
        route,
        primary,
        store: true,
        markPass: true,
        lock,
        flight,
        fallback,
        entryKey,
      })
      return true
    }
    // With the store failing, coalesce in this process only and let the handler answer.
    if (found.failed) return lead(undefined)
    const first = await acquireLock(this.guard, entryKey, route.lockTtlS, deadline, reqLog(req))
    if (first === 'failed') return lead(undefined)
    if (first !== 'lost') {
      return this.leadUnlessStored(req, res, primary, first, flight, lead, deadline)
    }

    // Another process renders: poll for its result. Each round re-reads the entry, then tries the
    // lock again, so a leader that failed or died is replaced by exactly one new leader.
    const giveUpAt = Date.now() + route.waitTimeoutMs
    while (Date.now() + this.config.pollIntervalMs < giveUpAt && !this.closed) {
      await sleep(this.config.pollIntervalMs)
      const again = await this.lookup(req, primary, Date.now() + this.config.timeoutMs)
      if (again.failed) break
      const e = again.entry
      if (e?.kind === 'response' && Date.now() < e.staleAt) {
        return this.serveFromFleet(req, res, flight, e, again.varyNames)
      }
      if (e?.kind === 'pass') break
      const retry = await acquireLock(
        this.guard,
        again.entryKey,
        route.lockTtlS,
        Date.now() + this.config.timeoutMs,
        reqLog(req),
      )
      if (retry === 'failed') break
      if (retry !== 'lost') {
        const round = Date.now() + this.config.timeoutMs
        return this.leadUnlessStored(req, res, primary, retry, flight, lead, round)
      }
    }
    flight.resolve(null)
    this.mark(req, res, 'MISS', 'fwd=miss; detail=wait-timeout')
    this.render(req, res, { route, primary, store: false, markPass: false, fallback })
    return true
  }

  /**
   * Just after winning a lock, reads the entry once more: the previous holder may have stored it and
   * released the lock between our read and our `add`. Without this re-read that request would render
   * a second time for the same expiry. Costs one get per render, not per request.
   */
  private async freshAfterLock(
    req: Request,
    primary: string,
    lock: Lock,
    deadline: number,
  ): Promise<{ entry: ResponseEntry; found: Lookup } | undefined> {
    const found = await this.lookup(req, primary, deadline)
    const entry = found.entry
    if (entry?.kind !== 'response' || Date.now() >= entry.staleAt) return undefined
    this.track(releaseLock(this.guard, lock))
    return { entry, found }
  }

  /** Cold path after winning the lock: serve what another process stored meanwhile, else render. */
  private async leadUnlessStored(
    req: Request,
    res: Response,
    primary: string,
    lock: Lock,
    flight: Flight,
    lead: (lock: Lock) => true,
    deadline: number,
  ): Promise<boolean> {
    const fresher = await this.freshAfterLock(req, primary, lock, deadline)
    if (fresher === undefined) return lead(lock)
    return this.serveFromFleet(req, res, flight, fresher.entry, fresher.found.varyNames)
  }

  /** Another process stored the entry: hand it to this process's waiters and to this request. */
  private serveFromFleet(
    req: Request,
    res: Response,
    flight: Flight,
    entry: ResponseEntry,
    names: readonly string[],
  ): false {
    flight.resolve({ entry, varyNames: names, varyValues: varyValues(req, names) })
    return this.serve(req, res, entry, 'HIT', 'detail=coalesced')
  }

  /** A request that waited on this process's render: serve its result if it fits this request. */
  private afterWait(
    req: Request,
    res: Response,
    route: RouteConfig,
    primary: string,
    result: FlightResult | null,
    fallback: ResponseEntry | undefined,
  ): boolean {
    if (result !== null) {
      const mine = varyValues(req, result.varyNames)
      if (mine.every((v, i) => v === result.varyValues[i])) {
        return this.serve(req, res, result.entry, 'HIT', 'detail=coalesced')
      }
      // Another variant: render it, and store it since nobody else is.
      this.mark(req, res, 'MISS', 'fwd=vary-miss')
      this.render(req, res, { route, primary, store: true, markPass: false, fallback })
      return true
    }
    // The render was uncacheable, failed, or took too long: run this request's own handler; never
    // hand it a response that was not meant to be shared.
    this.mark(req, res, 'MISS', 'fwd=miss; detail=uncoalesced')
    this.render(req, res, { route, primary, store: false, markPass: false, fallback })
    return true
  }

  /** Reads the primary key and, when it holds a variants record, this request's variant. */
  private async lookup(req: Request, primary: string, deadline: number): Promise<Lookup> {
    const log = reqLog(req)
    const raw = await this.guard.call('get', (s) => s.get(primary), deadline, log)
    if (raw === FAILED) return { failed: true, entry: undefined, entryKey: primary, varyNames: [] }
    const entry = servable(decodeEntry(raw))
    if (entry?.kind !== 'variants')
      return { failed: false, entry, entryKey: primary, varyNames: [] }
    // RFC 9111 §4.1: select the stored response whose varied request headers match this request's.
    const varyNames = entry.names
    const key = variantKey(primary, varyNames, varyValues(req, varyNames))
    const rawVariant = await this.guard.call('get', (s) => s.get(key), deadline, log)
    if (rawVariant === FAILED) return { failed: true, entry: undefined, entryKey: key, varyNames }
    return { failed: false, entry: servable(decodeEntry(rawVariant)), entryKey: key, varyNames }
  }

  /** Sends the handler's way with capture armed, storing the result if it is cacheable. */
  private render(
    req: Request,
    res: Response,
    init: {
      route: RouteConfig
      primary: string
      store: boolean
      markPass: boolean
      lock?: Lock
      flight?: Flight
      fallback?: ResponseEntry | undefined
      entryKey?: string
    },
  ): void {
    let conditional: Render['conditional']
    const inm = req.headers['if-none-match']
    const ims = req.headers['if-modified-since']
    if (init.store && (inm !== undefined || ims !== undefined)) {
      // Forward an unconditional request so the handler renders a full 200 we can store, then answer
      // the client's condition ourselves (RFC 9111 §4.3.2 lets a cache do either).
      conditional = {}
      if (inm !== undefined) conditional['if-none-match'] = inm
      if (ims !== undefined) conditional['if-modified-since'] = ims
      delete req.headers['if-none-match']
      delete req.headers['if-modified-since']
    }
    const state: Render = {
      route: init.route,
      primary: init.primary,
      store: init.store,
      markPass: init.markPass,
      flight: init.flight,
      lock: init.lock,
      fallback: init.fallback,
      conditional,
      verdict: undefined,
      abandoned: false,
    }
    ;(req as unknown as Record<symbol, Render>)[this.kRender] = state
    const authorized = req.headers.authorization !== undefined
    const noStore = requestDirectives(req.headers).noStore
    const regenKey = init.entryKey
    const maxValueBytes = this.maxValueBytes()
    let headStatus = 200
    /** Re-judges with the headers as finally sent; settles as uncacheable when they refuse storage. */
    const stillStorable = (headers: OutgoingHttpHeaders): boolean => {
      if (state.verdict?.store !== true || state.abandoned) return false
      const final = judgeResponse(
        headStatus,
        headers,
        { authorized, noStore },
        state.route,
        Date.now(),
      )
      if (!final.store) {
        state.verdict = final
        this.settleUncacheable(state, final.transient)
        return false
      }
      // A Vary added late (by middleware mounted before the cache) still selects variants.
      state.verdict = {
        ...state.verdict,
        vary: [...new Set([...state.verdict.vary, ...final.vary])].sort(),
      }
      return true
    }
    captureResponse(res, {
      get maxBytes() {
        return Math.min(state.route.maxBodySize, maxValueBytes)
      },
      onHead: (status, headers) => {
        headStatus = status
        if (state.abandoned) return 'skip'
        if (
          STALE_IF_ERROR.has(status) &&
          state.fallback !== undefined &&
          Date.now() < state.fallback.errorUntil
        ) {
          state.divert = 'stale'
          return 'divert'
        }
        state.verdict = state.store
          ? judgeResponse(status, headers, { authorized, noStore }, state.route, Date.now())
          : { store: false, reason: 'not storing', transient: true }
        // The client's own condition, set aside so the handler rendered in full (see above).
        const notModified =
          state.conditional !== undefined &&
          status === 200 &&
          isNotModified(state.conditional, toStoredHeaders(headers, new Set()))
        if (notModified) state.divert = 'conditional'
        if (!state.verdict.store) {
          // Release waiters now, not after the body: they run their own handlers (never this response).
          this.settleUncacheable(state, state.verdict.transient)
          return notModified ? 'divert' : 'skip'
        }
        // RFC 9211 §2.4: what the origin answered. ("stored" is not claimed: the write comes later.)
        const cacheStatus = res.getHeader('cache-status')
        if (typeof cacheStatus === 'string')
          res.setHeader('cache-status', `${cacheStatus}; fwd-status=${status}`)
        return notModified ? 'divert' : 'keep'
      },
      afterHead: stillStorable,
      onDone: (captured, reply) => {
        if (regenKey !== undefined) this.regenerating.delete(regenKey)
        if (reply !== undefined && state.divert === 'conditional') {
          // Answer the condition from the handler's own headers (its Set-Cookie included), whether
          // or not the response can be stored; then check what the head finally carried.
          const notModified: OutgoingHttpHeaders = {}
          for (const [name, value] of Object.entries(captured.headers)) {
            if (NOT_MODIFIED_FIELDS.has(name) || PER_RESPONSE_FIELDS.has(name))
              notModified[name] = value
          }
          reply(304, notModified, undefined)
          if (!stillStorable(res.getHeaders())) return
        }
        this.finishRender(req, res, state, captured, reply)
      },
    })
  }

  private finishRender(
    req: Request,
    res: Response,
    state: Render,
    captured: Captured,
    reply: Replier | undefined,
  ): void {
    const verdict = state.verdict
    if (reply !== undefined && state.divert === 'stale') {
      // A 5xx diverted in favour of the stale copy (RFC 5861 stale-if-error). The lock stays held,
      // so a failing origin is retried at most once per lockTtl while the stale copy keeps serving.
      this.settleUncacheable(state, true, false)
      this.serveWith(
        req,
        res,
        state.fallback as ResponseEntry,
        'STALE',
        `fwd=stale; fwd-status=${captured.status}; detail=stale-if-error`,
        reply,
      )
      return
    }
    if (verdict?.store !== true || state.abandoned || !captured.finished) {
      // Not storable (already settled at head time), aborted, or never reached the head.
      this.settleUncacheable(state, true)
      return
    }
    if (captured.body === undefined) {
      // Too large to keep: remember it, so later requests do not queue behind a lock for nothing.
      this.settleUncacheable(state, false, true, 'too large')
      return
    }
    const entry = this.toEntry(captured, verdict)
    const names = [...new Set([...state.route.vary, ...verdict.vary])].sort()
    const values = varyValues(req, names)
    state.flight?.resolve({ entry, varyNames: names, varyValues: values })
    state.flight = undefined
    this.track(this.write(state, entry, names, values))
  }

  /** Tells waiters the render is not coming, releases the lock, and remembers it (hit-for-miss). */
  private settleUncacheable(
    state: Render,
    transient: boolean,
    release = true,
    reason?: string,
  ): void {
    state.flight?.resolve(null)
    state.flight = undefined
    if (!transient && state.markPass) {
      this.writePass(
        state,
        reason ?? (state.verdict?.store === false ? state.verdict.reason : 'uncacheable'),
      )
    }
    if (state.lock !== undefined && release) this.track(releaseLock(this.guard, state.lock))
    state.lock = undefined
    state.store = false
  }

  private writePass(state: Render, reason: string): void {
    const ms = state.route.hitForMissMs
    if (ms <= 0) return
    const value = encodeEntry({ kind: 'pass', cachedAt: Date.now(), reason })
    const ttl = Math.max(2, Math.ceil(ms / 1000))
    this.track(this.guard.call('set', (s) => s.set(state.primary, value, ttl)))
  }

  private toEntry(captured: Captured, verdict: Acceptance): ResponseEntry {
    const now = Date.now()
    const headers = toStoredHeaders(captured.headers, verdict.drop)
    // Keep the origin's Date; Node adds one only when sending, so record when we stored it.
    if (getStored(headers, 'date') === undefined)
      headers.push(['date', new Date(now).toUTCString()])
    const staleAt = now + verdict.freshMs
    return {
      kind: 'response',
      cachedAt: now,
      staleAt,
      graceUntil: staleAt + verdict.graceMs,
      errorUntil: staleAt + verdict.errorMs,
      initialAge: verdict.initialAge,
      status: captured.status,
      headers,
      body: captured.body ?? Buffer.alloc(0),
    }
  }

  /** Write-back, after the response went out: the entry (and variants record), then the lock. */
  private async write(
    state: Render,
    entry: ResponseEntry,
    names: readonly string[],
    values: readonly (string | null)[],
  ): Promise<void> {
    const value = encodeEntry(entry)
    // memcached counts expiry in whole seconds and may expire a 1 s item at once: round up, keep >= 2.
    const ttl = Math.min(
      MAX_RELATIVE_TTL_SECONDS,
      Math.max(
        2,
        Math.ceil((Math.max(entry.graceUntil, entry.errorUntil) - entry.cachedAt) / 1000),
      ),
    )
    const key = names.length === 0 ? state.primary : variantKey(state.primary, names, values)
    if (value.length > this.maxValueBytes(Buffer.byteLength(key))) {
      // An oversized SET would be rejected and delete what memcached holds under the key.
      this.writePass(state, 'too large')
    } else {
      if (names.length > 0) {
        const record = encodeEntry({ kind: 'variants', cachedAt: entry.cachedAt, names })
        await this.guard.call('set', (s) => s.set(state.primary, record, ttl))
      }
      await this.guard.call('set', (s) => s.set(key, value, ttl))
    }
    if (state.lock !== undefined) await releaseLock(this.guard, state.lock)
  }

  private maxValueBytes(keyBytes = 120): number {
    const store = this.config.store
    return store.maxValueBytes === undefined
      ? Number.MAX_SAFE_INTEGER
      : store.maxValueBytes(keyBytes)
  }

  /**
   * `cache.route()` after `app.use(cache)`: the app-level middleware already looked up and armed the
   * capture. Route options that only change how the result is stored are applied in place; options
   * that change the key, or `enabled: false`, take the request over.
   */
  private adoptRoute(
    req: Request,
    res: Response,
    next: NextFunction,
    state: Render,
    route: RouteConfig,
  ): void {
    const sameKey = route.key === state.route.key && route.vary.join() === state.route.vary.join()
    if (route.enabled && sameKey) {
      state.route = route
      next()
      return
    }
    // Mark the app-level key so its lookups stop queueing for a response that is never stored there.
    state.abandoned = true
    this.settleUncacheable(state, state.markPass === false)
    delete (req as unknown as Record<symbol, Render | undefined>)[this.kRender]
    // Give the request back the conditions the app-level capture had set aside.
    if (state.conditional !== undefined) Object.assign(req.headers, state.conditional)
    if (!route.enabled) {
      this.bypass(req, res, 'detail=disabled')
      next()
      return
    }
    this.handle(req, res, next, route, false)
  }

  private serve(
    req: Request,
    res: Response,
    entry: ResponseEntry,
    outcome: CacheOutcome,
    detail?: string,
  ): false {
    this.serveWith(req, res, entry, outcome, detail, (status, headers, body) => {
      for (const [name, value] of Object.entries(headers))
        if (value !== undefined) res.setHeader(name, value)
      res.writeHead(status)
      res.end(body)
    })
    return false
  }

  /** Answers from an entry: Age, debug headers, and 304 for a matching conditional request. */
  private serveWith(
    req: Request,
    res: Response,
    entry: ResponseEntry,
    outcome: CacheOutcome,
    detail: string | undefined,
    reply: Replier,
    conditional: Render['conditional'] = undefined,
  ): void {
    const now = Date.now()
    const headers: OutgoingHttpHeaders = {}
    for (const [name, value] of entry.headers) {
      const prev = headers[name]
      headers[name] =
        prev === undefined ? value : Array.isArray(prev) ? [...prev, value] : [String(prev), value]
    }
    // RFC 9111 §5.1: Age is the time since the response was generated, in seconds.
    headers.age = String(entry.initialAge + Math.max(0, Math.floor((now - entry.cachedAt) / 1000)))
    if (this.config.debugHeaders) {
      const ttl = Math.round((entry.staleAt - now) / 1000)
      headers['x-cache'] = outcome
      // RFC 9211 §2.1: `hit` only when the origin was not asked; a stale copy replacing a failed
      // render was forwarded (`fwd=stale`), so it carries the ttl but not `hit`.
      const forwarded = detail?.startsWith('fwd=') === true
      headers['cache-status'] =
        `${this.config.cacheName}; ${forwarded ? '' : 'hit; '}ttl=${ttl}${detail ? `; ${detail}` : ''}`
    }
    bindOutcome(res, outcome)
    const conditions = conditional ?? req.headers
    if (entry.status === 200 && isNotModified(conditions, entry.headers)) {
      // RFC 9110 §15.4.5: a 304 carries only the fields that would guide a cache update.
      const notModified: OutgoingHttpHeaders = {}
      for (const [name, value] of Object.entries(headers)) {
        if (
          NOT_MODIFIED_FIELDS.has(name) ||
          name === 'age' ||
          name === 'x-cache' ||
          name === 'cache-status'
        )
          notModified[name] = value
      }
      reply(304, notModified, undefined)
      return
    }
    const hasBody = entry.status !== 204 && entry.status !== 304 && entry.status >= 200
    if (hasBody) headers['content-length'] = String(entry.body.length)
    reply(entry.status, headers, req.method === 'HEAD' || !hasBody ? undefined : entry.body)
  }

  private mark(req: Request, res: Response, outcome: CacheOutcome, detail: string): void {
    if (this.config.debugHeaders && !res.headersSent) {
      res.setHeader('x-cache', outcome)
      res.setHeader('cache-status', `${this.config.cacheName}; ${detail}`)
    }
    bindOutcome(res, outcome)
    if (this.logger.isLevelEnabled('debug'))
      this.logger.debug({ cache: outcome, url: req.originalUrl }, 'express-ft-cache')
  }

  private bypass(req: Request, res: Response, detail: string): true {
    this.mark(req, res, 'BYPASS', `fwd=bypass; ${detail}`)
    return true
  }

  private customKey(req: Request, route: RouteConfig): string | undefined | typeof FAILED {
    if (route.key === undefined) return undefined
    try {
      const part = route.key(req)
      if (part !== undefined && typeof part !== 'string')
        throw new TypeError('`key` must return a string or undefined')
      return part
    } catch (err) {
      this.log.warn(
        'key',
        err,
        'express-ft-cache: the `key` option threw; passing the request through uncached',
        reqLog(req),
      )
      return FAILED
    }
  }

  /**
   * RFC 9111 §4.4: a non-error response to an unsafe method invalidates the target URI and the
   * same-host URIs in Location and Content-Location.
   */
  private invalidateAfter(req: Request, res: Response, route: RouteConfig): void {
    const custom = this.customKey(req, route)
    if (custom === FAILED) return
    const id = resourceId(req, custom)
    res.once('finish', () => {
      if (res.statusCode < 200 || res.statusCode >= 400) return
      const keys = new Set([primaryKey(this.config.prefix, id)])
      const base = `http://${id.host || 'localhost'}${id.path}`
      for (const name of ['location', 'content-location']) {
        const value = res.getHeader(name)
        if (typeof value !== 'string') continue
        try {
          const url = new URL(value, base)
          if (url.hostname.toLowerCase() !== (id.host || 'localhost')) continue
          keys.add(
            primaryKey(this.config.prefix, {
              ...id,
              path: url.pathname,
              query: canonicalQuery(url.search),
            }),
          )
        } catch {
          // Not a URL: nothing to invalidate.
        }
      }
      for (const key of keys) this.track(this.guard.call('delete', (s) => s.delete(key)))
    })
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

const servable = (entry: Entry | undefined): Entry | undefined =>
  entry !== undefined && isServable(entry) ? entry : undefined

function reqLog(req: Request): Logger | undefined {
  return (req as Request & { log?: Logger }).log
}

function hasCookie(req: Request, names: readonly string[]): boolean {
  const header = req.headers.cookie
  if (header === undefined) return false
  for (const part of header.split(';')) {
    const eq = part.indexOf('=')
    const name = (eq === -1 ? part : part.slice(0, eq)).trim()
    if (names.includes(name)) return true
  }
  return false
}
