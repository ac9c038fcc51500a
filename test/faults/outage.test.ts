/**
 * The cache fails open: with memcached refusing, paused (SIGSTOP) or killed and restarted, every
 * request still gets its correct 200, none waits longer than origin time + deadline + slack, and
 * hits come back after the fault without restarting the app.
 */
import assert from 'node:assert/strict'
import { after, before, it } from 'node:test'
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

/** Sends small rounds of traffic until hits come back (bounded); asserts they did. */
async function untilHitsResume(app: TrafficApp): Promise<TrafficReport> {
  const rounds: TrafficReport[] = []
  for (let i = 0; i < 40; i++) {
    const r = await runTraffic(app.url, 20, 5)
    assertCorrect(r)
    rounds.push(r)
    if (r.hits > 0) return mergeReports(...rounds)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  assert.fail('hits resume after the fault, without restarting the app')
}

const start = (express: Parameters<typeof trafficApp>[0]) =>
  trafficApp(
    express,
    { servers: mc.address, cooldown: '500ms' },
    { timeout: DEADLINE_MS / 1000 },
    ORIGIN_MS,
  )

forEachExpress('memcached outages', (express, major) => {
  it('refusing connections: correct 200s, then hits again after restart', async (t) => {
    const app = await start(express)
    t.after(() => app.close())
    await runTraffic(app.url, 40, 5)
    await mc.stop()
    const down = await runTraffic(app.url, 200, 5)
    assertCorrect(down)
    await mc.restart()
    const recovery = await untilHitsResume(app)
    recordFaultRow(
      `single server refusing, then restarted (express ${major})`,
      mergeReports(down, recovery),
    )
  })

  it('paused with SIGSTOP: every request completes within origin + deadline + slack', async (t) => {
    const app = await start(express)
    t.after(() => app.close())
    await runTraffic(app.url, 40, 5)
    await mc.pause()
    let paused: TrafficReport
    try {
      paused = await runTraffic(app.url, 200, 5, 20)
      assertCorrect(paused)
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
    const app = await start(express)
    t.after(() => app.close())
    const load = runTraffic(app.url, 600, 10, 10)
    await new Promise((r) => setTimeout(r, 150))
    await mc.restart()
    const during = await load
    assertCorrect(during)
    const recovery = await untilHitsResume(app)
    recordFaultRow(
      `single server killed + restarted mid-load (express ${major})`,
      mergeReports(during, recovery),
    )
  })
})
