/**
 * The StoreGuard's own deadline: whatever the store does (never answers, rejects, throws), a call
 * costs at most its budget and resolves FAILED; the cache fails open on it.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { FAILED, StoreGuard } from '../../src/guard.js'
import { RateLimitedLog, silentLogger } from '../../src/logging.js'
import { MemoryStore } from '../../src/store/memory.js'
import type { CacheStore } from '../../src/store/types.js'

const never = <T>(): Promise<T> => new Promise<T>(() => undefined)

/** A store whose every call never settles (a paused server, a blackholed connection). */
const hung: CacheStore = {
  get: never,
  set: never,
  add: never,
  delete: never,
  compareAndDelete: never,
}

function guardOf(store: CacheStore, backgroundMs = 200) {
  const errors: string[] = []
  const guard = new StoreGuard(store, new RateLimitedLog(silentLogger), backgroundMs, {
    error: (kind) => errors.push(kind),
    duration: () => undefined,
  })
  return { guard, errors }
}

/** Rejects when `p` takes longer than `ms` (a generous bound, not a timing assertion). */
function within<V>(ms: number, p: Promise<V>): Promise<V> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`still pending after ${ms} ms`)), ms)
  })
  return Promise.race([p, late]).finally(() => clearTimeout(timer))
}

describe('StoreGuard', () => {
  it('a call the store never answers resolves FAILED at its deadline', async () => {
    const { guard, errors } = guardOf(hung)
    const onPath = guard.call('get', (s) => s.get('k'), Date.now() + 50)
    const background = guard.call('set', (s) => s.set('k', Buffer.from('v'), 60))
    assert.equal(await within(5000, onPath), FAILED)
    assert.equal(await within(5000, background), FAILED)
    assert.deepEqual(errors.sort(), ['get:timeout', 'set:timeout'])
  })

  it('a later, shorter deadline is not held up by an earlier, longer one', async () => {
    const { guard } = guardOf(hung)
    const long = guard.call('get', (s) => s.get('a'), Date.now() + 60_000)
    const short = guard.call('get', (s) => s.get('b'), Date.now() + 50)
    assert.equal(await within(5000, short), FAILED)
    void long
  })

  it('a rejection or a throw is FAILED, with its kind', async () => {
    const failing: CacheStore = {
      ...hung,
      get: () => Promise.reject(Object.assign(new Error('refused'), { code: 'ECONNREFUSED' })),
      set: () => {
        throw new TypeError('bad')
      },
    }
    const { guard, errors } = guardOf(failing)
    assert.equal(await guard.call('get', (s) => s.get('k'), Date.now() + 1000), FAILED)
    assert.equal(await guard.call('set', (s) => s.set('k', Buffer.from('v'), 60)), FAILED)
    assert.deepEqual(errors, ['get:ECONNREFUSED', 'set:throw'])
  })

  it('a spent budget fails at once without asking the store; answers pass through', async () => {
    let asked = 0
    const store = new MemoryStore()
    const counting: CacheStore = {
      ...hung,
      get: (k) => {
        asked++
        return store.get(k)
      },
      set: (k, v, ttl) => store.set(k, v, ttl),
    }
    const { guard } = guardOf(counting)
    assert.equal(await guard.call('get', (s) => s.get('k'), Date.now() - 1), FAILED)
    assert.equal(asked, 0)
    await guard.call('set', (s) => s.set('k', Buffer.from('v'), 60))
    const got = await guard.call('get', (s) => s.get('k'), Date.now() + 1000)
    assert.equal(Buffer.isBuffer(got) ? got.toString() : got, 'v')
  })
})
