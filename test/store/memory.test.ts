import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { MemoryStore, type MemoryStoreOptions } from '../../src/store/memory.js'
import { runStoreConformance } from './conformance.js'

runStoreConformance('MemoryStore', async () => {
  const store = new MemoryStore()
  return { store, cleanup: () => store.close() }
})

describe('MemoryStore', () => {
  it('evicts the least recently used entries once keys + values exceed maxBytes', async () => {
    const store = new MemoryStore({ maxBytes: 4096, maxValueBytes: 1024 })
    const value = Buffer.alloc(1000, 1)
    for (const k of ['k1', 'k2', 'k3', 'k4']) await store.set(k, value, 60)
    assert.equal(store.bytes, 4 * 1002)
    await store.get('k1') // k1 becomes the most recently used: k2 is now the oldest
    await store.set('k5', value, 60)
    assert.equal(await store.get('k2'), undefined, 'least recently used evicted')
    for (const k of ['k1', 'k3', 'k4', 'k5']) assert.ok(await store.get(k), `${k} kept`)
    assert.ok(store.bytes <= 4096)
  })

  it('keeps byte accounting exact across overwrite, delete and add', async () => {
    const store = new MemoryStore()
    await store.set('a', Buffer.alloc(10), 60)
    await store.set('a', Buffer.alloc(20), 60)
    assert.equal(store.bytes, 21)
    assert.equal(typeof (await store.add('bb', Buffer.alloc(5), 60)), 'bigint')
    assert.equal(await store.add('bb', Buffer.alloc(50), 60), false)
    assert.equal(store.bytes, 21 + 7)
    await store.delete('a')
    await store.delete('a')
    assert.equal(store.bytes, 7)
    assert.equal(store.size, 1)
  })

  it('maxValueBytes is the option, capped by maxBytes minus the key', () => {
    assert.equal(new MemoryStore().maxValueBytes(10), 1024 * 1024)
    assert.equal(new MemoryStore({ maxValueBytes: 100 }).maxValueBytes(10), 100)
    assert.equal(new MemoryStore({ maxBytes: 2048, maxValueBytes: 4096 }).maxValueBytes(48), 2000)
  })

  it('honours TTL lazily on read, and an expired key can be added again', async () => {
    const store = new MemoryStore()
    await store.set('t', Buffer.from('x'), 1)
    assert.equal(store.size, 1)
    await sleep(1100)
    assert.equal(store.size, 1, 'nothing runs in the background')
    assert.equal(typeof (await store.add('t', Buffer.from('y'), 60)), 'bigint')
    assert.equal((await store.get('t'))?.toString(), 'y')
  })

  it('expires by the injected clock, and a release after expiry keeps the next holder', async () => {
    let now = 1_000
    const store = new MemoryStore({ now: () => now })
    const ours = await store.add('lock', Buffer.from('ours'), 2)
    assert.equal(typeof ours, 'bigint')
    now += 1_999
    assert.equal(await store.add('lock', Buffer.from('theirs'), 2), false, 'still held')
    now += 1
    assert.equal(await store.get('lock'), undefined, 'expired exactly at the TTL')
    const theirs = await store.add('lock', Buffer.from('theirs'), 60)
    assert.equal(typeof theirs, 'bigint')
    assert.equal(await store.compareAndDelete('lock', ours as bigint), false)
    assert.equal((await store.get('lock'))?.toString(), 'theirs')
    assert.equal(await store.compareAndDelete('lock', theirs as bigint), true)
    assert.equal(store.size, 0)
  })

  it('CAS values increase with every write, set included', async () => {
    const store = new MemoryStore()
    const a = (await store.add('a', Buffer.from('1'), 60)) as bigint
    await store.set('a', Buffer.from('2'), 60)
    const b = (await store.add('b', Buffer.from('1'), 60)) as bigint
    assert.equal(b, a + 2n)
  })

  it('close() drops everything', async () => {
    const store = new MemoryStore()
    await store.set('x', Buffer.from('x'), 60)
    await store.close()
    assert.equal(store.size, 0)
    assert.equal(store.bytes, 0)
  })

  describe('options', () => {
    it('rejects unknown options with a hint', () => {
      assert.throws(
        () => new MemoryStore({ maxbytes: 10 } as MemoryStoreOptions),
        /unknown MemoryStore option `maxbytes`; did you mean `maxBytes`\?/,
      )
      assert.throws(
        () => new MemoryStore({ maxValueByte: 10 } as MemoryStoreOptions),
        /did you mean `maxValueBytes`/,
      )
      assert.throws(() => new MemoryStore({ colour: 1 } as MemoryStoreOptions), /Known options/)
    })

    it('validates values and treats undefined as omitted', () => {
      for (const bad of [0, -1, 1.5, '1mb', Number.NaN, Number.POSITIVE_INFINITY]) {
        assert.throws(
          () => new MemoryStore({ maxBytes: bad as number }),
          TypeError,
          `maxBytes ${bad}`,
        )
      }
      assert.throws(() => new MemoryStore({ maxValueBytes: -1 }), /maxValueBytes/)
      assert.throws(
        () => new MemoryStore({ now: 5 as unknown as () => number }),
        /`now` must be a function/,
      )
      assert.throws(() => new MemoryStore('big' as unknown as MemoryStoreOptions), /options object/)
      const store = new MemoryStore({ maxBytes: undefined, maxValueBytes: undefined })
      assert.equal(store.maxBytes, 64 * 1024 * 1024)
    })

    it('does not mutate the caller’s options', () => {
      const options = Object.freeze({ maxBytes: 2048 })
      const store = new MemoryStore(options)
      assert.deepEqual(options, { maxBytes: 2048 })
      assert.equal(store.maxBytes, 2048)
    })
  })
})
