import type { Logger } from 'pino'
import type { RateLimitedLog } from './logging.js'
import type { CacheStore } from './store/types.js'

const CONSEQUENCE = {
  get: 'treating it as a miss',
  add: 'going on without the lock',
  set: 'the response was not stored',
  delete: 'the entry may live until its TTL',
} as const

/** A store call that failed, timed out, or was skipped because the request's budget was spent. */
export const FAILED: unique symbol = Symbol('express-ft-cache.failed')
export type Failed = typeof FAILED

/**
 * Calls the store with a hard deadline and turns every failure into FAILED, logged (rate-limited).
 * This is what makes the cache fail open whatever the store does: a rejection, a throw, or a promise
 * that never settles all cost at most the remaining budget.
 */
export class StoreGuard {
  constructor(
    private readonly store: CacheStore,
    private readonly log: RateLimitedLog,
    /** Deadline for calls off the request path (write-back, lock release, invalidation). */
    private readonly backgroundMs: number,
  ) {}

  /** `deadline` is an absolute Date.now() time; omit for a background call. */
  call<T>(
    op: 'get' | 'set' | 'add' | 'delete',
    run: (s: CacheStore) => Promise<T>,
    deadline?: number,
    logger?: Logger,
  ): Promise<T | Failed> {
    const budget = deadline === undefined ? this.backgroundMs : deadline - Date.now()
    if (budget <= 0) return Promise.resolve(FAILED)
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<Failed>((resolve) => {
      timer = setTimeout(() => {
        // Timers run before I/O in each loop turn: after a blocked loop, a reply may already be
        // waiting in the socket. Give it that turn (setImmediate runs after the poll phase).
        setImmediate(() => {
          this.log.warn(
            `${op}:timeout`,
            undefined,
            `express-ft-cache: store ${op} timed out after ${budget}ms; ${CONSEQUENCE[op]}`,
            logger,
          )
          resolve(FAILED)
        })
      }, budget)
      timer.unref()
    })
    let attempt: Promise<T | Failed>
    try {
      attempt = Promise.resolve(run(this.store)).catch((err: unknown) => {
        const code = (err as { code?: unknown } | null)?.code
        this.log.warn(
          `${op}:${typeof code === 'string' ? code : err instanceof Error ? err.name : 'error'}`,
          err,
          `express-ft-cache: store ${op} failed; ${CONSEQUENCE[op]}`,
          logger,
        )
        return FAILED
      })
    } catch (err) {
      attempt = Promise.resolve(FAILED)
      this.log.warn(
        `${op}:throw`,
        err,
        `express-ft-cache: store ${op} threw; ${CONSEQUENCE[op]}`,
        logger,
      )
    }
    return Promise.race([attempt, timeout]).finally(() => clearTimeout(timer))
  }
}
