/**
 * The startup probe of a cache that built its own MemcachedStore: one warning when memcached does not
 * answer, none when it does, and never a process kept alive.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { after, before, describe, it } from 'node:test'
import { probeMemcached } from '../../src/reachability.js'
import { responseCache } from '../../src/response-cache.js'
import { MemcachedStore } from '../../src/store/memcached.js'
import { delay } from '../helpers/app.js'
import { capture } from '../helpers/log-capture.js'
import {
  type BlackholeServer,
  blackholeServer,
  freePort,
  type MemcachedProcess,
  startMemcached,
} from '../helpers/memcached.js'

/** Waits, generously, until `lines` has `count` entries. */
async function until(lines: unknown[], count: number): Promise<void> {
  for (let i = 0; i < 200 && lines.length < count; i++) await delay(50)
}

const root = new URL('../..', import.meta.url)

/** Runs a module snippet in a fresh node (tsx) that never closes its cache. */
function run(script: string): ReturnType<typeof spawnSync> {
  return spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: root,
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, MEMCACHE_SERVERS: '' },
  })
}

describe('memcached reachability probe', () => {
  let mc: MemcachedProcess
  let hole: BlackholeServer
  let closed: string
  before(async () => {
    mc = await startMemcached()
    hole = await blackholeServer()
    closed = `127.0.0.1:${await freePort()}`
  })
  after(async () => {
    await mc?.stop()
    await hole?.close()
  })

  it('says nothing when memcached answers', async () => {
    const { logger, lines } = capture()
    // A generous timeout: a loaded machine must not turn a live server into a warning.
    await probeMemcached([mc.address], 'p1', 1000, logger).done
    assert.deepEqual(lines, [])
  })

  it('logs one warning naming the servers that do not answer', async () => {
    const { logger, lines } = capture()
    await probeMemcached([mc.address, closed, hole.address], 'p2', 1000, logger).done
    assert.equal(lines.length, 1)
    const line = lines[0]
    assert.equal(line?.code, 'EFTC_MEMCACHED_UNREACHABLE')
    assert.equal(line?.level, 40)
    assert.deepEqual(line?.servers, [closed, hole.address])
    assert.equal(
      line?.msg,
      `express-ft-cache: memcached is unreachable at ${closed}, ${hole.address}; requests pass through uncached until it answers`,
    )
  })

  it('warns once per process for the same servers', async () => {
    const { logger, lines } = capture()
    const other = `127.0.0.1:${await freePort()}`
    await probeMemcached([other], 'p3', 100, logger).done
    await probeMemcached([other], 'p3', 100, logger).done
    assert.equal(lines.length, 1)
  })

  it('says nothing once cancelled', async () => {
    const { logger, lines } = capture()
    const probe = probeMemcached([hole.address], 'p4', 100, logger)
    await probe.cancel()
    await probe.done
    assert.deepEqual(lines, [])
  })

  it('runs when responseCache() builds its own store, through the configured logger', async () => {
    const { logger, lines } = capture()
    const down = `127.0.0.1:${await freePort()}`
    const cache = responseCache({ servers: [down], logger })
    try {
      await until(lines, 1)
      assert.equal(lines.length, 1)
      assert.match(String(lines[0]?.msg), new RegExp(`unreachable at ${down}`))
    } finally {
      await cache.close()
    }
  })

  it('does not run for a store the app gave', async () => {
    const { logger, lines } = capture()
    const down = `127.0.0.1:${await freePort()}`
    const cache = responseCache({ store: new MemcachedStore({ servers: [down] }), logger })
    // A refused connection fails at once; the probe, had it run, would have warned well within this.
    await delay(1500)
    await cache.close()
    assert.deepEqual(lines, [])
  })

  it('close() right after creation stops the probe', async () => {
    const { logger, lines } = capture()
    const cache = responseCache({ servers: [hole.address], logger })
    await cache.close()
    await delay(300)
    assert.deepEqual(lines, [])
  })

  it('never keeps the process alive, and warns on stderr by default', () => {
    const up = run(
      `import { responseCache } from './src/index.ts'\nresponseCache({ servers: ['${mc.address}'], timeout: '1s' })`,
    )
    assert.equal(up.signal, null, 'the process exited by itself')
    assert.equal(up.status, 0, String(up.stderr))
    assert.equal(up.stderr, '')

    const down = `127.0.0.1:1`
    const r = run(
      `import { responseCache } from './src/index.ts'\nresponseCache({ servers: '${down}' })`,
    )
    assert.equal(r.signal, null, 'the process exited by itself')
    assert.equal(r.status, 0, String(r.stderr))
    const lines = String(r.stderr).trim().split('\n')
    assert.equal(lines.length, 1, String(r.stderr))
    const line = JSON.parse(lines[0] ?? '') as Record<string, unknown>
    assert.equal(line.name, 'express-ft-cache')
    assert.equal(line.code, 'EFTC_MEMCACHED_UNREACHABLE')
    assert.match(
      String(line.msg),
      /memcached is unreachable at 127\.0\.0\.1:1; requests pass through uncached/,
    )
  })
})
