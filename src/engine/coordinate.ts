/**
 * Coordinate: who renders and who waits. In-process single flights, the fleet-wide mint lock
 * (memcached `add`), and polling for another process's render, each bounded in time.
 */
import type { Request } from 'express'
import type { Logger } from 'pino'
import type { Entry, ResponseEntry } from '../entry.js'
import type { StoreGuard } from '../guard.js'
import { varyValues } from '../key.js'
import { acquireLock, Flight, type FlightResult, type Lock, releaseLock, sleep } from '../mint.js'
import type { CacheConfig, RouteConfig } from '../options.js'
import type { Lookup as LookupRequest } from './classify.js'
import { canValidate } from './decide.js'
import type { Found, Lookup } from './lookup.js'
import type { RenderPlan } from './render.js'
import type { Counters } from './stats.js'

/** What coordination decided: answer from an entry, or render (and how). */
export type Plan =
  | {
      readonly kind: 'serve'
      readonly entry: ResponseEntry
      readonly outcome: 'HIT' | 'STALE'
      readonly detail: string | undefined
    }
  | { readonly kind: 'render'; readonly plan: RenderPlan; readonly detail: string }

/** How long a lost lock is remembered: stale requests then skip the `add` (one round trip each). */
const LOST_LOCK_MEMORY_MS = 1000

export class Coordinator {
  /** In-process single flights, by entry key. */
  private readonly flights = new Map<string, Flight>()
  /**
   * Entry keys this process is regenerating, with when it started: their other requests get the
   * stale copy without asking for the lock, until the regeneration outlives its lock TTL.
   */
  readonly regenerating = new Map<string, number>()
  /**
   * Entry keys whose lock another process held a moment ago: until when to believe it, and which
   * copy was stored then (`cachedAt`; undefined: none). The memory speaks only for that copy: once
   * another one is stored, the render it was about is over.
   */
  private readonly lostLocks = new Map<string, { until: number; copy: number | undefined }>()

  constructor(
    private readonly cfg: CacheConfig,
    private readonly guard: StoreGuard,
    private readonly lookup: Lookup,
    private readonly counters: Counters,
    private readonly release: (p: Promise<unknown>) => void,
    private readonly isClosed: () => boolean,
  ) {}

  /** Whether this process regenerates the entry already (and not for longer than its lock lives). */
  isRegenerating(entryKey: string, route: RouteConfig, now: number): boolean {
    const started = this.regenerating.get(entryKey)
    return started !== undefined && now - started < route.lockTtlS * 1000
  }

  /**
   * Whether another process held the lock a moment ago (remembered min(1 s, lockTtl)) while `copy`
   * was the stored one: then it is regenerating that copy.
   */
  lockLost(entryKey: string, now: number, copy: Entry | undefined): boolean {
    const lost = this.lostLocks.get(entryKey)
    if (lost === undefined) return false
    if (now < lost.until && lost.copy === cachedAtOf(copy)) return true
    this.lostLocks.delete(entryKey)
    return false
  }

  private rememberLost(entryKey: string, route: RouteConfig, copy: Entry | undefined): void {
    if (this.lostLocks.size > 10_000) this.lostLocks.clear()
    this.lostLocks.set(entryKey, {
      until: Date.now() + Math.min(LOST_LOCK_MEMORY_MS, route.lockTtlS * 1000),
      copy: cachedAtOf(copy),
    })
  }

  /**
   * Takes the lock and re-reads the entry in the same round trip (both go to the entry's server,
   * pipelined in order): the previous holder may have stored and released between our read and
   * our `add`, and without the re-read that expiry would be rendered twice.
   */
  private async lockAndReread(
    req: Request,
    c: LookupRequest,
    entryKey: string,
    route: RouteConfig,
    deadline: number,
    log: Logger | undefined,
    since: number,
  ): Promise<{
    lock: Lock | 'lost' | 'failed'
    fresh: Found | undefined
    pass: boolean
    failed: boolean
  }> {
    const [lock, again] = await Promise.all([
      acquireLock(this.guard, entryKey, route.lockTtlS, deadline, log),
      this.lookup.read(req, c.primary, c.tags, deadline, log),
    ])
    const e = again.entry
    if (lock === 'lost') {
      this.counters.locksLost++
      if (!again.failed) this.rememberLost(entryKey, route, e)
    } else if (lock !== 'failed') this.counters.locksWon++
    // Fresh, or stored since this request began: a render (or a revalidation of a copy that is
    // stale at once, like `no-cache`) that another request made for this one.
    const fresh =
      !again.failed &&
      e?.kind === 'response' &&
      again.validity === 'valid' &&
      (Date.now() < e.staleAt || e.cachedAt >= since)
        ? again
        : undefined
    // The leader's render turned out uncacheable (its hit-for-miss marker is there): stop waiting.
    const pass = !again.failed && e?.kind === 'pass'
    if ((fresh !== undefined || pass) && typeof lock === 'object')
      this.release(releaseLock(this.guard, lock))
    return { lock, fresh, pass, failed: again.failed }
  }

  /** Stale within grace, and nobody here regenerates it: compete for the lock. */
  async regenerate(
    req: Request,
    c: LookupRequest,
    route: RouteConfig,
    found: Found,
    entry: ResponseEntry,
    deadline: number,
    log: Logger | undefined,
  ): Promise<Plan> {
    const now = Date.now()
    const { lock, fresh } = await this.lockAndReread(
      req,
      c,
      found.entryKey,
      route,
      deadline,
      log,
      now,
    )
    if (fresh !== undefined) return serve(fresh.entry as ResponseEntry, 'HIT', undefined)
    if (lock === 'lost' || lock === 'failed') return serve(entry, 'STALE', undefined)
    // This request won the fleet-wide lock: it renders; everyone else keeps getting the stale copy.
    this.regenerating.set(found.entryKey, Date.now())
    return render(
      {
        ...base(c, route, found.entryKey),
        store: true,
        markPass: true,
        lock,
        fallback: now < entry.errorUntil ? entry : undefined,
        regenKey: found.entryKey,
        validate: canValidate(entry) ? entry : undefined,
      },
      'fwd=stale',
    )
  }

  /**
   * No usable entry: one request per process renders, one process per fleet holds the lock, the
   * others wait (bounded by waitTimeout) for the stored result or pass through without storing.
   */
  async cold(
    req: Request,
    c: LookupRequest,
    route: RouteConfig,
    found: Found,
    fallback: ResponseEntry | undefined,
    validate: ResponseEntry | undefined,
    deadline: number,
    log: Logger | undefined,
  ): Promise<Plan> {
    const since = Date.now()
    const entryKey = found.entryKey
    const local = this.flights.get(entryKey)
    // A render that outlived its lock is presumed stuck (the fleet has moved on too): take over
    // rather than make every later request wait out waitTimeout behind it.
    if (local !== undefined && Date.now() - local.startedAt < route.lockTtlS * 1000) {
      const result = await local.wait(route.waitTimeoutMs)
      return this.afterWait(req, c, route, entryKey, result, fallback)
    }
    const flight = new Flight(() => {
      if (this.flights.get(entryKey) === flight) this.flights.delete(entryKey)
    })
    this.flights.set(entryKey, flight)
    const lead = (lock: Lock | undefined): Plan =>
      render(
        {
          ...base(c, route, entryKey),
          store: true,
          markPass: true,
          lock,
          flight,
          fallback,
          validate,
        },
        validate === undefined ? 'fwd=miss' : 'fwd=stale',
      )
    const fromFleet = (e: ResponseEntry, names: readonly string[]): Plan => {
      flight.resolve({ entry: e, varyNames: names, varyValues: varyValues(req, names) })
      this.counters.coalesced++
      return serve(e, 'HIT', 'detail=coalesced')
    }
    try {
      // With the store failing, coalesce in this process only and let the handler answer.
      if (found.failed) return lead(undefined)
      const first = await this.lockAndReread(req, c, entryKey, route, deadline, log, since)
      if (first.fresh !== undefined)
        return fromFleet(first.fresh.entry as ResponseEntry, first.fresh.varyNames)
      if (first.pass || first.lock === 'failed') return lead(undefined)
      if (first.lock !== 'lost') return lead(first.lock)

      // Another process renders: poll for its result. Each round re-reads the entry, then tries
      // the lock again, so a leader that failed or died is replaced by exactly one new leader.
      const poll = this.cfg.pollIntervalMs
      const giveUpAt = Date.now() + route.waitTimeoutMs
      // A re-read the store did not answer ends the wait: polling a failing store only adds deadlines.
      while (!first.failed && Date.now() + poll < giveUpAt && !this.isClosed()) {
        await sleep(poll)
        const round = await this.lockAndReread(
          req,
          c,
          entryKey,
          route,
          Date.now() + this.cfg.timeoutMs,
          log,
          since,
        )
        if (round.fresh !== undefined)
          return fromFleet(round.fresh.entry as ResponseEntry, round.fresh.varyNames)
        if (round.pass || round.lock === 'failed') break
        if (round.lock !== 'lost') return lead(round.lock)
        if (round.failed) break
      }
    } catch (err) {
      flight.resolve(null)
      throw err
    }
    flight.resolve(null)
    return render(
      { ...base(c, route, entryKey), store: false, markPass: false, fallback },
      'fwd=miss; detail=wait-timeout',
    )
  }

  /** A request that waited on this process's render: serve its result if it fits this request. */
  private afterWait(
    req: Request,
    c: LookupRequest,
    route: RouteConfig,
    entryKey: string,
    result: FlightResult | null,
    fallback: ResponseEntry | undefined,
  ): Plan {
    if (result !== null) {
      const mine = varyValues(req, result.varyNames)
      if (mine.every((v, i) => v === result.varyValues[i])) {
        this.counters.coalesced++
        return serve(result.entry, 'HIT', 'detail=coalesced')
      }
      // Another variant: render it, and store it since nobody else is.
      return render(
        { ...base(c, route, entryKey), store: true, markPass: false, fallback },
        'fwd=vary-miss',
      )
    }
    // The render was uncacheable, failed, or took too long: run this request's own handler; never
    // hand it a response that was not meant to be shared.
    return render(
      { ...base(c, route, entryKey), store: false, markPass: false, fallback },
      'fwd=miss; detail=uncoalesced',
    )
  }
}

function base(c: LookupRequest, route: RouteConfig, entryKey: string) {
  return {
    route,
    primary: c.primary,
    entryKey,
    tags: c.tags,
    credential: c.credential,
  }
}

const cachedAtOf = (e: Entry | undefined): number | undefined =>
  e?.kind === 'response' ? e.cachedAt : undefined

const serve = (
  entry: ResponseEntry,
  outcome: 'HIT' | 'STALE',
  detail: string | undefined,
): Plan => ({ kind: 'serve', entry, outcome, detail })

const render = (plan: RenderPlan, detail: string): Plan => ({ kind: 'render', plan, detail })
