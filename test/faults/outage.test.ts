/**
 * The cache fails open: with memcached refusing, paused (SIGSTOP) or killed and restarted, every
 * request still gets its correct 200, none waits longer than origin time + deadline + slack, and
 * hits come back after the fault without restarting the app.
 */
import assert from 'node:assert/strict'
import { after, before, it } from 'node:test'
import { forEachExpress } from '../helpers/express.js'
import { type MemcachedProcess, startMemcached } from '../helpers/memcached.js'
import { runTraffic, trafficApp } from '../helpers/traffic.js'

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

forEachExpress('memcached outages', (express) => {
  it('refusing connections: correct 200s, then hits again after restart', async (t) => {
    const app = await trafficApp(
      express,
      { servers: mc.address, cooldown: '500ms' },
      { timeout: DEADLINE_MS / 1000 },
      ORIGIN_MS,
    )
    t.after(() => app.close())
    await runTraffic(app.url, 40, 5)
    await mc.stop()
    const down = await runTraffic(app.url, 200, 5)
    assert.deepEqual([down.wrong, down.errors5xx, down.failed], [0, 0, 0])
    assert.ok(down.maxMs < BOUND, `max ${down.maxMs} ms`)
    await mc.restart()
    let hits = 0
    for (let i = 0; i < 40 && hits === 0; i++) {
      const r = await runTraffic(app.url, 20, 5)
      assert.deepEqual([r.wrong, r.errors5xx, r.failed], [0, 0, 0])
      hits = r.hits
      await new Promise((r) => setTimeout(r, 100))
    }
    assert.ok(hits > 0, 'hits resume after memcached is back, without restarting the app')
  })

  it('paused with SIGSTOP: every request completes within origin + deadline + slack', async (t) => {
    const app = await trafficApp(
      express,
      { servers: mc.address, cooldown: '500ms' },
      { timeout: DEADLINE_MS / 1000 },
      ORIGIN_MS,
    )
    t.after(() => app.close())
    await runTraffic(app.url, 40, 5)
    await mc.pause()
    try {
      const paused = await runTraffic(app.url, 200, 5, 20)
      assert.deepEqual([paused.wrong, paused.errors5xx, paused.failed], [0, 0, 0])
      assert.ok(paused.maxMs < BOUND, `max ${paused.maxMs} ms with a paused server`)
    } finally {
      await mc.resume()
    }
    let hits = 0
    for (let i = 0; i < 40 && hits === 0; i++) {
      hits = (await runTraffic(app.url, 20, 5)).hits
      await new Promise((r) => setTimeout(r, 100))
    }
    assert.ok(hits > 0, 'hits resume after SIGCONT')
  })

  it('killed and restarted mid-load: no wrong body, no 5xx, hits resume', async (t) => {
    const app = await trafficApp(
      express,
      { servers: mc.address, cooldown: '500ms' },
      { timeout: DEADLINE_MS / 1000 },
      ORIGIN_MS,
    )
    t.after(() => app.close())
    const load = runTraffic(app.url, 600, 10, 10)
    await new Promise((r) => setTimeout(r, 150))
    await mc.restart()
    const during = await load
    assert.deepEqual([during.wrong, during.errors5xx, during.failed], [0, 0, 0])
    assert.ok(during.maxMs < BOUND, `max ${during.maxMs} ms`)
    let hits = 0
    for (let i = 0; i < 40 && hits === 0; i++) {
      hits = (await runTraffic(app.url, 20, 5)).hits
      await new Promise((r) => setTimeout(r, 100))
    }
    assert.ok(hits > 0)
  })
})
