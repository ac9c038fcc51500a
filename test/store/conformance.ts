/**
 * The CacheStore conformance suite, run against every store (test/store/*.test.ts).
 *
 * `makeStore` is called once per test and its `cleanup` afterwards; keys carry a per-test random
 * prefix, so stores that share a backend (one memcached for the whole file) do not see each other's
 * data.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { describe, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import type { CacheStore } from '../../src/store/types.js'

export interface StoreFixture {
  store: CacheStore
  cleanup(): Promise<void>
}

type Key = (suffix: string) => string

/** Asserts that an `add` won: it resolved a CAS (a bigint, never 0n). */
async function added(p: Promise<bigint | false>): Promise<bigint> {
  const cas = await p
  assert.equal(typeof cas, 'bigint', `add resolves a CAS when it stores (got ${String(cas)})`)
  assert.ok((cas as bigint) > 0n, 'the CAS is never 0')
  return cas as bigint
}

function codeOf(error: unknown): unknown {
  return (error as { code?: unknown } | null)?.code
}

/** Asserts that `promise` rejects (or the call throws) with an error whose `code` is `code`. */
async function rejectsWithCode(call: () => Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(
    async () => call(),
    (error: unknown) => {
      assert.equal(codeOf(error), code, `expected code ${code}, got ${String(error)}`)
      return true
    },
  )
}

export function runStoreConformance(name: string, makeStore: () => Promise<StoreFixture>): void {
  async function withStore(fn: (store: CacheStore, key: Key) => Promise<void>): Promise<void> {
    const { store, cleanup } = await makeStore()
    const prefix = `conf-${randomBytes(6).toString('hex')}-`
    try {
      await fn(store, (suffix) => `${prefix}${suffix}`)
    } finally {
      await cleanup()
    }
  }

  describe(`${name}: CacheStore conformance`, () => {
    it('get of a missing key resolves undefined', () =>
      withStore(async (store, key) => {
        assert.equal(await store.get(key('missing')), undefined)
      }))

    it('round-trips binary values exactly: all 256 byte values, empty, ~500 KB', () =>
      withStore(async (store, key) => {
        const allBytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i))
        const empty = Buffer.alloc(0)
        const large = randomBytes(500 * 1024)
        await store.set(key('bytes'), allBytes, 60)
        await store.set(key('empty'), empty, 60)
        await store.set(key('large'), large, 60)

        const gotBytes = await store.get(key('bytes'))
        assert.ok(Buffer.isBuffer(gotBytes), 'get resolves a Buffer')
        assert.ok(gotBytes.equals(allBytes))
        const gotEmpty = await store.get(key('empty'))
        assert.ok(Buffer.isBuffer(gotEmpty), 'an empty value is a Buffer, not a miss')
        assert.equal(gotEmpty.length, 0)
        const gotLarge = await store.get(key('large'))
        assert.ok(gotLarge?.equals(large))
      }))

    it('is not affected by callers mutating buffers after set or get', () =>
      withStore(async (store, key) => {
        const value = Buffer.from('original')
        await store.set(key('m'), value, 60)
        value.fill(0)
        const got = await store.get(key('m'))
        assert.equal(got?.toString(), 'original')
        got?.fill(0)
        assert.equal((await store.get(key('m')))?.toString(), 'original')
      }))

    it('set overwrites', () =>
      withStore(async (store, key) => {
        await store.set(key('o'), Buffer.from('one'), 60)
        await store.set(key('o'), Buffer.from('two'), 60)
        assert.equal((await store.get(key('o')))?.toString(), 'two')
      }))

    it('delete removes; delete of a missing key resolves', () =>
      withStore(async (store, key) => {
        await store.set(key('d'), Buffer.from('x'), 60)
        await store.delete(key('d'))
        assert.equal(await store.get(key('d')), undefined)
        await store.delete(key('d'))
        await store.delete(key('never-set'))
      }))

    it('add stores only when absent and never changes an existing value', () =>
      withStore(async (store, key) => {
        await added(store.add(key('a'), Buffer.from('first'), 60))
        assert.equal(await store.add(key('a'), Buffer.from('second'), 60), false)
        assert.equal((await store.get(key('a')))?.toString(), 'first')
        await store.set(key('b'), Buffer.from('set'), 60)
        assert.equal(await store.add(key('b'), Buffer.from('added'), 60), false)
        assert.equal((await store.get(key('b')))?.toString(), 'set')
        await store.delete(key('a'))
        await added(store.add(key('a'), Buffer.from('third'), 60))
      }))

    it('add resolves a distinct CAS per stored item', () =>
      withStore(async (store, key) => {
        const one = await added(store.add(key('c1'), Buffer.from('x'), 60))
        const two = await added(store.add(key('c2'), Buffer.from('x'), 60))
        assert.notEqual(one, two)
        await store.delete(key('c1'))
        const again = await added(store.add(key('c1'), Buffer.from('x'), 60))
        assert.notEqual(again, one, 'a re-added item gets a new CAS')
      }))

    it('compareAndDelete with the CAS add resolved deletes the item', () =>
      withStore(async (store, key) => {
        const cas = await added(store.add(key('lock'), Buffer.from('mine'), 60))
        assert.equal(await store.compareAndDelete(key('lock'), cas), true)
        assert.equal(await store.get(key('lock')), undefined)
        assert.equal(await store.compareAndDelete(key('lock'), cas), false, 'already gone')
        await added(store.add(key('lock'), Buffer.from('next'), 60))
      }))

    it('compareAndDelete of an absent key resolves false', () =>
      withStore(async (store, key) => {
        assert.equal(await store.compareAndDelete(key('absent'), 1n), false)
        assert.equal(await store.compareAndDelete(key('absent'), 2n ** 64n - 1n), false)
      }))

    it('compareAndDelete with a stale CAS (re-added, or overwritten by set) does not delete', () =>
      withStore(async (store, key) => {
        const first = await added(store.add(key('lock'), Buffer.from('ours'), 60))
        await store.delete(key('lock'))
        await added(store.add(key('lock'), Buffer.from('theirs'), 60))
        assert.equal(await store.compareAndDelete(key('lock'), first), false)
        assert.equal((await store.get(key('lock')))?.toString(), 'theirs', 'their lock survives')

        const mine = await added(store.add(key('over'), Buffer.from('ours'), 60))
        await store.set(key('over'), Buffer.from('overwritten'), 60)
        assert.equal(await store.compareAndDelete(key('over'), mine), false)
        assert.equal((await store.get(key('over')))?.toString(), 'overwritten')
      }))

    it('compareAndDelete leaves other keys alone and refuses a CAS outside 1..2^64-1', () =>
      withStore(async (store, key) => {
        const cas = await added(store.add(key('x'), Buffer.from('x'), 60))
        await store.set(key('y'), Buffer.from('y'), 60)
        assert.equal(await store.compareAndDelete(key('y'), cas), false)
        assert.equal((await store.get(key('y')))?.toString(), 'y')
        for (const bad of [0n, -1n, 2n ** 64n, 1 as unknown as bigint]) {
          await assert.rejects(async () => store.compareAndDelete(key('x'), bad), TypeError)
        }
        assert.equal((await store.get(key('x')))?.toString(), 'x', 'a refused CAS deletes nothing')
      }))

    it('20 concurrent adds of one key: exactly one wins and its value is stored', () =>
      withStore(async (store, key) => {
        const results = await Promise.all(
          Array.from({ length: 20 }, (_, i) =>
            store.add(key('lock'), Buffer.from(`owner-${i}`), 60),
          ),
        )
        const winners = results.flatMap((won, i) => (won === false ? [] : [i]))
        assert.equal(winners.length, 1, `winners: ${winners.join(',')}`)
        assert.equal((await store.get(key('lock')))?.toString(), `owner-${winners[0]}`)
      }))

    it('keys with ~ suffixes are distinct entries', () =>
      withStore(async (store, key) => {
        const base = key('page')
        await store.set(base, Buffer.from('entry'), 60)
        await store.set(`${base}~lock`, Buffer.from('lock'), 60)
        await store.set(`${base}~v~1`, Buffer.from('variant'), 60)
        assert.equal((await store.get(base))?.toString(), 'entry')
        assert.equal((await store.get(`${base}~lock`))?.toString(), 'lock')
        assert.equal((await store.get(`${base}~v~1`))?.toString(), 'variant')
        await store.delete(`${base}~lock`)
        assert.equal(await store.get(`${base}~lock`), undefined)
        assert.equal((await store.get(base))?.toString(), 'entry')
        await added(store.add(`${base}~lock`, Buffer.from('again'), 60))
      }))

    it('accepts TTLs beyond 30 days (clamped) and fractional TTLs', () =>
      withStore(async (store, key) => {
        // Unclamped, memcached would read 40 days as an absolute time in 1970: expired at once.
        await store.set(key('long'), Buffer.from('long'), 40 * 86_400)
        assert.equal((await store.get(key('long')))?.toString(), 'long')
        await added(store.add(key('long-add'), Buffer.from('x'), 10 ** 9))
        assert.equal((await store.get(key('long-add')))?.toString(), 'x')
        await store.set(key('fraction'), Buffer.from('f'), 30.5)
        assert.equal((await store.get(key('fraction')))?.toString(), 'f')
      }))

    it('accepts a 250-byte key and rejects invalid keys with EINVALID_KEY', () =>
      withStore(async (store, key) => {
        const longest = key('').padEnd(250, 'k')
        await store.set(longest, Buffer.from('ok'), 60)
        assert.equal((await store.get(longest))?.toString(), 'ok')

        const invalid = [
          `${longest}k`, // 251 bytes
          '',
          key('with space'),
          key('tab\there'),
          key('new\nline'),
          key('nul\u0000'),
          key('del\u007f'),
          key('caf\u00e9'),
        ]
        for (const bad of invalid) {
          await rejectsWithCode(() => store.get(bad), 'EINVALID_KEY')
          await rejectsWithCode(() => store.set(bad, Buffer.from('x'), 60), 'EINVALID_KEY')
          await rejectsWithCode(() => store.add(bad, Buffer.from('x'), 60), 'EINVALID_KEY')
          await rejectsWithCode(() => store.delete(bad), 'EINVALID_KEY')
          await rejectsWithCode(() => store.compareAndDelete(bad, 1n), 'EINVALID_KEY')
        }
        // The store still works afterwards.
        assert.equal((await store.get(longest))?.toString(), 'ok')
      }))

    it('respects maxValueBytes when defined: the limit fits, one byte more is refused and changes nothing', () =>
      withStore(async (store, key) => {
        if (!store.maxValueBytes) return
        const k = key('big')
        const limit = store.maxValueBytes(Buffer.byteLength(k))
        assert.ok(Number.isInteger(limit) && limit > 0)
        const fits = randomBytes(limit)
        await store.set(k, fits, 60)
        assert.ok(
          (await store.get(k))?.equals(fits),
          'a value of exactly maxValueBytes round-trips',
        )

        await store.set(k, Buffer.from('existing'), 60)
        await rejectsWithCode(() => store.set(k, Buffer.alloc(limit + 1), 60), 'EVALUE_TOO_LARGE')
        await rejectsWithCode(() => store.add(k, Buffer.alloc(limit + 1), 60), 'EVALUE_TOO_LARGE')
        assert.equal((await store.get(k))?.toString(), 'existing', 'the existing item survives')
      }))

    it('rejects calls after close() with ESTORE_CLOSED', async () => {
      const { store, cleanup } = await makeStore()
      try {
        if (!store.close) return
        await store.close()
        await rejectsWithCode(() => store.get('after-close'), 'ESTORE_CLOSED')
        await rejectsWithCode(() => store.set('after-close', Buffer.from('x'), 60), 'ESTORE_CLOSED')
        await rejectsWithCode(() => store.add('after-close', Buffer.from('x'), 60), 'ESTORE_CLOSED')
        await rejectsWithCode(() => store.delete('after-close'), 'ESTORE_CLOSED')
        await rejectsWithCode(() => store.compareAndDelete('after-close', 1n), 'ESTORE_CLOSED')
        await store.close() // idempotent
      } finally {
        await cleanup()
      }
    })

    it(
      'expires entries after their TTL; a lock another holder took after ours expired survives our release (slow: ~3 s)',
      { timeout: 15_000 },
      () =>
        withStore(async (store, key) => {
          await store.set(key('ttl'), Buffer.from('short'), 2)
          const ours = await added(store.add(key('ttl-lock'), Buffer.from('ours'), 2))
          assert.equal((await store.get(key('ttl')))?.toString(), 'short')
          // memcached's clock ticks once a second: a 2 s TTL is gone after 3 s.
          await sleep(3100)
          assert.equal(await store.get(key('ttl')), undefined)
          const theirs = await added(store.add(key('ttl-lock'), Buffer.from('theirs'), 60))
          assert.equal(await store.compareAndDelete(key('ttl-lock'), ours), false)
          assert.equal((await store.get(key('ttl-lock')))?.toString(), 'theirs')
          assert.equal(await store.compareAndDelete(key('ttl-lock'), theirs), true)
        }),
    )
  })
}
