import type { Logger } from 'pino'
import type { RateLimitedLog } from './logging.js'
import { DeadlineQueue } from './store/deadline.js'
import type { CacheStore } from './store/types.js'

const CONSEQUENCE = {
  get: 'treating it as a miss',
  set: 'the response was not stored',
  add: 'going on without the lock',
  delete: 'the entry may live until its TTL',
  compareAndDelete: 'the lock lives until its TTL',
} as const

export type StoreOp = keyof typeof CONSEQUENCE

/** A store call that failed, timed out, or was skipped because the request's budget was spent. */
export const FAILED: unique symbol = Symbol('express-ft-cache.failed')
export type Failed = typeof FAILED

/** What the guard reports besides logging: failures by kind, and how long each call took. */
export interface GuardObserver {
  error(kind: string): void
  duration(op: StoreOp, ms: number): void
}

/**
 * Calls the store with a hard deadline and turns every failure into FAILED, logged (rate-limited).
 * This is what makes the cache fail open whatever the store does: a rejection, a throw, or a promise
 * that never settles all cost at most the remaining budget.
 */
export class StoreGuard {
  private readonly deadlines = new DeadlineQueue()

  constructor(
    private readonly store: CacheStore,
    private readonly log: RateLimitedLog,
    /** Deadline for calls off the request path (write-back, lock release, invalidation). */
    private readonly backgroundMs: number,
    private readonly observer?: GuardObserver,
  ) {}

  /** `deadline` is an absolute Date.now() time; omit for a background call. */
  call<T>(
    op: StoreOp,
    run: (s: CacheStore) => Promise<T>,
    deadline?: number,
    logger?: Logger,
  ): Promise<T | Failed> {
    const start = performance.now()
    const budget = deadline === undefined ? this.backgroundMs : deadline - Date.now()
    if (budget <= 0) {
      // The request's read budget is spent: a silent FAILED would hide why nothing was read.
      this.fail(`${op}:timeout`, undefined, 'skipped: no time left before the deadline', op, logger)
      return Promise.resolve(FAILED)
    }
    return new Promise<T | Failed>((resolve) => {
      let settled = false
      const pending = this.deadlines.add(Date.now() + budget, () => {
        // Timers run before I/O in each loop turn: after a blocked loop, a reply may already be
        // waiting in the socket. Give it that turn (setImmediate runs after the poll phase).
        setImmediate(() => {
          if (settled) return
          settled = true
          this.fail(`${op}:timeout`, undefined, `timed out after ${budget}ms`, op, logger)
          resolve(FAILED)
        })
      })
      const done = (value: T | Failed): void => {
        pending.fire = undefined
        if (settled) return
        settled = true
        this.observer?.duration(op, performance.now() - start)
        resolve(value)
      }
      try {
        Promise.resolve(run(this.store)).then(done, (err: unknown) => {
          const code = (err as { code?: unknown } | null)?.code
          const kind = typeof code === 'string' ? code : err instanceof Error ? err.name : 'error'
          this.fail(`${op}:${kind}`, err, 'failed', op, logger)
          done(FAILED)
        })
      } catch (err) {
        this.fail(`${op}:throw`, err, 'threw', op, logger)
        done(FAILED)
      }
    })
  }

  private fail(kind: string, err: unknown, what: string, op: StoreOp, logger?: Logger): void {
    this.observer?.error(kind)
    this.log.warn(kind, err, `express-ft-cache: store ${op} ${what}; ${CONSEQUENCE[op]}`, logger)
  }
}
