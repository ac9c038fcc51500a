import { randomBytes } from 'node:crypto'
import { hostname } from 'node:os'
import type { Logger } from 'pino'
import type { ResponseEntry } from './entry.js'
import { FAILED, type StoreGuard } from './guard.js'
import { lockKey } from './key.js'

/** A held mint lock: its key and the token that proves this request owns it. */
export interface Lock {
  readonly key: string
  readonly token: Buffer
}

const OWNER = `${hostname()}:${process.pid}:`

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
  const lock = {
    key: lockKey(entryKey),
    token: Buffer.from(OWNER + randomBytes(9).toString('base64url')),
  }
  const won = await guard.call(
    'add',
    (s) => s.add(lock.key, lock.token, ttlSeconds),
    deadline,
    logger,
  )
  if (won === FAILED) return 'failed'
  return won ? lock : 'lost'
}

/**
 * Best-effort release: delete only if the lock still holds our token (it may have expired and been
 * taken by another process, whose lock we must not drop). Without CAS there is a small window between
 * the read and the delete; the lock TTL bounds the harm.
 */
export async function releaseLock(guard: StoreGuard, lock: Lock): Promise<void> {
  const held = await guard.call('get', (s) => s.get(lock.key))
  if (held !== FAILED && held !== undefined && held.equals(lock.token)) {
    await guard.call('delete', (s) => s.delete(lock.key))
  }
}

/** Whether some process holds the lock for this entry key right now. */
export async function isLocked(
  guard: StoreGuard,
  entryKey: string,
  deadline: number,
): Promise<boolean | 'failed'> {
  const held = await guard.call('get', (s) => s.get(lockKey(entryKey)), deadline)
  return held === FAILED ? 'failed' : held !== undefined
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
