/** `cache.stats()`: each counter moves with the requests and store events that should move it. */
import assert from 'node:assert/strict'
import { it } from 'node:test'
import type { Express } from 'express'
import pino from 'pino'
import request from 'supertest'
import {
  type CacheStats,
  MemcachedStore,
  MemoryStore,
  type ResponseCacheOptions,
  responseCache,
} from '../../src/index.js'
import { cacheOn, delay } from '../helpers/app.js'
import { forEachExpress } from '../helpers/express.js'
import { startMemcached } from '../helpers/memcached.js'
import { memcachedForFile } from '../helpers/memcached-file.js'
import { mount } from '../helpers/mount.js'

const mc = memcachedForFile()

/** The counters that moved between two snapshots (store errors and breakers as given). */
function moved(a: CacheStats, b: CacheStats) {
  return {
    hit: b.requests.hit - a.requests.hit,
    stale: b.requests.stale - a.requests.stale,
    miss: b.requests.miss - a.requests.miss,
    bypass: b.requests.bypass - a.requests.bypass,
    renders: b.renders - a.renders,
    coalesced: b.coalesced - a.coalesced,
    locksWon: b.locks.won - a.locks.won,
    locksLost: b.locks.lost - a.locks.lost,
    hotHits: b.hot.hits - a.hot.hits,
    invalidations: b.invalidations - a.invalidations,
  }
}

const ZERO = {
  hit: 0,
  stale: 0,
  miss: 0,
  bypass: 0,
  renders: 0,
  coalesced: 0,
  locksWon: 0,
  locksLost: 0,
  hotHits: 0,
  invalidations: 0,
}

forEachExpress('stats()', (express) => {
  it('starts at zero, with the store breakers listed', async (t) => {
    const cache = cacheOn(mc)
    t.after(() => cache.close())
    const s = cache.stats()
    assert.deepEqual(s.requests, { hit: 0, stale: 0, revalidated: 0, miss: 0, bypass: 0 })
    assert.equal(s.renders, 0)
    assert.equal(s.coalesced, 0)
    assert.deepEqual(s.locks, { won: 0, lost: 0 })
    assert.deepEqual(s.storeErrors, {})
    assert.deepEqual(s.breakers, { [mc.address]: 'closed' })
    assert.deepEqual(s.hot, { hits: 0, entries: 0, bytes: 0 })
    assert.equal(s.invalidations, 0)
    const memory = responseCache({ store: new MemoryStore(), logger: pino({ level: 'silent' }) })
    assert.deepEqual(memory.stats().breakers, {}, 'a store without breakers')
    await memory.close()
  })

  it('counts miss, hit, stale, bypass, renders and locks won', async (t) => {
    const cache = cacheOn(mc, { ttl: 1, grace: 60 })
    t.after(() => cache.close())
    let slow = 0
    const { app } = mount(express, cache, (app, count) => {
      app.get('/page', async (_req, res) => {
        await delay(slow)
        res.send(`page ${count()}`)
      })
      app.get('/private', (_req, res) => {
        res.set('cache-control', 'private').send('mine')
      })
      app.post('/form', (_req, res) => {
        res.status(400).send('bad')
      })
    })
    let last = cache.stats()
    const step = async (
      go: () => Promise<unknown>,
      expected: Partial<typeof ZERO>,
      what: string,
    ) => {
      await go()
      await cache.settled()
      const now = cache.stats()
      assert.deepEqual(moved(last, now), { ...ZERO, ...expected }, what)
      last = now
    }
    await step(() => request(app).get('/page'), { miss: 1, renders: 1, locksWon: 1 }, 'cold miss')
    await step(() => request(app).get('/page'), { hit: 1 }, 'hit')
    await step(() => request(app).get('/page?x=1'), { miss: 1, renders: 1, locksWon: 1 }, 'query')
    await step(() => request(app).post('/form'), { bypass: 1 }, 'unsafe method, 4xx')
    await step(
      () => request(app).get('/page').set('authorization', 'Bearer t'),
      // A credentialed render is stored when its response says `public`: it counts as a render.
      { bypass: 1, renders: 1 },
      'credentialed: rendered privately, without the lock',
    )
    await delay(1100)
    // Past ttl: one request regenerates (counted as the MISS that renders), the next is stale.
    slow = 300
    const before = cache.stats()
    const [a, b] = await Promise.all([
      request(app).get('/page'),
      delay(30).then(() => request(app).get('/page')),
    ])
    await cache.settled()
    const outcomes = [a.headers['x-cache'], b.headers['x-cache']].sort()
    const d = moved(before, cache.stats())
    assert.equal(d.renders, 1, 'one regeneration')
    assert.equal(d.locksWon, 1)
    assert.deepEqual(outcomes, ['MISS', 'STALE'])
    assert.deepEqual(d, { ...ZERO, miss: 1, stale: 1, renders: 1, locksWon: 1 })
    last = cache.stats()
    await step(() => request(app).get('/private'), { miss: 1, renders: 1, locksWon: 1 }, 'private')
    await step(
      () => request(app).get('/private'),
      { miss: 1, renders: 1 },
      'hit-for-miss: rendered again at once, no lock',
    )
  })

  it('counts coalesced requests: one render answers the requests waiting in this process', async (t) => {
    const cache = cacheOn(mc)
    t.after(() => cache.close())
    const { app, calls } = mount(express, cache, (app, count) => {
      app.get('/slow', async (_req, res) => {
        count()
        await delay(300)
        res.send('slow')
      })
    })
    const replies = await Promise.all(Array.from({ length: 6 }, () => request(app).get('/slow')))
    await cache.settled()
    assert.equal(calls(), 1)
    const s = cache.stats()
    assert.equal(s.renders, 1)
    assert.equal(s.coalesced, 5)
    assert.equal(s.requests.miss, 1)
    assert.equal(s.requests.hit, 5, 'coalesced requests say HIT')
    assert.equal(
      replies.filter((r) => /detail=coalesced/.test(r.headers['cache-status'] ?? '')).length,
      5,
    )
  })

  it('counts locks lost, and coalescing across processes (two caches on one memcached)', async (t) => {
    const options: ResponseCacheOptions = {
      store: new MemcachedStore({ servers: mc.address, timeout: '200ms' }),
      prefix: `stats${process.pid}x${Date.now()}`,
      logger: pino({ level: 'silent' }),
      pollInterval: '20ms',
      timeout: '1s',
    }
    const a = responseCache(options)
    const b = responseCache({
      ...options,
      store: new MemcachedStore({ servers: mc.address, timeout: '200ms' }),
    })
    t.after(() => Promise.all([a.close(), b.close()]))
    const routes = (app: Express, count: () => number) => {
      app.get('/shared', async (_req, res) => {
        count()
        await delay(300)
        res.send('shared')
      })
    }
    const one = mount(express, a, routes)
    const two = mount(express, b, routes)
    const first = request(one.app)
      .get('/shared')
      .then((r) => r)
    await delay(100)
    const second = await request(two.app).get('/shared')
    await first
    await Promise.all([a.settled(), b.settled()])
    assert.equal(one.calls() + two.calls(), 1, 'one render for both processes')
    assert.equal(second.headers['x-cache'], 'HIT')
    assert.equal(a.stats().locks.won, 1)
    assert.ok(b.stats().locks.lost >= 1)
    assert.equal(b.stats().coalesced, 1)
    assert.equal(b.stats().renders, 0)
  })

  it('counts hot-tier hits, entries and bytes', async (t) => {
    const cache = cacheOn(mc, { hotCache: true, timeout: '1s' })
    t.after(() => cache.close())
    const { app } = mount(express, cache, (app) => {
      app.get('/h/:n', (req, res) => {
        res.send(`hot ${req.params.n}`)
      })
    })
    for (const n of [1, 2]) {
      await request(app).get(`/h/${n}`)
      await cache.settled()
    }
    const before = cache.stats()
    assert.equal(before.hot.entries, 2)
    assert.ok(before.hot.bytes > 'hot 1'.length * 2)
    for (let i = 0; i < 4; i++) await request(app).get('/h/1')
    const after = cache.stats()
    assert.equal(after.hot.hits - before.hot.hits, 4)
    assert.equal(after.requests.hit - before.requests.hit, 4, 'hot hits are hits too')
  })

  it('counts invalidations: API calls and successful unsafe requests', async (t) => {
    const cache = cacheOn(mc)
    t.after(() => cache.close())
    const { app } = mount(express, cache, (app) => {
      app.post('/ok', (_req, res) => {
        res.send('ok')
      })
      app.post('/fail', (_req, res) => {
        res.status(500).send('no')
      })
    })
    await cache.invalidate('/a')
    await cache.invalidate(['/b', '/c'])
    await cache.invalidateTags('t')
    await cache.invalidateTags(['t', 'u'], { soft: true })
    await cache.invalidateAll()
    assert.equal(cache.stats().invalidations, 5, 'one per call')
    await request(app).post('/ok')
    await request(app).post('/fail')
    await cache.settled()
    assert.equal(cache.stats().invalidations, 6)
  })

  it('counts store errors by kind and reports the breaker open while memcached is down', async (t) => {
    const down = await startMemcached()
    const store = new MemcachedStore({
      servers: down.address,
      timeout: '1s',
      failureThreshold: 2,
    })
    // Generous deadlines: while memcached is up, a loaded runner must not count timeouts.
    const cache = responseCache({
      store,
      prefix: `down${process.pid}`,
      logger: pino({ level: 'silent' }),
      timeout: '1s',
    })
    t.after(async () => {
      await cache.close()
      await down.stop()
    })
    const { app, calls } = mount(express, cache, (app, count) => {
      app.get('/page', (_req, res) => {
        res.send(`page ${count()}`)
      })
    })
    assert.equal((await request(app).get('/page')).status, 200)
    await cache.settled()
    assert.deepEqual(cache.stats().storeErrors, {})
    await down.stop()
    for (let i = 0; i < 5; i++) {
      const r = await request(app).get('/page')
      assert.equal(r.status, 200, 'fail open')
      await cache.settled()
    }
    const s = cache.stats()
    assert.equal(calls(), 6, 'every request went to the handler')
    const kinds = Object.keys(s.storeErrors)
    assert.ok(kinds.length > 0, 'errors were counted')
    for (const kind of kinds) assert.match(kind, /^(get|set|add|delete|compareAndDelete):\S+$/)
    assert.ok(
      kinds.some((k) => k.startsWith('get:')),
      `a failed read is among them: ${kinds.join(', ')}`,
    )
    assert.ok(
      kinds.some((k) => k === 'get:ESTORE_CONNECTION'),
      `refused connections: ${kinds.join(', ')}`,
    )
    assert.ok(
      kinds.some((k) => k.endsWith(':ESTORE_UNAVAILABLE')),
      `calls refused by the open breaker are counted apart: ${kinds.join(', ')}`,
    )
    assert.deepEqual(s.breakers, { [down.address]: 'open' })
    const total = Object.values(s.storeErrors).reduce((x, y) => x + y, 0)
    assert.ok(total >= 5)
  })
})
