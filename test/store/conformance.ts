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
        assert.equal(await store.add(key('a'), Buffer.from('first'), 60), true)
        assert.equal(await store.add(key('a'), Buffer.from('second'), 60), false)
        assert.equal((await store.get(key('a')))?.toString(), 'first')
        await store.set(key('b'), Buffer.from('set'), 60)
        assert.equal(await store.add(key('b'), Buffer.from('added'), 60), false)
        assert.equal((await store.get(key('b')))?.toString(), 'set')
        await store.delete(key('a'))
        assert.equal(await store.add(key('a'), Buffer.from('third'), 60), true)
      }))

    it('20 concurrent adds of one key: exactly one wins and its value is stored', () =>
      withStore(async (store, key) => {
        const results = await Promise.all(
          Array.from({ length: 20 }, (_, i) =>
            store.add(key('lock'), Buffer.from(`owner-${i}`), 60),
          ),
        )
        const winners = results.flatMap((won, i) => (won ? [i] : []))
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
        assert.equal(await store.add(`${base}~lock`, Buffer.from('again'), 60), true)
      }))

    it('accepts TTLs beyond 30 days (clamped) and fractional TTLs', () =>
      withStore(async (store, key) => {
        // Unclamped, memcached would read 40 days as an absolute time in 1970: expired at once.
        await store.set(key('long'), Buffer.from('long'), 40 * 86_400)
        assert.equal((await store.get(key('long')))?.toString(), 'long')
        assert.equal(await store.add(key('long-add'), Buffer.from('x'), 10 ** 9), true)
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
        await store.close() // idempotent
      } finally {
        await cleanup()
      }
    })

    it('expires entries after their TTL (slow: ~3 s)', { timeout: 15_000 }, () =>
      withStore(async (store, key) => {
        await store.set(key('ttl'), Buffer.from('short'), 2)
        assert.equal(await store.add(key('ttl-lock'), Buffer.from('lock'), 2), true)
        assert.equal((await store.get(key('ttl')))?.toString(), 'short')
        // memcached's clock ticks once a second: a 2 s TTL is gone after 3 s.
        await sleep(3100)
        assert.equal(await store.get(key('ttl')), undefined)
        assert.equal(await store.add(key('ttl-lock'), Buffer.from('again'), 60), true)
      }),
    )
  })
}
