/**
 * Atomic lock release (issue 7.9): a holder whose lock expired and was taken by another process
 * must not drop the new holder's lock when it finally releases (mint.ts through the StoreGuard).
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { StoreGuard } from '../../src/guard.js'
import { lockKey } from '../../src/key.js'
import { RateLimitedLog, silentLogger } from '../../src/logging.js'
import { acquireLock, type Lock, releaseLock } from '../../src/mint.js'
import { MemcachedStore } from '../../src/store/memcached.js'
import { MemoryStore } from '../../src/store/memory.js'
import type { CacheStore } from '../../src/store/types.js'
import { delay } from '../helpers/app.js'
import { type MemcachedProcess, startMemcached } from '../helpers/memcached.js'

const guardOf = (store: CacheStore): StoreGuard =>
  new StoreGuard(store, new RateLimitedLog(silentLogger), 1000)

const take = async (guard: StoreGuard, key: string): Promise<Lock | 'lost' | 'failed'> =>
  acquireLock(guard, key, 2, Date.now() + 1000)

/** The second holder's lock survives the first holder's late release; its own release frees it. */
async function lateRelease(
  store: CacheStore,
  key: string,
  expire: () => Promise<void>,
): Promise<void> {
  const guard = guardOf(store)
  const first = await take(guard, key)
  assert.equal(typeof first, 'object', 'the first holder takes the lock')
  assert.equal(await take(guard, key), 'lost', 'held')
  await expire()
  const second = await take(guard, key)
  assert.equal(typeof second, 'object', 'another holder takes the expired lock')
  await releaseLock(guard, first as Lock)
  assert.ok((await store.get(lockKey(key))) !== undefined, 'the second holder’s lock survives')
  assert.equal(await take(guard, key), 'lost', 'and still excludes a third')
  await releaseLock(guard, second as Lock)
  assert.equal(await store.get(lockKey(key)), undefined, 'released by its holder')
  const third = await take(guard, key)
  assert.equal(typeof third, 'object')
  await releaseLock(guard, third as Lock)
}

describe('atomic lock release', () => {
  it('MemoryStore with an injected clock', async () => {
    let now = 0
    const store = new MemoryStore({ now: () => now })
    await lateRelease(store, 'eftc:/page', async () => {
      now += 2_000
    })
  })

  it('a release that is not the holder’s never frees the lock (same key, fresh holder)', async () => {
    const store = new MemoryStore()
    const guard = guardOf(store)
    const held = await take(guard, 'eftc:/other')
    assert.equal(typeof held, 'object')
    // A forged or recycled lock object: same key, a CAS that is not the current item's.
    await releaseLock(guard, { key: (held as Lock).key, cas: (held as Lock).cas + 1n })
    assert.equal(await take(guard, 'eftc:/other'), 'lost')
    await releaseLock(guard, held as Lock)
    assert.equal(typeof (await take(guard, 'eftc:/other')), 'object')
  })

  describe('on memcached', () => {
    let mc: MemcachedProcess
    let store: MemcachedStore
    before(async () => {
      mc = await startMemcached()
      store = new MemcachedStore({ servers: mc.address, timeout: '500ms' })
    })
    after(async () => {
      await store.close()
      await mc.stop()
    })

    it('a lock whose TTL ran out and was re-taken survives the first holder’s release', async () => {
      // memcached counts expiry in whole seconds: a 2 s item is gone within 3 s.
      await lateRelease(store, `rel${process.pid}:/page`, () => delay(3100))
    })
  })
})
