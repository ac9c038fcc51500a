/**
 * Active recovery across processes: after memcached comes back, every process's circuit breaker
 * closes by itself (the store probes at the end of each cooldown), so the first burst of traffic
 * after an outage is coalesced by the mint lock as usual. Without the probe, the first call in each
 * process would be the probe and every call beside it would be refused: the fleet would render
 * cold keys several times, without the lock.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { delay } from '../helpers/app.js'
import { type Fleet, startFleet } from '../helpers/fleet.js'
import { type MemcachedProcess, startMemcached } from '../helpers/memcached.js'

const WORKERS = 4
const COOLDOWN_MS = 500
const KEYS = 20
const REQUESTS_PER_KEY = 8

describe(`recovery of ${WORKERS} processes after memcached restarts`, () => {
  let mc: MemcachedProcess
  let fleet: Fleet
  before(async () => {
    mc = await startMemcached()
    fleet = await startFleet(WORKERS, {
      EFTC_SERVERS: mc.address,
      EFTC_PREFIX: `recovery${process.pid}`,
      // Long enough that nothing turns stale during the burst on a slow machine.
      EFTC_TTL: '60s',
      EFTC_LOCK_TTL: '10s',
      // Recovery is under test, not deadlines: a 100 ms deadline missed on a loaded runner would
      // fail open and render a second time by design.
      EFTC_TIMEOUT: '1s',
      EFTC_COOLDOWN: `${COOLDOWN_MS}ms`,
    })
  })
  after(async () => {
    await fleet?.stop()
    await mc?.stop()
  })

  it('renders each cold key exactly once in the first burst after the restart, with no traffic before it', async (t) => {
    // Warm up: every process talks to memcached.
    for (let w = 0; w < WORKERS; w++)
      assert.equal((await fleet.get(w, `/res/warm-${w}`)).status, 200)

    await mc.stop()
    // Sequential calls, each on a fresh connection that is refused: every process counts at least
    // 12 failures in a row, well past the default failureThreshold of 5, so every breaker opens.
    await Promise.all(
      Array.from({ length: WORKERS }, async (_, w) => {
        for (let i = 0; i < 12; i++) {
          const r = await fleet.get(w, `/res/down-${w}-${i}`)
          assert.equal(r.status, 200, 'the origin serves while the store is down (fail open)')
        }
      }),
    )

    await mc.restart()
    const restartedAt = Date.now()
    // No traffic to the store: only the stores' own probes reach memcached. Each process's breaker
    // state is read before the cache (GET /__breakers sends nothing to memcached); every one must
    // close by itself, within two cooldowns (plus slack for a loaded runner).
    const closeBy = restartedAt + 2 * COOLDOWN_MS + 5000
    for (;;) {
      const states = await Promise.all(
        fleet.workers.map(async (w) => {
          const r = await fetch(`http://127.0.0.1:${w.port}/__breakers`)
          return (await r.json()) as Record<string, string>
        }),
      )
      if (states.every((s) => Object.values(s).every((state) => state === 'closed'))) break
      assert.ok(
        Date.now() < closeBy,
        `every breaker closes without traffic (${JSON.stringify(states)})`,
      )
      await delay(25)
    }
    t.diagnostic(`every process's breaker closed ${Date.now() - restartedAt} ms after the restart`)
    // Two cooldowns with no traffic in all, as an operator's quiet minute after an outage would be.
    await delay(Math.max(0, restartedAt + 2 * COOLDOWN_MS + 500 - Date.now()))

    // Open the burst's connections beforehand (GET /__calls never touches the store), so that its
    // requests reach each process together rather than one accept at a time.
    await Promise.all(
      Array.from({ length: KEYS * REQUESTS_PER_KEY }, async (_, i) => {
        const r = await fetch(`http://127.0.0.1:${fleet.workers[i % WORKERS]?.port}/__calls`)
        await r.text()
      }),
    )
    const before = await fleet.calls()
    // All at once, each key's requests spread round all the processes: the first calls of each
    // process reach its store together, which is when a breaker still waiting for its probe would
    // refuse all of them but one.
    const replies = await Promise.all(
      Array.from({ length: KEYS * REQUESTS_PER_KEY }, async (_, i) => {
        const key = i % KEYS
        const worker = Math.floor(i / KEYS) % WORKERS
        return { key, reply: await fleet.get(worker, `/res/cold-${key}`) }
      }),
    )
    const calls = (await fleet.calls()) - before

    const bodies = new Map<number, Set<string>>()
    for (const { key, reply } of replies) {
      assert.equal(reply.status, 200)
      const seen = bodies.get(key) ?? new Set<string>()
      seen.add(reply.body)
      bodies.set(key, seen)
    }
    t.diagnostic(
      `X-Cache: ${JSON.stringify(
        replies.reduce<Record<string, number>>((acc, { reply }) => {
          acc[String(reply.cache)] = (acc[String(reply.cache)] ?? 0) + 1
          return acc
        }, {}),
      )}`,
    )
    const renderedTwice = [...bodies].filter(([, seen]) => seen.size > 1).map(([key]) => key)
    assert.deepEqual(renderedTwice, [], 'keys rendered more than once')
    assert.equal(calls, KEYS, 'one origin call per key for the whole fleet')
  })
})
