/**
 * MemoryStore: an in-process CacheStore for tests, development and single-process apps.
 *
 * - LRU bounded by bytes (key length + value length); least recently used entries go first.
 * - TTL is checked lazily on read: no per-key timers, nothing keeps the process alive. The clock
 *   is injectable (`now`), so tests can expire entries without sleeping.
 * - `add` is atomic: the check and the write happen in one synchronous step.
 * - Every write gives the item a new CAS from a per-store counter, as memcached does, so
 *   `compareAndDelete` behaves the same on both stores.
 * - Values are copied in and out, so a caller mutating a Buffer never changes the cache.
 * - Keys, sizes and TTLs follow the same rules as MemcachedStore (a key memcached would refuse is
 *   refused here too), so an app tested on MemoryStore does not break on memcached.
 *
 * It is not shared between processes: an `add` lock taken here only locks this process.
 */
import {
  assertBuffer,
  assertCas,
  assertValidKey,
  clampTtl,
  readInteger,
  readOptions,
  StoreClosedError,
  ValueTooLargeError,
} from './common.js'
import type { CacheStore } from './types.js'

export {
  InvalidKeyError,
  StoreClosedError,
  type StoreErrorCode,
  ValueTooLargeError,
} from './common.js'

export interface MemoryStoreOptions {
  /** Total bytes (keys + values) kept before the least recently used entries are evicted. Default 64 MiB. */
  maxBytes?: number
  /** Largest value accepted by `set`/`add`, in bytes. Default 1 MiB (memcached's default item size). */
  maxValueBytes?: number
  /**
   * Millisecond clock that decides expiry, e.g. a fake clock in tests. Only differences matter.
   * Default `performance.now()` (monotonic: wall-clock jumps do not expire or revive entries).
   */
  now?: () => number
}

const OPTION_NAMES = [
  'maxBytes',
  'maxValueBytes',
  'now',
] as const satisfies readonly (keyof MemoryStoreOptions)[]
const MIB = 1024 * 1024

interface Entry {
  readonly value: Buffer
  /** Clock time (the `now` option) after which the entry is gone. */
  readonly expiresAt: number
  readonly size: number
  /** Set when the entry is stored; unique per write. */
  cas: bigint
}

export class MemoryStore implements CacheStore {
  readonly maxBytes: number
  readonly #maxValueBytes: number
  readonly #now: () => number
  #lastCas = 0n
  /** Map iteration order is insertion order: the first entry is the least recently used. */
  readonly #entries = new Map<string, Entry>()
  #bytes = 0
  #closed = false

  constructor(options?: MemoryStoreOptions) {
    const o = readOptions<MemoryStoreOptions>(
      options,
      OPTION_NAMES,
      'MemoryStore',
      '{ maxBytes: 64 * 1024 * 1024 }',
    )
    this.maxBytes = readInteger(o.maxBytes, 'maxBytes', 64 * MIB, 1024, Number.MAX_SAFE_INTEGER)
    this.#maxValueBytes = readInteger(
      o.maxValueBytes,
      'maxValueBytes',
      MIB,
      0,
      Number.MAX_SAFE_INTEGER,
    )
    if (o.now !== undefined && typeof o.now !== 'function') {
      throw new TypeError(
        `express-ft-cache: \`now\` must be a function returning milliseconds, e.g. () => performance.now() (got ${typeof o.now})`,
      )
    }
    this.#now = o.now ?? (() => performance.now())
  }

  /** Bytes currently held (keys + values, expired entries not yet evicted included). */
  get bytes(): number {
    return this.#bytes
  }

  /** Entries currently held (expired entries not yet evicted included). */
  get size(): number {
    return this.#entries.size
  }

  /** The `maxValueBytes` option, or less when the key leaves less room under `maxBytes`. */
  maxValueBytes(keyBytes: number): number {
    if (typeof keyBytes !== 'number' || !(keyBytes >= 0)) {
      throw new TypeError(
        `express-ft-cache: maxValueBytes(keyBytes) needs a byte count >= 0 (got ${String(keyBytes)})`,
      )
    }
    return Math.max(0, Math.min(this.#maxValueBytes, this.maxBytes - keyBytes))
  }

  async get(key: string): Promise<Buffer | undefined> {
    assertValidKey(key)
    this.#assertOpen()
    const entry = this.#live(key)
    if (!entry) return undefined
    // Mark as most recently used.
    this.#entries.delete(key)
    this.#entries.set(key, entry)
    return Buffer.from(entry.value)
  }

  async set(key: string, value: Buffer, ttlSeconds: number): Promise<void> {
    const entry = this.#prepare(key, value, ttlSeconds)
    this.#store(key, entry)
  }

  async add(key: string, value: Buffer, ttlSeconds: number): Promise<bigint | false> {
    const entry = this.#prepare(key, value, ttlSeconds)
    if (this.#live(key)) return false
    this.#store(key, entry)
    return entry.cas
  }

  async delete(key: string): Promise<void> {
    assertValidKey(key)
    this.#assertOpen()
    this.#remove(key)
  }

  /** Deletes `key` only if its CAS is still `cas`; `true` when deleted. */
  async compareAndDelete(key: string, cas: bigint): Promise<boolean> {
    assertValidKey(key)
    assertCas(cas)
    this.#assertOpen()
    if (this.#live(key)?.cas !== cas) return false
    this.#remove(key)
    return true
  }

  /** Drops every entry; later calls reject with a StoreClosedError. */
  async close(): Promise<void> {
    this.#closed = true
    this.#entries.clear()
    this.#bytes = 0
  }

  #assertOpen(): void {
    if (this.#closed) throw new StoreClosedError('MemoryStore')
  }

  /** Validates and copies; throws before anything changes. */
  #prepare(key: string, value: Buffer, ttlSeconds: number): Entry {
    assertValidKey(key)
    assertBuffer(value)
    const ttl = clampTtl(ttlSeconds)
    this.#assertOpen()
    const limit = this.maxValueBytes(key.length)
    if (value.length > limit) throw new ValueTooLargeError(value.length, limit)
    return {
      value: Buffer.from(value),
      expiresAt: this.#now() + ttl * 1000,
      size: key.length + value.length,
      cas: 0n,
    }
  }

  /** The entry under `key` if present and not expired; an expired one is removed. */
  #live(key: string): Entry | undefined {
    const entry = this.#entries.get(key)
    if (!entry) return undefined
    if (this.#now() >= entry.expiresAt) {
      this.#remove(key)
      return undefined
    }
    return entry
  }

  #store(key: string, entry: Entry): void {
    entry.cas = ++this.#lastCas
    this.#remove(key)
    this.#entries.set(key, entry)
    this.#bytes += entry.size
    for (const [oldest] of this.#entries) {
      if (this.#bytes <= this.maxBytes) break
      this.#remove(oldest)
    }
  }

  #remove(key: string): void {
    const entry = this.#entries.get(key)
    if (!entry) return
    this.#entries.delete(key)
    this.#bytes -= entry.size
  }
}
