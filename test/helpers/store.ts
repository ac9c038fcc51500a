/**
 * A CacheStore wrapper whose every operation can be made to fail, hang, throw, lag or be dropped,
 * per call and per kind of key, and which records what the cache asked of it. Tests drive fail-open
 * paths with it through the public API only; all it knows of the cache is the shape of its keys, so
 * a fault can hit entry reads and spare the invalidation records read alongside them.
 */
import { type CacheStore, MemoryStore } from '../../src/index.js'

export type StoreOp = 'get' | 'set' | 'add' | 'delete' | 'compareAndDelete'

/**
 * What a key holds: a response or variants record (`<prefix>:2:<hash>`, plus `~v<hash>` for a Vary
 * variant), a mint lock (`<entryKey>~lock`), or the invalidation records (per tag
 * `<prefix>:inv:<hash>`, and the generation `<prefix>:inv-gen`). 'other' is none of these: a key
 * layout this helper does not know yet.
 */
export type KeyKind = 'entry' | 'lock' | 'records' | 'other'

/** Which keys a rule or a count is about: one kind, several, or any predicate on the key. */
export type Keys = KeyKind | readonly KeyKind[] | ((key: string) => boolean)

export function keyKind(key: string): KeyKind {
  if (key.endsWith('~lock')) return 'lock'
  if (/:inv(?::[\w-]+|-gen)$/.test(key)) return 'records'
  if (/:\d+:[\w-]+(?:~v[\w-]+)?$/.test(key)) return 'entry'
  return 'other'
}

function selects(keys: Keys | undefined, call: StoreCall): boolean {
  if (keys === undefined) return true
  if (typeof keys === 'function') return keys(call.key)
  if (typeof keys === 'string') return call.kind === keys
  return keys.includes(call.kind)
}

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
  readonly kind: KeyKind
  /** 1 for the first call of this op, 2 for the second... whatever the key. */
  readonly n: number
  /** The same, counting only this op's calls on keys of this kind (the 2nd lock `add`...). */
  readonly nOfKind: number
  /** 'pending' until the call settled (or forever, for a hung call). */
  outcome: 'pending' | 'ok' | 'rejected' | 'thrown' | 'dropped'
}

/** Decides what happens to a call; undefined (or no rule) passes it to the inner store. */
export type Rule = (call: StoreCall) => Fault | undefined

interface Scoped {
  readonly op: StoreOp
  readonly keys: Keys | undefined
  readonly rule: Rule
}

export class StoreFault extends Error {
  constructor(op: StoreOp) {
    super(`injected ${op} failure`)
    this.name = 'StoreFault'
  }
}

/** Passes every call to `inner`: a base for wrappers that change one operation. */
export class DelegatingStore implements CacheStore {
  constructor(protected readonly inner: CacheStore) {}
  maxValueBytes(keyBytes: number): number {
    return this.inner.maxValueBytes?.(keyBytes) ?? Number.MAX_SAFE_INTEGER
  }
  get(key: string): Promise<Buffer | undefined> {
    return this.inner.get(key)
  }
  set(key: string, value: Buffer, ttl: number): Promise<void> {
    return this.inner.set(key, value, ttl)
  }
  add(key: string, value: Buffer, ttl: number): Promise<bigint | false> {
    return this.inner.add(key, value, ttl)
  }
  delete(key: string): Promise<void> {
    return this.inner.delete(key)
  }
  compareAndDelete(key: string, cas: bigint): Promise<boolean> {
    return this.inner.compareAndDelete(key, cas)
  }
  close(): Promise<void> {
    return this.inner.close?.() ?? Promise.resolve()
  }
}

export class ControlledStore implements CacheStore {
  readonly calls: StoreCall[] = []
  /** Newest last; the newest rule that selects a call decides it. */
  #rules: Scoped[] = []
  readonly #hung = new Set<() => void>()
  readonly #watchers = new Set<() => void>()

  constructor(readonly inner: CacheStore = new MemoryStore()) {}

  /**
   * Sets the rule for one operation, on every key or only on `keys`. It overrides earlier rules of
   * that operation on the keys it selects (a rule for every key replaces them all).
   */
  rule(op: StoreOp, rule: Rule | Fault, { keys }: { keys?: Keys } = {}): this {
    if (keys === undefined) this.#rules = this.#rules.filter((r) => r.op !== op)
    this.#rules.push({ op, keys, rule: typeof rule === 'function' ? rule : () => rule })
    return this
  }

  /** Removes the rules of one operation, or of all. */
  clear(op?: StoreOp): this {
    this.#rules = op === undefined ? [] : this.#rules.filter((r) => r.op !== op)
    return this
  }

  /** Calls of `op` so far, optionally only on `keys` and only those matching `where`. */
  count(op: StoreOp, keys?: Keys, where: (call: StoreCall) => boolean = () => true): number {
    return this.calls.filter((c) => c.op === op && selects(keys, c) && where(c)).length
  }

  /**
   * Resolves once `n` calls of `op` (on `keys`, if given) have settled: the cache has their result
   * in hand. Rejects after `timeoutMs`, so a test never hangs on a call that does not come.
   */
  settledCalls(
    op: StoreOp,
    n: number,
    { keys, timeoutMs = 10_000 }: { keys?: Keys; timeoutMs?: number } = {},
  ): Promise<void> {
    const done = () => this.count(op, keys, (c) => c.outcome !== 'pending') >= n
    if (done()) return Promise.resolve()
    const what = `${n} settled ${op} calls${typeof keys === 'function' || keys === undefined ? '' : ` on ${String(keys)} keys`}`
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#watchers.delete(check)
        reject(new Error(`timed out waiting for ${what} (${this.count(op, keys)} made)`))
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
    const kind = keyKind(key)
    const call: StoreCall = {
      op,
      key,
      kind,
      n: this.count(op) + 1,
      nOfKind: this.count(op, kind) + 1,
      outcome: 'pending',
    }
    this.calls.push(call)
    const settle = (outcome: StoreCall['outcome']) => {
      call.outcome = outcome
      for (const watch of [...this.#watchers]) watch()
    }
    const scoped = this.#rules.findLast((r) => r.op === op && selects(r.keys, call))
    const fault = scoped?.rule(call)
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
