/**
 * A small circuit breaker for one backend (one memcached server).
 *
 *   closed --(failureThreshold consecutive failures)--> open
 *   open --(cooldownMs elapsed, on the next acquire)--> half-open: exactly one probe call goes through
 *   half-open --(probe succeeds)--> closed;  half-open --(probe fails)--> open again
 *
 * It runs no timers: the move to half-open is decided lazily by `acquire()`, so an idle breaker
 * never keeps the process alive. A caller that wants to probe without waiting for traffic asks
 * {@link CircuitBreaker.msUntilProbe} when to call `acquire()`. The clock is injectable for tests.
 *
 * Outcomes are reported against the permit `acquire()` returned. A permit belongs to the breaker
 * "epoch" in which it was issued, and every state change starts a new epoch, so late outcomes of
 * calls started before a transition are ignored: a slow failure that lands after the breaker closed
 * again cannot re-open it, and stale results can never count as the probe's result.
 */

export type BreakerState = 'closed' | 'open' | 'half-open'

/** A permission to make one call, returned by {@link CircuitBreaker.acquire}. Opaque. */
export type BreakerPermit = number

export interface CircuitBreakerOptions {
  /** Consecutive failures that open the breaker. Integer >= 1, default 5. */
  failureThreshold?: number
  /** How long the breaker stays open before letting one probe through, in ms. Default 2000. */
  cooldownMs?: number
  /** Millisecond clock. Default `performance.now()` (monotonic: wall-clock jumps do not matter). */
  now?: () => number
  /**
   * Called synchronously each time the breaker opens, with the failure that opened it;
   * `reopened` is true when a half-open probe failed. Exceptions thrown here are caught and
   * ignored, so the breaker's accounting stays consistent.
   */
  onOpen?: (error: unknown, reopened: boolean) => void
  /** Called synchronously when a successful probe closes the breaker. Exceptions are ignored. */
  onClose?: () => void
}

/** Stable code of {@link CircuitOpenError}. */
export const CIRCUIT_OPEN_ERROR_CODE = 'ECIRCUIT_OPEN'

/** Thrown by {@link CircuitBreaker.run} when the breaker refuses the call. */
export class CircuitOpenError extends Error {
  readonly code = CIRCUIT_OPEN_ERROR_CODE
  constructor(message = 'express-ft-cache: circuit breaker is open') {
    super(message)
    this.name = 'CircuitOpenError'
  }
}

export class CircuitBreaker {
  readonly failureThreshold: number
  readonly cooldownMs: number
  readonly #now: () => number
  readonly #onOpen: ((error: unknown, reopened: boolean) => void) | undefined
  readonly #onClose: (() => void) | undefined

  #state: BreakerState = 'closed'
  #epoch = 0
  #failures = 0
  #openedAt = 0
  #probeStartedAt = 0

  constructor(options: CircuitBreakerOptions = {}) {
    const threshold = options.failureThreshold ?? 5
    if (!Number.isInteger(threshold) || threshold < 1) {
      throw new TypeError(
        `express-ft-cache: failureThreshold must be an integer >= 1 (got ${String(threshold)})`,
      )
    }
    const cooldown = options.cooldownMs ?? 2000
    if (!Number.isFinite(cooldown) || cooldown < 0) {
      throw new TypeError(
        `express-ft-cache: cooldownMs must be a finite number >= 0 (got ${String(cooldown)})`,
      )
    }
    this.failureThreshold = threshold
    this.cooldownMs = cooldown
    this.#now = options.now ?? (() => performance.now())
    this.#onOpen = options.onOpen
    this.#onClose = options.onClose
  }

  /** The current state. An open breaker whose cooldown has elapsed reports 'open' until the next `acquire()`. */
  get state(): BreakerState {
    return this.#state
  }

  /**
   * Milliseconds until `acquire()` lets a probe through: the rest of the cooldown when open, or of
   * the lost-probe allowance when half-open with the probe out; 0 when it would now, or when closed.
   */
  msUntilProbe(): number {
    if (this.#state === 'closed') return 0
    const since = this.#state === 'open' ? this.#openedAt : this.#probeStartedAt
    return Math.max(0, this.cooldownMs - (this.#now() - since))
  }

  /** Consecutive failures counted so far in the closed state. */
  get failures(): number {
    return this.#failures
  }

  /**
   * Asks to make one call. Returns a permit, or `undefined` when the call must not be made (open, or
   * half-open with the probe already out). Report the outcome with `success(permit)` or
   * `failure(permit, error)`.
   */
  acquire(): BreakerPermit | undefined {
    switch (this.#state) {
      case 'closed':
        return this.#epoch
      case 'open': {
        const now = this.#now()
        if (now - this.#openedAt < this.cooldownMs) return undefined
        this.#state = 'half-open'
        this.#epoch++
        this.#probeStartedAt = now
        return this.#epoch
      }
      case 'half-open': {
        // The probe is out. If it never reported (a caller that lost its permit), allow a new probe
        // after another cooldown rather than staying half-open forever.
        const now = this.#now()
        if (now - this.#probeStartedAt < this.cooldownMs) return undefined
        this.#epoch++
        this.#probeStartedAt = now
        return this.#epoch
      }
    }
  }

  /** Reports that the call made under `permit` succeeded. Stale permits are ignored. */
  success(permit: BreakerPermit): void {
    if (permit !== this.#epoch) return
    if (this.#state === 'half-open') {
      this.#state = 'closed'
      this.#failures = 0
      this.#epoch++
      try {
        this.#onClose?.()
      } catch {
        // See CircuitBreakerOptions.onClose.
      }
      return
    }
    this.#failures = 0
  }

  /** Reports that the call made under `permit` failed. Stale permits are ignored. */
  failure(permit: BreakerPermit, error?: unknown): void {
    if (permit !== this.#epoch) return
    if (this.#state === 'half-open') {
      this.#open(error, true)
      return
    }
    if (this.#state === 'closed' && ++this.#failures >= this.failureThreshold) {
      this.#open(error, false)
    }
  }

  /** Runs `fn` under the breaker; rejects with {@link CircuitOpenError} without calling it when refused. */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    const permit = this.acquire()
    if (permit === undefined) throw new CircuitOpenError()
    try {
      const value = await fn()
      this.success(permit)
      return value
    } catch (error) {
      this.failure(permit, error)
      throw error
    }
  }

  #open(error: unknown, reopened: boolean): void {
    this.#state = 'open'
    this.#openedAt = this.#now()
    this.#failures = 0
    this.#epoch++
    try {
      this.#onOpen?.(error, reopened)
    } catch {
      // See CircuitBreakerOptions.onOpen.
    }
  }
}
