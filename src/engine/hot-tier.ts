/**
 * The hot tier: an in-process, byte-bounded LRU of decoded entries, read synchronously before any
 * promise is made. It only ever answers with fresh entries: stale serving, mint locks and
 * regeneration always go through the shared store. Coherence comes from the invalidation records
 * (each hot hit is judged against this process's memo of them), not from evicting here.
 */
import { LRUCache } from 'lru-cache'
import type { ResponseEntry } from '../entry.js'

/** Per-entry overhead counted against `maxBytes` besides body and headers (object, key, map slot). */
const ENTRY_OVERHEAD_BYTES = 256

export class HotTier {
  private readonly lru: LRUCache<string, ResponseEntry>

  constructor(
    maxBytes: number,
    private readonly ttlMs: number,
  ) {
    this.lru = new LRUCache<string, ResponseEntry>({
      maxSize: maxBytes,
      sizeCalculation: (entry, key) => {
        let n = entry.body.length + key.length + ENTRY_OVERHEAD_BYTES
        for (const [name, value] of entry.headers) n += name.length + value.length
        return n
      },
      // Expiry is checked on read (and the ttl of each entry set below); no timers per entry.
      ttlAutopurge: false,
    })
  }

  /** The entry if present and still fresh at `now`. */
  get(key: string, now: number): ResponseEntry | undefined {
    const entry = this.lru.get(key)
    if (entry === undefined) return undefined
    if (now >= entry.staleAt) {
      this.lru.delete(key)
      return undefined
    }
    return entry
  }

  /**
   * Keeps an entry until min(hotCache.ttl, its freshness). The body is copied once here, so the
   * entry does not pin the larger buffer the store read it from.
   */
  set(key: string, entry: ResponseEntry, now: number): void {
    const ttl = Math.min(this.ttlMs, entry.staleAt - now)
    if (ttl <= 0) return
    this.lru.set(key, { ...entry, body: Buffer.from(entry.body) }, { ttl })
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
