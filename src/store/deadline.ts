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

/** A deadline waiting in a {@link DeadlineQueue}; clearing `fire` cancels it. */
export interface PendingDeadline {
  readonly at: number
  fire: (() => void) | undefined
}

/**
 * One timer for many deadlines instead of one each (a timer costs an allocation and a list insert
 * to create and to clear; a busy process makes thousands of store calls a second). Deadlines are
 * kept in order; most are "now + the same budget", so they arrive in order and adding is a push.
 * The timer is unref()ed: a pending deadline never keeps the process alive.
 */
export class DeadlineQueue {
  private queue: PendingDeadline[] = []
  private timer: NodeJS.Timeout | undefined
  private armedAt = Number.POSITIVE_INFINITY

  /** Calls `fire` at `at` (a Date.now() time) unless the returned item's `fire` is cleared first. */
  add(at: number, fire: () => void): PendingDeadline {
    const item: PendingDeadline = { at, fire }
    const q = this.queue
    if (q.length === 0 || (q[q.length - 1] as PendingDeadline).at <= at) q.push(item)
    else {
      let lo = 0
      let hi = q.length
      while (lo < hi) {
        const mid = (lo + hi) >> 1
        if ((q[mid] as PendingDeadline).at <= at) lo = mid + 1
        else hi = mid
      }
      q.splice(lo, 0, item)
    }
    if (at < this.armedAt) this.arm(at)
    return item
  }

  private arm(at: number): void {
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.armedAt = at
    this.timer = setTimeout(() => this.expire(), Math.max(0, at - Date.now()))
    this.timer.unref()
  }

  private expire(): void {
    this.timer = undefined
    this.armedAt = Number.POSITIVE_INFINITY
    const now = Date.now()
    let n = 0
    while (n < this.queue.length && (this.queue[n] as PendingDeadline).at <= now) {
      const fire = (this.queue[n] as PendingDeadline).fire
      if (fire !== undefined) fire()
      n++
    }
    this.queue = n === this.queue.length ? [] : this.queue.slice(n)
    // Settled calls leave their slot behind (cheaper than removing it): skip over them.
    while (this.queue.length > 0 && (this.queue[0] as PendingDeadline).fire === undefined)
      this.queue.shift()
    const head = this.queue[0]
    if (head !== undefined) this.arm(head.at)
  }
}

/**
 * Settles like `p`, or rejects with a {@link DeadlineError} once `ms` milliseconds have passed,
 * whichever comes first.
 *
 * - A reply already received when the deadline passes still wins (see below).
 * - The deadline is cancelled as soon as `p` settles, and never keeps the process alive.
 * - `p` always gets a rejection handler: if it rejects after the deadline fired, the late rejection
 *   is observed (and dropped) rather than reported as an unhandled rejection. The caller has already
 *   been given the DeadlineError; the late outcome has no one left to tell.
 * - `queue`: share one timer with other calls (see {@link DeadlineQueue}); else a timer of its own.
 */
export function withDeadline<T>(
  p: Promise<T>,
  ms: number,
  what: string,
  queue?: DeadlineQueue,
): Promise<T> {
  if (!Number.isFinite(ms) || ms < 0) {
    throw new RangeError(
      `express-ft-cache: withDeadline needs a finite, non-negative ms (got ${ms})`,
    )
  }
  return new Promise<T>((resolve, reject) => {
    // Timers run before I/O in each event-loop turn: after the loop was blocked, the reply may be
    // sitting in the socket already. setImmediate lets that poll phase run before we give up.
    const expire = (): void => {
      setImmediate(() => reject(new DeadlineError(what, ms)))
    }
    let cancel: () => void
    if (queue === undefined) {
      const timer = setTimeout(expire, ms)
      timer.unref()
      cancel = () => clearTimeout(timer)
    } else {
      const pending = queue.add(Date.now() + ms, expire)
      cancel = () => {
        pending.fire = undefined
      }
    }
    p.then(
      (value) => {
        cancel()
        resolve(value)
      },
      (error: unknown) => {
        cancel()
        reject(error)
      },
    )
  })
}
