/**
 * The hot tier: an in-process, byte-bounded LRU of decoded entries, read synchronously before any
 * promise is made. It only ever answers with fresh entries: stale serving, mint locks and
 * regeneration always go through the shared store. Coherence comes from the invalidation records
 * (each hot hit is judged against this process's memo of them), not from evicting here.
 *
 * A copy is kept at most hotCache.ttl after the store read that produced it. Half-way through, the
 * next hit on a busy copy asks for one background re-read (refresh-ahead), so a busy key never
 * drops out of the tier: without it, every request in flight when the copy expires pays a store
 * round trip. A copy hit only now and then is left to expire: re-reading it would cost a round trip
 * per hit or two, more than it saves.
 */
import { LRUCache } from 'lru-cache'
import type { ResponseEntry } from '../entry.js'

/** Per-entry overhead counted against `maxBytes` besides body and headers (object, key, map slot). */
const ENTRY_OVERHEAD_BYTES = 256
/** Hits a copy must have answered before it is re-read ahead of its end. */
const REFRESH_MIN_HITS = 3

/** A held copy, as {@link HotTier.get} returns it. */
export interface Slot {
  readonly entry: ResponseEntry
  /** min(hotCache.ttl, freshness) after the read: no answer from this copy from then on. */
  readonly expiresAt: number
  /** When a hit asks for a re-read; Infinity once asked (one re-read per copy) or never useful. */
  refreshAt: number
  /** Hits this copy answered. */
  hits: number
}

export class HotTier {
  private readonly lru: LRUCache<string, Slot>
  /** Decoded entries already put in the tier: requests that shared one read set it once. */
  private readonly inserted = new WeakSet<ResponseEntry>()

  constructor(
    maxBytes: number,
    private readonly ttlMs: number,
  ) {
    // Lifetimes are checked here on read, not by lru-cache: its ttl support keeps a clock timer.
    this.lru = new LRUCache<string, Slot>({
      maxSize: maxBytes,
      sizeCalculation: ({ entry }, key) => {
        let n = entry.body.length + key.length + ENTRY_OVERHEAD_BYTES
        for (const [name, value] of entry.headers) n += name.length + value.length
        return n
      },
    })
  }

  /** The held copy if present and still fresh at `now`, counted as a hit. */
  get(key: string, now: number): Slot | undefined {
    const slot = this.lru.get(key)
    if (slot === undefined) return undefined
    if (now >= slot.expiresAt) {
      this.lru.delete(key)
      return undefined
    }
    slot.hits++
    return slot
  }

  /**
   * True once per copy, on the first call past half its hot lifetime once it has answered
   * REFRESH_MIN_HITS hits: the caller re-reads the store and {@link set}s what it finds. Not when
   * the copy's freshness is what ends it: a re-read would bring back the same copy, and stale
   * serving belongs to the store.
   */
  claimRefresh(slot: Slot, now: number): boolean {
    if (now < slot.refreshAt || slot.hits < REFRESH_MIN_HITS) return false
    slot.refreshAt = Number.POSITIVE_INFINITY
    return true
  }

  /**
   * Keeps an entry until min(hotCache.ttl, its freshness). The body is copied once here, so the
   * entry does not pin the larger buffer the store read it from (unless the held copy has the same
   * body). A live copy stored later is kept: a read sent before this process stored a newer
   * response (a `no-cache` re-render, say) must not bring the older one back.
   */
  set(key: string, entry: ResponseEntry, now: number): void {
    const fresh = entry.staleAt - now
    const life = Math.min(this.ttlMs, fresh)
    if (life <= 0 || this.inserted.has(entry)) return
    const held = this.lru.peek(key)
    if (held !== undefined && now < held.expiresAt && entry.cachedAt < held.entry.cachedAt) return
    this.inserted.add(entry)
    const same =
      held !== undefined &&
      held.entry.cachedAt === entry.cachedAt &&
      held.entry.body.equals(entry.body)
    this.lru.set(key, {
      // Only the body is reused: freshness, headers and tags are the new entry's.
      entry: { ...entry, body: same ? held.entry.body : Buffer.from(entry.body) },
      expiresAt: now + life,
      refreshAt: this.ttlMs < fresh ? now + life / 2 : Number.POSITIVE_INFINITY,
      hits: 0,
    })
  }

  delete(key: string): void {
    this.lru.delete(key)
  }

  get entries(): number {
    return this.lru.size
  }

  get bytes(): number {
    return this.lru.calculatedSize
  }
}
