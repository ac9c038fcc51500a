/**
 * Render: runs the handler with the capture armed, judges its response, answers diverted ones,
 * and writes the result back (entry, variants record, lock release) after the response went out.
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders, ServerResponse } from 'node:http'
import type { Request } from 'express'
import type { Logger } from 'pino'
import { type Captured, captureResponse, type Replier } from '../capture.js'
import { encodeEntry, type ResponseEntry } from '../entry.js'
import { FAILED, type StoreGuard } from '../guard.js'
import { parseCacheControl } from '../http/cache-control.js'
import {
  conditionalHeadersFor,
  freshen,
  isNotModified,
  NOT_MODIFIED_FIELDS,
} from '../http/conditional.js'
import { getStored, headersFromList, toStoredHeaders } from '../http/headers.js'
import { type Acceptance, type JudgeOptions, judgeResponse, type Verdict } from '../http/policy.js'
import { type BoundedMemo, variantKeyFor, varyValues } from '../key.js'
import type { RateLimitedLog } from '../logging.js'
import { type Flight, type Lock, releaseLock } from '../mint.js'
import type { CacheConfig, RouteConfig } from '../options.js'
import { MAX_RELATIVE_TTL_SECONDS } from '../store/types.js'
import type { HotTier } from './hot-tier.js'
import type { Invalidations } from './invalidate.js'
import type { Responder } from './respond.js'
import type { Counters } from './stats.js'

/** RFC 5861 §4: stale-if-error covers these statuses (and a thrown error, which Express turns into a 500). */
const STALE_IF_ERROR = new Set([500, 502, 503, 504])
/** This cache revalidates stale copies that carry a validator (RFC 9111 §4.3). */
const REVALIDATE: JudgeOptions = { revalidate: true }
/** Fields of the render's own response that a 304 answering its client keeps. */
const PER_RESPONSE_FIELDS = new Set(['set-cookie', 'x-cache', 'cache-status'])
/** Tags in Surrogate-Key: space-separated (as Fastly reads it), each at most 128 printable bytes. */
const TAG = /^[\x21-\x7e]{1,128}$/

/** What a render is for: filled in by coordinate (or decide), consumed here. */
export interface RenderPlan {
  readonly route: RouteConfig
  readonly primary: string
  /** Where this request's entry lives (the variant key when a variants record was found). */
  readonly entryKey: string
  readonly tags: readonly string[]
  /** Store the result when cacheable. */
  readonly store: boolean
  /** Write a hit-for-miss marker when the result is uncacheable. */
  readonly markPass: boolean
  readonly credential: 'authorization' | 'cookie' | undefined
  readonly lock?: Lock | undefined
  readonly flight?: Flight | undefined
  /** A stale copy that may answer instead of a 5xx (stale-if-error). */
  readonly fallback?: ResponseEntry | undefined
  /** Set when this render regenerates an entry: cleared from the regenerating map when done. */
  readonly regenKey?: string | undefined
  /**
   * A stale copy with a validator: the handler gets a conditional request built from it (RFC 9111
   * §4.3.1), and a 304 refreshes the copy instead of a new body (§4.3.4).
   */
  readonly validate?: ResponseEntry | undefined
}

/** A render in progress; `cache.route()` under `app.use(cache)` finds it on the request. */
export interface RenderState {
  route: RouteConfig
  readonly plan: RenderPlan
  store: boolean
  flight: Flight | undefined
  lock: Lock | undefined
  verdict: Verdict | undefined
  /** A route-level `cache.route()` took this request over. */
  abandoned: boolean
  /** Conditional headers taken off the request so the handler renders a full, storable 200. */
  readonly conditional: { 'if-none-match'?: string; 'if-modified-since'?: string } | undefined
  divert?: 'stale' | 'conditional' | 'revalidated'
  /** Tags from the request (path, route); a route adopted later may replace the route's. */
  tags: readonly string[]
  /** Tags from the response's Surrogate-Key. */
  surrogate: readonly string[]
}

/**
 * The render an app-level cache started for a request, for a route-level cache behind it to adopt.
 * A WeakMap, not a property: every request asks, and a missing symbol property on an
 * IncomingMessage is looked up through its whole prototype chain; a request never put in the map
 * has no identity hash, so asking costs almost nothing.
 */
export const renders = new WeakMap<Request, RenderState>()

export interface RenderDeps {
  readonly cfg: CacheConfig
  readonly guard: StoreGuard
  readonly log: RateLimitedLog
  readonly logger: Logger
  readonly counters: Counters
  readonly responder: Responder
  readonly invalidations: Invalidations
  readonly hot: HotTier | undefined
  /** Primary key -> varied request headers, shared with lookup (the hot tier finds variants by it). */
  readonly variants: BoundedMemo<readonly string[]>
  /** Entry keys this process regenerates (see coordinate). */
  readonly regenerating: Map<string, number>
  /** Keeps a background write for `settled()`/`close()`. */
  track(p: Promise<unknown>): void
}

/** The response explicitly allows shared caches: it may answer credentialed requests (RFC 9111 §3.5). */
function sharedByResponse(headers: OutgoingHttpHeaders): boolean {
  const cc = parseCacheControl(headers['cache-control'] as string | string[] | undefined)
  return cc.has('public') || cc.has('s-maxage')
}

/** A refusal's reason as a Cache-Status detail token: `vary *` -> `vary-star`, `status 302` -> `status`. */
export function notStoredDetail(reason: string): string {
  if (reason.startsWith('status ')) return 'status'
  if (reason === 'vary *') return 'vary-star'
  return reason.replace(/ /g, '-')
}

function surrogateKeys(value: OutgoingHttpHeaders[string]): string[] {
  if (value === undefined) return []
  const text = Array.isArray(value) ? value.join(' ') : String(value)
  return text.split(/\s+/).filter((t) => TAG.test(t))
}

export class Renderer {
  constructor(private readonly d: RenderDeps) {}

  /** Sends the request the handler's way with capture armed. */
  render(req: Request, res: ServerResponse, plan: RenderPlan): void {
    const d = this.d
    let conditional: RenderState['conditional']
    const inm = req.headers['if-none-match']
    const ims = req.headers['if-modified-since']
    if (plan.store && (inm !== undefined || ims !== undefined)) {
      // Forward an unconditional request so the handler renders a full 200 we can store, then answer
      // the client's condition ourselves (RFC 9111 §4.3.2 lets a cache do either).
      conditional = {}
      if (inm !== undefined) conditional['if-none-match'] = inm
      if (ims !== undefined) conditional['if-modified-since'] = ims
      delete req.headers['if-none-match']
      delete req.headers['if-modified-since']
    }
    if (plan.validate !== undefined) {
      // RFC 9111 §4.3.1: ask the handler, as a cache asks its origin, whether the copy still holds.
      Object.assign(req.headers, conditionalHeadersFor(plan.validate.headers))
    }
    /** The client's own conditions: set aside above, or still on the request. */
    const clientConditions = plan.store ? (conditional ?? {}) : req.headers
    const state: RenderState = {
      route: plan.route,
      plan,
      store: plan.store,
      flight: plan.flight,
      lock: plan.lock,
      verdict: undefined,
      abandoned: false,
      conditional,
      tags: plan.tags,
      surrogate: [],
    }
    renders.set(req, state)
    if (plan.store) d.counters.renders++
    const startedAt = Date.now()
    const authorized = plan.credential !== undefined
    const noStore = /(^|[\s,])no-store\s*(,|$)/i.test(String(req.headers['cache-control'] ?? ''))
    const maxValueBytes = this.maxValueBytes()
    let headStatus = 200

    const judge = (status: number, headers: OutgoingHttpHeaders): Verdict => {
      if (!state.store) return { store: false, reason: 'not storing', transient: true }
      const verdict = judgeResponse(
        status,
        headers,
        { authorized, noStore },
        state.route,
        Date.now(),
        REVALIDATE,
      )
      if (!verdict.store) return verdict
      // A session cookie is treated as Authorization, but must-revalidate does not make a page
      // public: only `public` or `s-maxage` do (RFC 9111 §3.5 read for cookies).
      if (plan.credential === 'cookie' && !sharedByResponse(headers))
        return { store: false, reason: 'cookie', transient: true }
      const declared = Number(headers['content-length'])
      // Known too large at head time: release waiters now instead of after the whole body.
      if (declared > Math.min(state.route.maxBodySize, maxValueBytes))
        return { store: false, reason: 'too-large', transient: false }
      return verdict
    }
    /** Re-judges with the headers as finally sent; settles as uncacheable when they refuse storage. */
    const stillStorable = (headers: OutgoingHttpHeaders): boolean => {
      if (state.verdict?.store !== true || state.abandoned) return false
      const final = judge(headStatus, headers)
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

    captureResponse(
      res,
      {
        get maxBytes() {
          return Math.min(state.route.maxBodySize, maxValueBytes)
        },
        onHead: (status, headers) => {
          headStatus = status
          if (state.abandoned) return 'skip'
          if (status === 304 && plan.validate !== undefined) {
            // The copy is still good: hold the empty 304 back; the client gets the copy (or its own
            // 304) once the handler ends.
            state.divert = 'revalidated'
            return 'divert'
          }
          if (
            STALE_IF_ERROR.has(status) &&
            plan.fallback !== undefined &&
            Date.now() < plan.fallback.errorUntil
          ) {
            state.divert = 'stale'
            return 'divert'
          }
          state.surrogate = surrogateKeys(headers['surrogate-key'])
          if (!d.cfg.keepSurrogateKey && headers['surrogate-key'] !== undefined)
            res.removeHeader('surrogate-key')
          state.verdict = judge(status, headers)
          // The client's own condition, set aside so the handler rendered in full (see above).
          const notModified =
            state.conditional !== undefined &&
            status === 200 &&
            isNotModified(state.conditional, toStoredHeaders(headers, new Set()))
          if (notModified) state.divert = 'conditional'
          // RFC 9211 §2.4: what the origin answered ("stored" is not claimed: the write comes later).
          const cacheStatus = res.getHeader('cache-status')
          const why = state.verdict.store ? undefined : notStoredDetail(state.verdict.reason)
          if (typeof cacheStatus === 'string') {
            // RFC 9211 §2.8: detail= says why the response is not stored (no-store, cookie, ...).
            // One detail per entry (RFC 8941 parameters): an earlier one (hit-for-miss, cookie)
            // already says why this render is not for sharing.
            const detail =
              why === undefined || !state.plan.store || cacheStatus.includes('; detail=')
                ? undefined
                : why
            res.setHeader(
              'cache-status',
              `${cacheStatus}; fwd-status=${status}${detail === undefined ? '' : `; detail=${detail}`}`,
            )
          }
          if (!state.verdict.store) {
            if (state.plan.store && d.logger.isLevelEnabled('debug'))
              d.logger.debug(
                { url: req.originalUrl, status, reason: why },
                'express-ft-cache: not stored',
              )
            // Release waiters now, not after the body: they run their own handlers.
            this.settleUncacheable(state, state.verdict.transient)
            return notModified ? 'divert' : 'skip'
          }
          return notModified ? 'divert' : 'keep'
        },
        afterHead: stillStorable,
        onDone: (captured, reply) => {
          try {
            if (plan.regenKey !== undefined) d.regenerating.delete(plan.regenKey)
            if (reply !== undefined && state.divert === 'stale' && plan.fallback !== undefined) {
              // A 5xx diverted in favour of the stale copy (RFC 5861 stale-if-error). While
              // regenerating, the lock stays held (the others are served stale meanwhile), so a
              // failing origin is retried at most once per lockTtl. On a cold key nothing answers
              // the others: release it, or they poll for a render that is over.
              this.settleUncacheable(state, true, plan.regenKey === undefined)
              d.responder.serve(
                req,
                res,
                plan.fallback,
                'STALE',
                `fwd=stale; fwd-status=${captured.status}; detail=stale-if-error`,
                reply,
                clientConditions,
              )
              return
            }
            if (reply !== undefined && state.divert === 'revalidated' && plan.validate) {
              this.revalidated(
                req,
                res,
                state,
                plan.validate,
                captured,
                startedAt,
                reply,
                clientConditions,
              )
              return
            }
            if (reply !== undefined && state.divert === 'conditional') {
              this.answerCondition(captured, reply)
              if (!stillStorable(res.getHeaders())) return
            }
            this.finish(req, state, captured, startedAt)
          } finally {
            // Whatever happened above, waiters and the lock never outlive the render.
            if (state.flight !== undefined || state.lock !== undefined) {
              if (state.divert !== 'stale') this.settleUncacheable(state, true)
            }
          }
        },
      },
      d.cfg.perRequestHeaders,
    )
  }

  /**
   * The handler answered our conditional request with 304: freshen the stored copy with the 304's
   * fields (RFC 9111 §4.3.4), answer the client from it (its own 304 when its conditions match),
   * and store it again with its body. A 304 for another representation cannot refresh it: the
   * stale copy answers this once, and nothing is stored.
   */
  private revalidated(
    req: Request,
    res: ServerResponse,
    state: RenderState,
    stale: ResponseEntry,
    captured: Captured,
    startedAt: number,
    reply: Replier,
    conditions: IncomingHttpHeaders,
  ): void {
    const d = this.d
    const fields: OutgoingHttpHeaders = {}
    for (const [name, value] of Object.entries(captured.headers)) {
      if (!d.cfg.perRequestHeaders.has(name) && name !== 'surrogate-key') fields[name] = value
    }
    const headers = freshen(stale.headers, fields)
    if (headers === undefined) {
      this.settleUncacheable(state, true)
      d.responder.serve(
        req,
        res,
        stale,
        'STALE',
        'fwd=stale; fwd-status=304; detail=mismatch',
        reply,
        conditions,
      )
      return
    }
    const verdict = judgeResponse(
      stale.status,
      headersFromList(headers),
      { authorized: state.plan.credential !== undefined, noStore: false },
      state.route,
      Date.now(),
      REVALIDATE,
    )
    const now = Date.now()
    const fresh: ResponseEntry = verdict.store
      ? {
          ...stale,
          headers,
          cachedAt: now,
          staleAt: now + verdict.freshMs,
          graceUntil: now + verdict.freshMs + verdict.graceMs,
          errorUntil: now + verdict.freshMs + verdict.errorMs,
          initialAge: verdict.initialAge,
          startedAt,
          tags: [...new Set([...stale.tags, ...state.tags])],
        }
      : { ...stale, headers, cachedAt: now, staleAt: now }
    d.responder.serve(
      req,
      res,
      fresh,
      'REVALIDATED',
      'fwd=stale; fwd-status=304',
      reply,
      conditions,
    )
    if (!verdict.store) return
    const names = [...new Set([...state.route.vary, ...verdict.vary])].sort()
    const values = varyValues(req, names)
    state.flight?.resolve({ entry: fresh, varyNames: names, varyValues: values })
    state.flight = undefined
    const lock = state.lock
    state.lock = undefined
    d.track(this.write(state, fresh, names, values, lock, verdict.keepMs))
  }

  /** Answers the client's condition from the handler's own headers (its Set-Cookie included). */
  private answerCondition(captured: Captured, reply: Replier): void {
    const pairs: [string, string | string[]][] = []
    for (const [name, value] of Object.entries(captured.headers)) {
      if (value === undefined || !(NOT_MODIFIED_FIELDS.has(name) || PER_RESPONSE_FIELDS.has(name)))
        continue
      pairs.push([name, Array.isArray(value) ? value.map(String) : String(value)])
    }
    reply(304, pairs, undefined)
  }

  private finish(req: Request, state: RenderState, captured: Captured, startedAt: number): void {
    const d = this.d
    const verdict = state.verdict
    if (verdict?.store !== true || state.abandoned || !captured.finished) return
    const declared = captured.headers['content-length']
    if (declared !== undefined && Number(declared) !== captured.size) {
      // A handler that declared more than it wrote (a stream error ended it early): never store a
      // truncated body (RFC 9112 §6.3: the message is incomplete).
      if (d.logger.isLevelEnabled('debug'))
        d.logger.debug(
          { url: req.originalUrl, declared, written: captured.size },
          'express-ft-cache: not stored: truncated response',
        )
      return
    }
    if (captured.body === undefined) {
      // Too large to keep: remember it, so later requests do not queue behind a lock for nothing.
      this.settleUncacheable(state, false, true, 'too-large')
      return
    }
    const entry = this.toEntry(state, captured, verdict, startedAt)
    const names = [...new Set([...state.route.vary, ...verdict.vary])].sort()
    const values = varyValues(req, names)
    state.flight?.resolve({ entry, varyNames: names, varyValues: values })
    state.flight = undefined
    const lock = state.lock
    state.lock = undefined
    d.track(this.write(state, entry, names, values, lock, verdict.keepMs))
  }

  /** Tells waiters the render is not coming, releases the lock, and remembers it (hit-for-miss). */
  settleUncacheable(state: RenderState, transient: boolean, release = true, reason?: string): void {
    state.flight?.resolve(null)
    state.flight = undefined
    if (!transient && state.plan.markPass) {
      this.writePass(
        state,
        reason ?? (state.verdict?.store === false ? state.verdict.reason : 'uncacheable'),
      )
    }
    if (state.lock !== undefined && release) this.d.track(releaseLock(this.d.guard, state.lock))
    if (release) state.lock = undefined
    state.store = false
  }

  /** A hit-for-miss marker, at the entry key: one variant's marker leaves the others alone. */
  private writePass(state: RenderState, reason: string): void {
    const ms = state.route.hitForMissMs
    if (ms <= 0) return
    const value = encodeEntry({ kind: 'pass', cachedAt: Date.now(), reason })
    const ttl = Math.max(2, Math.ceil(ms / 1000))
    const key = state.plan.entryKey
    this.d.track(this.d.guard.call('set', (s) => s.set(key, value, ttl)))
  }

  private toEntry(
    state: RenderState,
    captured: Captured,
    verdict: Acceptance,
    startedAt: number,
  ): ResponseEntry {
    const now = Date.now()
    const drop = new Set([...verdict.drop, ...this.d.cfg.perRequestHeaders])
    if (!this.d.cfg.keepSurrogateKey) drop.add('surrogate-key')
    const headers = toStoredHeaders(captured.headers, drop)
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
      startedAt,
      tags: [...new Set([...state.tags, ...state.surrogate])],
      shared: sharedByResponse(captured.headers),
    }
  }

  /**
   * Write-back, after the response went out: only if no tag of the entry was invalidated since the
   * render started; then the entry (and variants record), then the lock.
   */
  private async write(
    state: RenderState,
    entry: ResponseEntry,
    names: readonly string[],
    values: readonly (string | null)[],
    lock: Lock | undefined,
    /** How long after turning stale the copy is kept (stale windows, revalidation). */
    keepMs: number,
  ): Promise<void> {
    const d = this.d
    try {
      const value = encodeEntry(entry)
      // memcached counts expiry in whole seconds and may expire a 1 s item at once: round up, >= 2.
      const ttl = Math.min(
        MAX_RELATIVE_TTL_SECONDS,
        Math.max(2, Math.ceil((entry.staleAt + keepMs - entry.cachedAt) / 1000)),
      )
      const primary = state.plan.primary
      const key = names.length === 0 ? primary : variantKeyFor(primary, names, values)
      if (value.length > this.maxValueBytes(Buffer.byteLength(key))) {
        // An oversized SET would be rejected and delete what memcached holds under the key.
        this.writePass(state, 'too-large')
        return
      }
      const inFlight = state.route.lockTtlS * 1000
      if (!(await d.invalidations.admits(entry.tags, entry.startedAt, inFlight))) return
      // The variant first, then the record that points at it: a request between the two writes
      // must not find the record, miss the variant, and render it again.
      const stored = await d.guard.call('set', (s) => s.set(key, value, ttl))
      if (names.length > 0) {
        const record = encodeEntry({ kind: 'variants', cachedAt: entry.cachedAt, names })
        await d.guard.call('set', (s) => s.set(primary, record, ttl))
      }
      if (names.length > 0) d.variants.set(primary, names)
      if (stored !== FAILED) d.hot?.set(key, entry, Date.now())
    } finally {
      if (lock !== undefined) await releaseLock(d.guard, lock)
    }
  }

  maxValueBytes(keyBytes = 120): number {
    const store = this.d.cfg.store
    return store.maxValueBytes === undefined
      ? Number.MAX_SAFE_INTEGER
      : store.maxValueBytes(keyBytes)
  }
}
