/**
 * A hard deadline around a promise.
 *
 * memjs's own timeouts are socket idle timers: an operation can outlive them under steady traffic
 * (memjs #119), and some requests never call back at all (the server closed the connection after
 * they were written, memjs #162 / #172). Every store call is therefore wrapped in `withDeadline`,
 * which settles on its own clock whatever the client does.
 */

/** Stable code of {@link DeadlineError}. */
export const DEADLINE_ERROR_CODE = 'ETIMEDOUT_DEADLINE'

/** The wrapped operation did not settle within its deadline. */
export class DeadlineError extends Error {
  readonly code = DEADLINE_ERROR_CODE
  /** The deadline that passed, in milliseconds. */
  readonly ms: number

  constructor(what: string, ms: number) {
    super(`express-ft-cache: ${what} did not finish within ${ms} ms`)
    this.name = 'DeadlineError'
    this.ms = ms
  }
}

/**
 * Settles like `p`, or rejects with a {@link DeadlineError} once `ms` milliseconds have passed,
 * whichever comes first.
 *
 * - A reply already received when the timer fires still wins (see below).
 * - The timer is cleared as soon as `p` settles and is `unref()`ed, so a pending deadline never keeps
 *   the process alive.
 * - `p` always gets a rejection handler: if it rejects after the deadline fired, the late rejection
 *   is observed (and dropped) rather than reported as an unhandled rejection. The caller has already
 *   been given the DeadlineError; the late outcome has no one left to tell.
 */
export function withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  if (!Number.isFinite(ms) || ms < 0) {
    throw new RangeError(
      `express-ft-cache: withDeadline needs a finite, non-negative ms (got ${ms})`,
    )
  }
  return new Promise<T>((resolve, reject) => {
    // Timers run before I/O in each event-loop turn: after the loop was blocked, the reply may be
    // sitting in the socket already. setImmediate lets that poll phase run before we give up.
    const timer = setTimeout(() => setImmediate(() => reject(new DeadlineError(what, ms))), ms)
    timer.unref()
    p.then(
      (value) => {
        clearTimeout(timer)
        resolve(value)
      },
      (error: unknown) => {
        clearTimeout(timer)
        reject(error)
      },
    )
  })
}
