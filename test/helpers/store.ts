/**
 * A CacheStore wrapper whose every operation can be made to fail, hang, throw, lag or be dropped,
 * per call, and which records what the cache asked of it. Tests drive fail-open paths with it
 * through the public API only: it never needs to know how keys are built.
 */
import { type CacheStore, MemoryStore } from '../../src/index.js'

export type StoreOp = 'get' | 'set' | 'add' | 'delete' | 'compareAndDelete'

/** What a rule does to one call. */
export type Fault =
  /** Reject with an Error (as a store does on a transport failure). */
  | 'reject'
  /** Throw synchronously, before any promise exists (a buggy store). */
  | 'throw'
  /** Return a promise that settles only at `releaseHung()` or `close()`. */
  | 'hang'
  /**
   * Pretend, without touching the inner store: `get` misses, `set`/`delete` succeed, and `add`
   * resolves false, as when another process holds the lock.
   */
  | 'drop'
  /** Run against the inner store after this many milliseconds. */
  | { readonly delayMs: number }
  /** Run against the inner store once this promise settles. */
  | { readonly after: Promise<unknown> }

export interface StoreCall {
  readonly op: StoreOp
  readonly key: string
  /** 1 for the first call of this op, 2 for the second... */
  readonly n: number
  /** 'pending' until the call settled (or forever, for a hung call). */
  outcome: 'pending' | 'ok' | 'rejected' | 'thrown' | 'dropped'
}

/** Decides what happens to a call; undefined (or no rule) passes it to the inner store. */
export type Rule = (call: StoreCall) => Fault | undefined

export class StoreFault extends Error {
  constructor(op: StoreOp) {
    super(`injected ${op} failure`)
    this.name = 'StoreFault'
  }
}

export class ControlledStore implements CacheStore {
  readonly calls: StoreCall[] = []
  readonly #rules = new Map<StoreOp, Rule>()
  readonly #hung = new Set<() => void>()
  readonly #watchers = new Set<() => void>()

  constructor(readonly inner: CacheStore = new MemoryStore()) {}

  /** Sets the rule for one operation (replacing any previous one). */
  rule(op: StoreOp, rule: Rule | Fault): this {
    this.#rules.set(op, typeof rule === 'function' ? rule : () => rule)
    return this
  }

  /** Removes the rule of one operation, or of all. */
  clear(op?: StoreOp): this {
    if (op === undefined) this.#rules.clear()
    else this.#rules.delete(op)
    return this
  }

  /** Calls of `op` so far (optionally only those matching `where`). */
  count(op: StoreOp, where: (call: StoreCall) => boolean = () => true): number {
    return this.calls.filter((c) => c.op === op && where(c)).length
  }

  /**
   * Resolves once `n` calls of `op` have settled (the cache has their result in hand). Rejects after
   * `timeoutMs`, so a test never hangs on a call that does not come.
   */
  settledCalls(op: StoreOp, n: number, timeoutMs = 10_000): Promise<void> {
    const done = () => this.count(op, (c) => c.outcome !== 'pending') >= n
    if (done()) return Promise.resolve()
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#watchers.delete(check)
        reject(new Error(`timed out waiting for ${n} settled ${op} calls (${this.count(op)} made)`))
      }, timeoutMs)
      const check = () => {
        if (!done()) return
        clearTimeout(timer)
        this.#watchers.delete(check)
        // Let the cache's continuation of this call run before the test acts on it.
        setImmediate(resolve)
      }
      this.#watchers.add(check)
    })
  }

  /** Ends every hung call with a rejection. */
  releaseHung(): void {
    for (const release of this.#hung) release()
    this.#hung.clear()
  }

  maxValueBytes(keyBytes: number): number {
    return this.inner.maxValueBytes?.(keyBytes) ?? Number.MAX_SAFE_INTEGER
  }

  get(key: string): Promise<Buffer | undefined> {
    return this.#run('get', key, undefined, () => this.inner.get(key))
  }

  set(key: string, value: Buffer, ttlSeconds: number): Promise<void> {
    return this.#run('set', key, undefined, () => this.inner.set(key, value, ttlSeconds))
  }

  add(key: string, value: Buffer, ttlSeconds: number): Promise<bigint | false> {
    return this.#run('add', key, false, () => this.inner.add(key, value, ttlSeconds))
  }

  compareAndDelete(key: string, cas: bigint): Promise<boolean> {
    return this.#run('compareAndDelete', key, false, () => this.inner.compareAndDelete(key, cas))
  }

  delete(key: string): Promise<void> {
    return this.#run('delete', key, undefined, () => this.inner.delete(key))
  }

  async close(): Promise<void> {
    this.releaseHung()
    await this.inner.close?.()
  }

  #run<T>(op: StoreOp, key: string, dropped: T, real: () => Promise<T>): Promise<T> {
    const call: StoreCall = { op, key, n: this.count(op) + 1, outcome: 'pending' }
    this.calls.push(call)
    const settle = (outcome: StoreCall['outcome']) => {
      call.outcome = outcome
      for (const watch of [...this.#watchers]) watch()
    }
    const fault = this.#rules.get(op)?.(call)
    if (fault === 'throw') {
      settle('thrown')
      throw new StoreFault(op)
    }
    if (fault === 'drop') {
      settle('dropped')
      return Promise.resolve(dropped)
    }
    const track = (p: Promise<T>): Promise<T> =>
      p.then(
        (v) => {
          settle('ok')
          return v
        },
        (err: unknown) => {
          settle('rejected')
          throw err
        },
      )
    if (fault === 'reject') return track(Promise.reject(new StoreFault(op)))
    if (fault === 'hang') {
      return track(
        new Promise<T>((_resolve, reject) => {
          this.#hung.add(() => reject(new StoreFault(op)))
        }),
      )
    }
    if (fault === undefined) return track(real())
    const wait = 'delayMs' in fault ? new Promise((r) => setTimeout(r, fault.delayMs)) : fault.after
    return track(wait.then(real, real))
  }
}

/** A promise a test opens by hand: for handlers that must stay in flight until the test says so. */
export interface Gate {
  readonly opened: Promise<void>
  open(): void
}

export function gate(): Gate {
  let open: () => void = () => undefined
  const opened = new Promise<void>((resolve) => {
    open = resolve
  })
  return { opened, open }
}

/** A signal a handler raises, which a test awaits (bounded). */
export interface Signal {
  raise(): void
  wait(what: string, timeoutMs?: number): Promise<void>
}

export function signal(): Signal {
  const g = gate()
  return {
    raise: g.open,
    wait(what, timeoutMs = 10_000) {
      let timer: NodeJS.Timeout | undefined
      const timeout = new Promise<never>((_r, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), timeoutMs)
      })
      return Promise.race([g.opened, timeout]).finally(() => clearTimeout(timer))
    },
  }
}
