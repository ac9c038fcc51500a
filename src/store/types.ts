/**
 * The storage contract of express-ft-cache.
 *
 * A store keeps opaque byte values under string keys with a time to live. It never interprets
 * values: the cache encodes and decodes entries itself (see `src/entry.ts`).
 *
 * Rules every store must follow (the conformance suite in `test/store/conformance.ts` checks them):
 * - Keys are printable ASCII without spaces, at most 250 bytes (memcached's limit). A key may carry
 *   a suffix after the first `~` (a lock, a variant); a store that shards over several servers must
 *   route on the part before the first `~` (see {@link routingKey}), so an entry and its lock always
 *   live on the same server: `add` on the lock is only a lock if every process asks the same server.
 * - `get` resolves the exact bytes stored, or `undefined` when absent or expired.
 * - `set` overwrites unconditionally. `ttlSeconds` is a whole number >= 1 and <= 2,592,000 (30 days,
 *   memcached's relative-expiry limit).
 * - `add` stores only when the key is absent. It resolves the new item's CAS (a bigint, never `0n`)
 *   when *this call* stored it, `false` when the key existed. It is the mint lock, so it must be
 *   atomic across every process that shares the store, and never retried internally (a retried add
 *   can report `false` for a lock its own first attempt took).
 * - `compareAndDelete` deletes only if the item is unchanged since the write that returned `cas`
 *   (memcached: DELETE carrying the CAS; a `set`, or a delete and a new `add`, changes it). It
 *   releases a lock in one round trip and without the race of get-then-delete, where our lock may
 *   expire and be taken by another process between the read and the delete, and we would drop
 *   theirs. Resolves `true` when deleted, `false` when absent or changed.
 * - `delete` of an absent key is not an error.
 * - Failures reject (or throw). The middleware turns every rejection, and every call that outlives
 *   its deadline, into a cache miss: a store must not swallow errors into fake misses, or the
 *   middleware cannot log them or open its view of the store's health.
 */
export interface CacheStore {
  /**
   * The largest value, in bytes, that `set` can store under a key of `keyBytes` bytes; larger values
   * are never written (memcached rejects them *and deletes the item already stored under the key*).
   * Omit for no limit.
   */
  maxValueBytes?(keyBytes: number): number
  get(key: string): Promise<Buffer | undefined>
  set(key: string, value: Buffer, ttlSeconds: number): Promise<void>
  add(key: string, value: Buffer, ttlSeconds: number): Promise<bigint | false>
  delete(key: string): Promise<void>
  compareAndDelete(key: string, cas: bigint): Promise<boolean>
  /** Releases connections and timers; after it resolves the process can exit. */
  close?(): Promise<void>
}

/** Longest memcached key, in bytes (memcached protocol.txt, "Keys"). */
export const MAX_KEY_BYTES = 250

/** memcached reads relative expiry times up to 30 days; larger numbers mean absolute Unix times. */
export const MAX_RELATIVE_TTL_SECONDS = 2_592_000

/** The part of a key that decides which server holds it: everything before the first `~`. */
export function routingKey(key: string): string {
  const i = key.indexOf('~')
  return i === -1 ? key : key.slice(0, i)
}

/** Runtime shape check for user-supplied stores, so a wrong object fails at startup, not per request. */
export function assertCacheStore(value: unknown): asserts value is CacheStore {
  const missing = ['get', 'set', 'add', 'delete', 'compareAndDelete'].filter(
    (m) => typeof (value as Record<string, unknown> | null)?.[m] !== 'function',
  )
  if (value === null || typeof value !== 'object' || missing.length > 0) {
    throw new TypeError(
      `express-ft-cache: \`store\` must implement the CacheStore interface (get, set, add, delete, compareAndDelete); ` +
        `missing: ${missing.join(', ') || 'everything'}. Pass \`new MemcachedStore({ servers })\` or \`new MemoryStore()\`.`,
    )
  }
}
