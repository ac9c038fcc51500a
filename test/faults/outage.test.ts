/**
 * The cache fails open: with memcached refusing, paused (SIGSTOP) or killed and restarted, every
 * request still gets its correct 200, none waits longer than origin time + deadline + slack, and
 * hits come back after the fault without restarting the app.
 */
import assert from 'node:assert/strict'
import { after, before, it } from 'node:test'
import type { MemcachedStoreEvent } from '../../src/index.js'
import { forEachExpress } from '../helpers/express.js'
import { type MemcachedProcess, startMemcached } from '../helpers/memcached.js'
import {
  mergeReports,
  recordFaultRow,
  runTraffic,
  type TrafficApp,
  type TrafficReport,
  trafficApp,
} from '../helpers/traffic.js'

const ORIGIN_MS = 20
const DEADLINE_MS = 100
/** Generous: shared CI machines are noisy. The point is "bounded", not "fast". */
const SLACK_MS = 1500
const BOUND = ORIGIN_MS + DEADLINE_MS + SLACK_MS

let mc: MemcachedProcess
before(async () => {
  mc = await startMemcached()
})
after(async () => {
  await mc.stop()
})

/** Every request of the report was answered correctly, within the bound. */
function assertCorrect(report: TrafficReport): void {
  assert.deepEqual([report.wrong, report.errors5xx, report.failed], [0, 0, 0])
  assert.ok(report.maxMs < BOUND, `max ${report.maxMs} ms`)
}

/**
 * Sends small rounds of traffic until hits come back (bounded); asserts they did. One request at a
 * time: concurrent requests for one key share a render in-process and say HIT without any store.
 */
async function untilHitsResume(app: TrafficApp): Promise<TrafficReport> {
  const rounds: TrafficReport[] = []
  for (let i = 0; i < 40; i++) {
    const r = await runTraffic(app.url, 20, 5, 1)
    assertCorrect(r)
    rounds.push(r)
    if (r.hits > 0) return mergeReports(...rounds)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  assert.fail('hits resume after the fault, without restarting the app')
}

/** An app whose store reports its breaker and connection events into `events`. */
const start = (express: Parameters<typeof trafficApp>[0], events: MemcachedStoreEvent[]) =>
  trafficApp(
    express,
    { servers: mc.address, cooldown: '500ms', onEvent: (e) => events.push(e) },
    { timeout: DEADLINE_MS / 1000 },
    ORIGIN_MS,
  )

/** The store saw the fault: an event of one of `types` for the server (not just a quiet run). */
function assertObserved(
  events: readonly MemcachedStoreEvent[],
  types: readonly MemcachedStoreEvent['type'][],
  what: string,
): void {
  const seen = events.filter((e) => e.server === mc.address).map((e) => e.type)
  assert.ok(
    seen.some((type) => types.includes(type)),
    `${what}: expected ${types.join(' or ')} for ${mc.address}, saw [${seen.join(', ')}]`,
  )
}

forEachExpress('memcached outages', (express, major) => {
  it('refusing connections: correct 200s, then hits again after restart', async (t) => {
    const events: MemcachedStoreEvent[] = []
    const app = await start(express, events)
    t.after(() => app.close())
    const warm = await runTraffic(app.url, 40, 5, 1)
    assert.ok(warm.hits > 0, 'cached before the fault')
    assert.deepEqual(events, [], 'no fault before the fault')
    await mc.stop()
    let down: TrafficReport
    try {
      down = await runTraffic(app.url, 200, 5)
      assertCorrect(down)
      assertObserved(events, ['breaker-open'], 'refusing')
    } finally {
      // Restarted whatever happened, so one failure does not cascade into the next test.
      await mc.restart()
    }
    const recovery = await untilHitsResume(app)
    assertObserved(events, ['breaker-close'], 'after restart')
    recordFaultRow(
      `single server refusing, then restarted (express ${major})`,
      mergeReports(down, recovery),
    )
  })

  it('paused with SIGSTOP: every request completes within origin + deadline + slack', async (t) => {
    const events: MemcachedStoreEvent[] = []
    const app = await start(express, events)
    t.after(() => app.close())
    const warm = await runTraffic(app.url, 40, 5, 1)
    assert.ok(warm.hits > 0, 'cached before the fault')
    await mc.pause()
    let paused: TrafficReport
    try {
      paused = await runTraffic(app.url, 200, 5, 20)
      assertCorrect(paused)
      assertObserved(events, ['breaker-open'], 'paused')
    } finally {
      await mc.resume()
    }
    const recovery = await untilHitsResume(app)
    recordFaultRow(
      `single server paused (SIGSTOP), resumed (express ${major})`,
      mergeReports(paused, recovery),
    )
  })

  it('killed and restarted mid-load: no wrong body, no 5xx, hits resume', async (t) => {
    const events: MemcachedStoreEvent[] = []
    const app = await start(express, events)
    t.after(() => app.close())
    const warm = await runTraffic(app.url, 40, 10, 1)
    assert.ok(warm.hits > 0, 'cached before the fault')
    const load = runTraffic(app.url, 600, 10, 10)
    await new Promise((r) => setTimeout(r, 150))
    await mc.restart()
    const during = await load
    assertCorrect(during)
    // The restart cut the store's connections (a rebuilt client, or an open breaker)...
    assertObserved(events, ['client-rebuilt', 'breaker-open'], 'killed mid-load')
    // ...and emptied memcached: the warm keys had to be rendered again.
    assert.ok(
      (during.outcomes.MISS ?? 0) > 0,
      `misses after the restart ${JSON.stringify(during.outcomes)}`,
    )
    const recovery = await untilHitsResume(app)
    recordFaultRow(
      `single server killed + restarted mid-load (express ${major})`,
      mergeReports(during, recovery),
    )
  })
})
