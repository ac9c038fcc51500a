/**
 * Mint across processes: 4 app processes share memcached (one server, then a cluster of three);
 * stale keys are regenerated exactly once per expiry and cold keys are rendered once for the fleet.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { lockKey, primaryKey } from '../../src/key.js'
import { MemcachedStore } from '../../src/store/memcached.js'
import { delay } from '../helpers/app.js'
import { burst, type Fleet, startFleet } from '../helpers/fleet.js'
import { type MemcachedProcess, startMemcached } from '../helpers/memcached.js'

const WORKERS = 4
const REQUESTS = 100
/** A regeneration held this long outlasts any burst of stale requests, even on a loaded runner. */
const HELD_RENDER_MS = 6000

/** Waits until some process holds the mint lock of `path` (bounded). */
async function untilLocked(
  mcs: readonly MemcachedProcess[],
  servers: number,
  prefix: string,
  path: string,
): Promise<void> {
  const store = new MemcachedStore({
    servers: mcs.slice(0, servers).map((m) => m.address),
    timeout: '1s',
  })
  const lock = lockKey(
    primaryKey(prefix, { host: '127.0.0.1', path, query: '', custom: undefined }),
  )
  try {
    const started = Date.now()
    while ((await store.get(lock)) === undefined) {
      assert.ok(Date.now() - started < 10_000, `a process took the lock of ${path}`)
      await delay(20)
    }
  } finally {
    await store.close()
  }
}

/** Waits until the key answers HIT (polling a fresh-or-locked key never reaches the origin). */
async function untilHit(fleet: Fleet, path: string): Promise<string> {
  for (let i = 0; i < 100; i++) {
    const r = await fleet.get(i, path)
    if (r.cache === 'HIT') return r.body
    await delay(20)
  }
  throw new Error(`${path} never became a HIT`)
}

for (const servers of [1, 3]) {
  describe(`mint with ${WORKERS} processes on ${servers} memcached server(s)`, () => {
    let mcs: MemcachedProcess[]
    let fleet: Fleet
    before(async () => {
      mcs = await Promise.all(Array.from({ length: servers }, () => startMemcached()))
      fleet = await startFleet(WORKERS, {
        EFTC_SERVERS: mcs.map((m) => m.address).join(','),
        EFTC_PREFIX: `mint${servers}x${process.pid}`,
        EFTC_TTL: '1s',
        EFTC_GRACE: '60s',
        EFTC_LOCK_TTL: '10s',
        // Mint is under test here, not deadlines: on a loaded 2-core runner a 100 ms read deadline
        // fires now and then, and a request whose read failed renders (fail open) by design.
        EFTC_TIMEOUT: '1s',
      })
    })
    after(async () => {
      await fleet?.stop()
      await Promise.all(mcs.map((m) => m.stop()))
    })

    it('regenerates a stale key exactly once per expiry; the others get the stale copy or the new one', async (t) => {
      const path = '/res/stale'
      const first = await fleet.get(0, path)
      assert.equal(first.status, 200)
      let current = await untilHit(fleet, path)
      const rounds = 10
      const staleCounts: number[] = []
      for (let round = 0; round < rounds; round++) {
        await delay(1100) // past ttl: the entry is now stale
        const before = await fleet.calls()
        const replies = await burst(fleet, REQUESTS, path, 40, round)
        const originCalls = (await fleet.calls()) - before
        const outcomes = replies.reduce<Record<string, number>>((acc, r) => {
          acc[String(r.cache)] = (acc[String(r.cache)] ?? 0) + 1
          return acc
        }, {})
        assert.equal(
          originCalls,
          1,
          `round ${round}: one regeneration for the whole fleet (${JSON.stringify(outcomes)})`,
        )
        assert.ok(replies.every((r) => r.status === 200))
        const stale = replies.filter((r) => r.body === current)
        const fresh = replies.filter((r) => r.body !== current)
        assert.ok(stale.every((r) => r.cache === 'STALE'))
        // Exactly one request rendered. Requests that the loaded test machine delivered after the
        // 500 ms render finished rightly get the new body as a HIT; all others get the stale copy.
        assert.equal(fresh.filter((r) => r.cache === 'MISS').length, 1, 'one request rendered')
        assert.equal(new Set(fresh.map((r) => r.body)).size, 1, 'one new body')
        assert.ok(fresh.every((r) => r.cache === 'MISS' || r.cache === 'HIT'))
        staleCounts.push(stale.length)
        const next = await untilHit(fleet, path)
        assert.equal(next, fresh[0]?.body, 'the next request is a HIT with the new body')
        current = next
      }
      // On an idle machine every round is 99 stale + 1 fresh; under load a few arrive after the render.
      t.diagnostic(`stale bodies per round (of ${REQUESTS - 1}): ${staleCounts.join(', ')}`)
    })

    it('everyone else gets the stale copy at once, while the regeneration is still running', async () => {
      const path = '/res/at-once'
      await fleet.get(0, path)
      const original = await untilHit(fleet, path)
      await delay(1100) // past ttl
      const before = await fleet.calls()
      // Worker 0 takes the lock and renders for HELD_RENDER_MS; the burst starts once the lock is seen.
      let renderDone = false
      const render = fleet.get(0, path, { 'x-delay': String(HELD_RENDER_MS) }).finally(() => {
        renderDone = true
      })
      await untilLocked(mcs, servers, `mint${servers}x${process.pid}`, path)
      const replies = await burst(fleet, REQUESTS, path, 20, 1)
      assert.equal(renderDone, false, 'the stale answers did not wait for the render')
      const outcomes = new Set(replies.map((r) => `${r.cache} ${r.body === original}`))
      assert.deepEqual([...outcomes], ['STALE true'], 'every other request got the stale copy')
      assert.equal((await fleet.calls()) - before, 1, 'only the lock holder reached the origin')
      const fresh = await render
      assert.equal(fresh.cache, 'MISS')
      assert.notEqual(fresh.body, original)
      assert.equal(await untilHit(fleet, path), fresh.body)
    })

    it('coalesces a cold key: one origin call for the fleet, identical bodies for all', async () => {
      for (let round = 0; round < 3; round++) {
        const path = `/res/cold-${round}`
        const before = await fleet.calls()
        const replies = await burst(fleet, REQUESTS, path, 20, round)
        assert.equal((await fleet.calls()) - before, 1, `round ${round}: exactly one origin call`)
        assert.ok(replies.every((r) => r.status === 200))
        assert.equal(new Set(replies.map((r) => r.body)).size, 1, 'every body is the same')
      }
    })
  })
}

describe('a lock holder killed mid-render', () => {
  let mc: MemcachedProcess
  let fleet: Fleet
  before(async () => {
    mc = await startMemcached()
    fleet = await startFleet(WORKERS, {
      EFTC_SERVERS: mc.address,
      EFTC_PREFIX: `kill${process.pid}`,
      EFTC_TTL: '1s',
      EFTC_GRACE: '60s',
      EFTC_LOCK_TTL: '4s',
      EFTC_TIMEOUT: '1s',
    })
  })
  after(async () => {
    await fleet?.stop()
    await mc.stop()
  })

  it('serves stale until the lock expires, then regenerates exactly once', async () => {
    const path = '/res/held'
    await fleet.get(1, path)
    const original = await untilHit(fleet, path)
    await delay(1100)
    // Worker 0 wins the lock and hangs in its render; once the lock is seen in memcached, it dies.
    const sentAt = Date.now()
    const doomed = fleet.get(0, path, { 'x-delay': '60000' }).catch(() => undefined)
    const store = new MemcachedStore({ servers: mc.address, timeout: '1s' })
    const lock = lockKey(
      primaryKey(`kill${process.pid}`, { host: '127.0.0.1', path, query: '', custom: undefined }),
    )
    while ((await store.get(lock)) === undefined) {
      assert.ok(Date.now() - sentAt < 10_000, 'worker 0 took the lock')
      await delay(20)
    }
    await store.close()
    await fleet.workers[0]?.kill()
    await doomed
    const before = await fleet.calls()
    // The lock was taken after `sentAt` and lives 4 s; memcached may expire it up to a second
    // early, so it surely lives until sentAt + 3 s. Check inside that, at least once.
    let checks = 0
    while (Date.now() - sentAt < 2000) {
      const replies = await Promise.all([1, 2, 3].map((i) => fleet.get(i, path)))
      for (const r of replies) {
        assert.equal(r.body, original)
        assert.equal(r.cache, 'STALE')
      }
      checks++
      await delay(200)
    }
    assert.ok(checks > 0, 'the stale copy was checked while the dead holder’s lock lived')
    assert.equal(
      (await fleet.calls()) - before,
      0,
      'nobody regenerates while the dead holder’s lock lives',
    )
    let last = await fleet.get(1, path)
    while (last.cache === 'STALE') {
      assert.ok(
        Date.now() - sentAt < 15_000,
        'a request regenerates once the lock expired (4 s lock TTL, 15 s bound)',
      )
      await delay(100)
      last = await fleet.get(1, path)
    }
    assert.notEqual(last.body, original, 'regenerated after the lock expired')
    const replies = await burst(fleet, 30, path, 20, 1)
    assert.ok(replies.every((r) => r.status === 200))
    assert.equal(
      (await fleet.calls()) - before,
      1,
      'exactly one regeneration after the lock expired',
    )
  })
})
