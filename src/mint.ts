import { hostname } from 'node:os'
import type { Logger } from 'pino'
import type { ResponseEntry } from './entry.js'
import { FAILED, type StoreGuard } from './guard.js'
import { lockKey } from './key.js'

/** A held mint lock: its key and the CAS memcached gave our `add`, which proves we own it. */
export interface Lock {
  readonly key: string
  readonly cas: bigint
}

/** Who holds a lock, for whoever inspects memcached; ownership itself is proven by the CAS. */
const OWNER = Buffer.from(`${hostname()}:${process.pid}`)

/**
 * Takes the fleet-wide mint lock for an entry key with memcached `add`, the only atomic primitive
 * memjs exposes: exactly one process wins until the lock is released or its TTL runs out (so a
 * crashed holder is replaced after `lockTtl`). Never retried: a retried add can report `false` for
 * a lock its own first attempt took. 'failed' means the store did not answer in time.
 */
export async function acquireLock(
  guard: StoreGuard,
  entryKey: string,
  ttlSeconds: number,
  deadline: number,
  logger?: Logger,
): Promise<Lock | 'lost' | 'failed'> {
  const key = lockKey(entryKey)
  const cas = await guard.call('add', (s) => s.add(key, OWNER, ttlSeconds), deadline, logger)
  if (cas === FAILED) return 'failed'
  return cas === false ? 'lost' : { key, cas }
}

/**
 * Releases a lock in one round trip, atomically: memcached's DELETE carrying our CAS deletes the
 * item only if it is still the one our `add` created. If our lock expired and another process took
 * it, its CAS differs and its lock stays.
 */
export async function releaseLock(guard: StoreGuard, lock: Lock): Promise<void> {
  await guard.call('compareAndDelete', (s) => s.compareAndDelete(lock.key, lock.cas))
}

/** What an in-process render produced for the requests waiting on it. */
export interface FlightResult {
  readonly entry: ResponseEntry
  /** Request headers the entry varies on, and the leader's normalised values for them. */
  readonly varyNames: readonly string[]
  readonly varyValues: readonly (string | null)[]
}

/**
 * In-process single flight: the first request for a cold key renders, the others in this process
 * await its result (or null: uncacheable, failed, aborted), bounded by their wait timeout.
 */
export class Flight {
  private settle!: (r: FlightResult | null) => void
  readonly result: Promise<FlightResult | null> = new Promise((resolve) => {
    this.settle = resolve
  })
  private settled = false
  /** When the render started: a flight older than the lock TTL is presumed stuck. */
  readonly startedAt = Date.now()
  constructor(private readonly onSettle: () => void) {}

  resolve(r: FlightResult | null): void {
    if (this.settled) return
    this.settled = true
    this.onSettle()
    this.settle(r)
  }

  /** The result, or null when it takes longer than `ms`. */
  wait(ms: number): Promise<FlightResult | null> {
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<null>((resolve) => {
      timer = setTimeout(resolve, ms, null)
      timer.unref()
    })
    return Promise.race([this.result, timeout]).finally(() => clearTimeout(timer))
  }
}

export const sleep = (ms: number): Promise<void> =>
  new Promise((resolve) => {
    setTimeout(resolve, ms).unref()
  })
