/**
 * Errors, key and TTL checks and option helpers shared by the built-in stores.
 *
 * Every error a store raises carries a stable `code`; match on the code, never on the message.
 */
import { MAX_KEY_BYTES, MAX_RELATIVE_TTL_SECONDS } from './types.js'

export type StoreErrorCode =
  | 'ESTORE_UNAVAILABLE'
  | 'ESTORE_CLOSED'
  | 'ESTORE_CONNECTION'
  | 'ESTORE_RESPONSE'
  | 'EVALUE_TOO_LARGE'
  | 'EINVALID_KEY'

/**
 * The server's circuit breaker is open: the call was refused without touching the network.
 * `cause` is the failure that opened the breaker, when known.
 */
export class StoreUnavailableError extends Error {
  readonly code = 'ESTORE_UNAVAILABLE'
  readonly server: string
  constructor(server: string, cause?: unknown) {
    super(
      `express-ft-cache: memcached server ${server} is marked down after repeated failures; ` +
        'the call was not sent (circuit breaker open, retrying after the cooldown)',
      cause === undefined ? undefined : { cause },
    )
    this.name = 'StoreUnavailableError'
    this.server = server
  }
}

/** The store was closed with `close()`; create a new store to keep using the cache. */
export class StoreClosedError extends Error {
  readonly code = 'ESTORE_CLOSED'
  constructor(store: string) {
    super(`express-ft-cache: ${store} is closed; create a new store after calling close()`)
    this.name = 'StoreClosedError'
  }
}

/** The connection to a server failed (refused, reset, closed, timed out connecting). `cause` has the detail. */
export class StoreConnectionError extends Error {
  readonly code = 'ESTORE_CONNECTION'
  readonly server: string
  constructor(server: string, message: string, cause?: unknown) {
    super(
      `express-ft-cache: memcached server ${server}: ${message}`,
      cause === undefined ? undefined : { cause },
    )
    this.name = 'StoreConnectionError'
    this.server = server
  }
}

/** The server answered with an error status (memcached binary protocol status in `status`). */
export class StoreResponseError extends Error {
  readonly code = 'ESTORE_RESPONSE'
  readonly server: string
  readonly status: number
  constructor(server: string, operation: string, status: number, statusText: string) {
    super(
      `express-ft-cache: memcached server ${server} answered ${operation} with status 0x${status
        .toString(16)
        .padStart(4, '0')} (${statusText})`,
    )
    this.name = 'StoreResponseError'
    this.server = server
    this.status = status
  }
}

/** A value larger than the store's `maxValueBytes(keyBytes)`; it was not sent. */
export class ValueTooLargeError extends RangeError {
  readonly code = 'EVALUE_TOO_LARGE'
  readonly size: number
  readonly limit: number
  constructor(size: number, limit: number) {
    super(
      `express-ft-cache: value of ${size} bytes is larger than the store's limit of ${limit} bytes ` +
        'for this key; it was not stored (raise the item size, e.g. memcached -I and the `itemSize` option, or cache smaller responses)',
    )
    this.name = 'ValueTooLargeError'
    this.size = size
    this.limit = limit
  }
}

/** A key that memcached cannot take (too long, empty, whitespace, control or non-ASCII characters). */
export class InvalidKeyError extends TypeError {
  readonly code = 'EINVALID_KEY'
  constructor(reason: string) {
    super(`express-ft-cache: invalid cache key: ${reason}`)
    this.name = 'InvalidKeyError'
  }
}

// Printable ASCII without space: 0x21-0x7e.
const VALID_KEY = /^[\x21-\x7e]+$/

/**
 * Throws {@link InvalidKeyError} unless `key` is 1..250 printable ASCII characters without spaces.
 * Checked before anything is sent: a key over 250 bytes makes memcached close the connection, which
 * fails every other request pipelined on it.
 */
export function assertValidKey(key: unknown): asserts key is string {
  if (typeof key !== 'string') {
    throw new InvalidKeyError(`expected a string, got ${typeof key}`)
  }
  if (key.length === 0) throw new InvalidKeyError('the key is empty')
  if (key.length > MAX_KEY_BYTES) {
    throw new InvalidKeyError(
      `${key.length} characters is longer than memcached's ${MAX_KEY_BYTES}-byte limit (hash long keys)`,
    )
  }
  if (!VALID_KEY.test(key)) {
    throw new InvalidKeyError(
      'keys may contain printable ASCII only, without whitespace or control characters ' +
        `(got ${JSON.stringify(key.slice(0, 60))}${key.length > 60 ? '…' : ''}); encode or hash the parts`,
    )
  }
}

/** Largest CAS value: memcached's CAS is an unsigned 64-bit integer in the binary header. */
export const MAX_CAS = 2n ** 64n - 1n

/**
 * Throws a TypeError unless `cas` is a bigint in [1, 2^64 - 1]. 0 is refused: to memcached a DELETE
 * with CAS 0 is unconditional, so a lost CAS must never turn a release into a blind delete.
 */
export function assertCas(cas: unknown): asserts cas is bigint {
  if (typeof cas !== 'bigint' || cas < 1n || cas > MAX_CAS) {
    throw new TypeError(
      `express-ft-cache: compareAndDelete needs the CAS (a bigint from 1 to 2^64 - 1) that add resolved (got ${typeof cas === 'bigint' ? `${cas}n` : typeof cas})`,
    )
  }
}

/** Throws a TypeError unless `value` is a Buffer. */
export function assertBuffer(value: unknown): asserts value is Buffer {
  if (!Buffer.isBuffer(value)) {
    throw new TypeError(`express-ft-cache: store values must be Buffers (got ${typeof value})`)
  }
}

/**
 * A TTL in whole seconds within [1, 2,592,000]: fractions round up, values past 30 days are clamped
 * (memcached reads larger numbers as absolute Unix times, i.e. already expired), values below 1 become
 * 1 (0 would mean "never expire" to memcached).
 */
export function clampTtl(ttlSeconds: unknown): number {
  if (typeof ttlSeconds !== 'number' || Number.isNaN(ttlSeconds)) {
    throw new TypeError(
      `express-ft-cache: ttlSeconds must be a number of seconds (got ${String(ttlSeconds)})`,
    )
  }
  return Math.min(MAX_RELATIVE_TTL_SECONDS, Math.max(1, Math.ceil(ttlSeconds)))
}

/** Edit distance, for "did you mean" hints. */
function editDistance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, i) => i)
  for (let i = 1; i <= a.length; i++) {
    let diagonal = prev[0]!
    prev[0] = i
    for (let j = 1; j <= b.length; j++) {
      const above = prev[j]!
      prev[j] = Math.min(above + 1, prev[j - 1]! + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1))
      diagonal = above
    }
  }
  return prev[b.length]!
}

/** The known name closest to `name`, if it is a plausible typo of it. */
export function closestName(name: string, known: readonly string[]): string | undefined {
  let best: string | undefined
  let bestDistance = Number.POSITIVE_INFINITY
  for (const candidate of known) {
    const distance =
      candidate.toLowerCase() === name.toLowerCase() ? 0 : editDistance(name, candidate)
    if (distance < bestDistance) {
      best = candidate
      bestDistance = distance
    }
  }
  return bestDistance <= Math.max(2, Math.floor(name.length / 3)) ? best : undefined
}

/**
 * Checks that `options` is undefined or a plain object whose keys are all in `known`, and returns a
 * shallow copy (the caller's object is never touched). Unknown names fail with a "did you mean" hint.
 */
export function readOptions<T extends object>(
  options: unknown,
  known: readonly (keyof T & string)[],
  owner: string,
  example: string,
): Partial<T> {
  if (options === undefined || options === null) return {}
  if (typeof options !== 'object' || Array.isArray(options)) {
    throw new TypeError(
      `express-ft-cache: ${owner} takes an options object, e.g. \`new ${owner}(${example})\` (got ${
        Array.isArray(options) ? 'an array' : typeof options
      })`,
    )
  }
  for (const name of Object.keys(options)) {
    if (!(known as readonly string[]).includes(name)) {
      const hint = closestName(name, known)
      throw new TypeError(
        `express-ft-cache: unknown ${owner} option \`${name}\`${hint ? `; did you mean \`${hint}\`?` : ''} ` +
          `Known options: ${known.join(', ')}.`,
      )
    }
  }
  return { ...(options as Partial<T>) }
}

/** An integer option within [min, max]; `undefined` gives `fallback`. */
export function readInteger(
  value: unknown,
  name: string,
  fallback: number,
  min: number,
  max: number,
): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new TypeError(
      `express-ft-cache: \`${name}\` must be an integer from ${min} to ${max} (got ${JSON.stringify(value) ?? String(value)})`,
    )
  }
  return value
}
