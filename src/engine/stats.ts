/** What `cache.stats()` returns: counters since the cache was created. */
export interface CacheStats {
  /** Requests by outcome, as `X-Cache` reports them. */
  readonly requests: {
    readonly hit: number
    readonly stale: number
    /** Stale copies the handler confirmed with a 304 (RFC 9111 §4.3): body from the cache. */
    readonly revalidated: number
    readonly miss: number
    readonly bypass: number
  }
  /** Handler runs whose result the cache meant to store (cold misses, regenerations, revalidations). */
  readonly renders: number
  /** Requests answered with another request's render (in-process waiters, or a fleet poll). */
  readonly coalesced: number
  /** Fleet-wide mint locks: taken by this process, or found held by another. */
  readonly locks: { readonly won: number; readonly lost: number }
  /** Store failures by kind, e.g. `get:timeout`, `set:ECIRCUIT_OPEN`. */
  readonly storeErrors: Readonly<Record<string, number>>
  /** Circuit breaker state per memcached server (empty for stores without breakers). */
  readonly breakers: Readonly<Record<string, 'closed' | 'open' | 'half-open'>>
  /** The in-process hot tier (all zero when `hotCache` is off). */
  readonly hot: { readonly hits: number; readonly entries: number; readonly bytes: number }
  /** Invalidations made by this process (API calls and unsafe methods). */
  readonly invalidations: number
}

/** What `X-Cache` says of a request. */
export type Outcome = 'HIT' | 'STALE' | 'REVALIDATED' | 'MISS' | 'BYPASS'

/** Plain integer counters: the hit path pays one increment. */
export class Counters {
  hit = 0
  stale = 0
  revalidated = 0
  miss = 0
  bypass = 0
  renders = 0
  coalesced = 0
  locksWon = 0
  locksLost = 0
  hotHits = 0
  invalidations = 0
  readonly storeErrors = new Map<string, number>()

  outcome(outcome: Outcome, by = 1): void {
    if (outcome === 'HIT') this.hit += by
    else if (outcome === 'STALE') this.stale += by
    else if (outcome === 'REVALIDATED') this.revalidated += by
    else if (outcome === 'MISS') this.miss += by
    else this.bypass += by
  }

  /** Takes back an outcome counted for a request whose outcome then changed. */
  uncount(outcome: Outcome): void {
    this.outcome(outcome, -1)
  }

  storeError(kind: string): void {
    this.storeErrors.set(kind, (this.storeErrors.get(kind) ?? 0) + 1)
  }

  snapshot(
    hot: { readonly entries: number; readonly bytes: number },
    breakers: Readonly<Record<string, 'closed' | 'open' | 'half-open'>>,
  ): CacheStats {
    return {
      requests: {
        hit: this.hit,
        stale: this.stale,
        revalidated: this.revalidated,
        miss: this.miss,
        bypass: this.bypass,
      },
      renders: this.renders,
      coalesced: this.coalesced,
      locks: { won: this.locksWon, lost: this.locksLost },
      storeErrors: Object.fromEntries(this.storeErrors),
      breakers,
      hot: { hits: this.hotHits, entries: hot.entries, bytes: hot.bytes },
      invalidations: this.invalidations,
    }
  }
}
