/**
 * Smoke test of the demo app (demo/app.ts) on a MemoryStore: the routes answer and the cache
 * outcomes the demo's index page promises are what a client sees.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import pino from 'pino'
import request from 'supertest'
import { createDemoApp, type DemoApp } from '../../demo/app.js'
import { MemoryStore } from '../../src/index.js'

describe('demo app', () => {
  let demo: DemoApp
  before(() => {
    demo = createDemoApp(new MemoryStore(), { logger: pino({ level: 'silent' }), slowMs: 500 })
  })
  after(async () => {
    await demo.cache.close()
  })

  it('serves the dashboard and its script, uncached, outside the cache', async () => {
    const res = await request(demo.app).get('/')
    assert.equal(res.status, 200)
    assert.match(res.headers['content-type'] ?? '', /text\/html/)
    assert.equal(res.headers['cache-control'], 'no-store')
    assert.equal(res.headers['x-cache'], undefined)
    for (const path of ['/slow', '/api/time.json', '/news', '/me', '/image.png', '/try']) {
      assert.ok(res.text.includes(`data-path="${path}"`), `dashboard lists ${path}`)
    }
    const js = await request(demo.app).get('/dashboard.js')
    assert.equal(js.status, 200)
    assert.match(js.headers['content-type'] ?? '', /javascript/)
  })

  it('/_demo/stats reports the counters, the store and the stampede page', async () => {
    const res = await request(demo.app).get('/_demo/stats')
    assert.equal(res.status, 200)
    assert.equal(res.headers['x-cache'], undefined)
    assert.equal(typeof res.body.stats.requests.hit, 'number')
    assert.equal(res.body.memcached, null)
    assert.equal(res.body.stampede.path, '/stampede')
    assert.ok(res.body.tags.includes('news'))
    const paused = await request(demo.app).post('/_demo/memcached/pause')
    assert.equal(paused.status, 409, 'no memcached of its own: nothing to pause')
  })

  it('serves the curl page with the routes, keyed on Host', async () => {
    const res = await request(demo.app).get('/try').set('host', 'demo.test:3000')
    assert.equal(res.status, 200)
    assert.match(res.headers['content-type'] ?? '', /text\/html/)
    for (const path of ['/slow', '/api/time.json', '/news', '/me', '/image.png', '/stampede']) {
      assert.ok(res.text.includes(`href="${path}"`), `curl page links ${path}`)
    }
    assert.match(res.text, /curl [^<]*http:\/\/demo\.test:3000\/slow/)
    assert.equal(res.headers['x-cache'], 'MISS')
    await demo.cache.settled()
    const again = await request(demo.app).get('/try').set('host', 'demo.test:3000')
    assert.equal(again.headers['x-cache'], 'HIT')
    assert.equal(again.text, res.text)
    const other = await request(demo.app).get('/try').set('host', 'other.test')
    assert.equal(other.headers['x-cache'], 'MISS')
  })

  it('invalidating a tag makes its pages render again', async () => {
    // /api/time.json's tags come from a function: ['api', 'api:/api/time.json'].
    await request(demo.app).get('/api/time.json')
    await demo.cache.settled()
    assert.equal((await request(demo.app).get('/api/time.json')).headers['x-cache'], 'HIT')
    const res = await request(demo.app)
      .post('/_demo/invalidate')
      .send({ tags: ['api:/api/time.json'] })
    assert.equal(res.status, 200)
    assert.deepEqual(res.body, { invalidated: ['api:/api/time.json'] })
    assert.equal((await request(demo.app).get('/api/time.json')).headers['x-cache'], 'MISS')
    const bad = await request(demo.app).post('/_demo/invalidate').send({ tags: [] })
    assert.equal(bad.status, 400)
    const foreign = await request(demo.app)
      .post('/_demo/invalidate')
      .set('origin', 'https://elsewhere.example')
      .send({ tags: ['api'] })
    assert.equal(foreign.status, 403)
  })

  it('the stampede endpoint: 50 requests at the expired page, one render', async () => {
    const res = await request(demo.app).post('/_demo/stampede')
    assert.equal(res.status, 200)
    assert.equal(res.body.requests, 50)
    assert.equal(res.body.renders, 1)
    assert.equal(res.body.outcomes.MISS, 1)
    assert.deepEqual(res.body.statuses, { 200: 50 })
  })

  it('/slow: MISS and slow, then a byte-identical HIT', async () => {
    const t = performance.now()
    const first = await request(demo.app).get('/slow')
    const firstMs = performance.now() - t
    assert.equal(first.status, 200)
    assert.equal(first.headers['x-cache'], 'MISS')
    assert.ok(firstMs >= 450, `first render took ${firstMs} ms`)
    await demo.cache.settled()

    // Not timed (a loaded CI box makes any bound flaky): the same render time and timestamp in the
    // body prove the handler did not run again.
    const second = await request(demo.app).get('/slow')
    assert.equal(second.status, 200)
    assert.equal(second.headers['x-cache'], 'HIT')
    assert.equal(second.text, first.text)
    assert.equal(second.headers.etag, first.headers.etag)
  })

  it('/me is never cached and sets its cookie every time it is new', async () => {
    for (let i = 0; i < 2; i++) {
      const res = await request(demo.app).get('/me')
      assert.equal(res.status, 200)
      assert.equal(res.headers['x-cache'], 'BYPASS')
      assert.match(String(res.headers['set-cookie']), /demo_visitor=/)
    }
    const again = await request(demo.app).get('/me').set('cookie', 'demo_visitor=v9-abc')
    assert.equal(again.headers['x-cache'], 'BYPASS')
    assert.match(again.text, /visitor v9-abc/)
  })

  it('/image.png comes back byte for byte on a HIT', async () => {
    const first = await request(demo.app).get('/image.png').buffer(true)
    assert.equal(first.status, 200)
    assert.equal(first.headers['x-cache'], 'MISS')
    assert.equal(first.headers['content-type'], 'image/png')
    const png = first.body as Buffer
    assert.ok(Buffer.isBuffer(png) && png.length > 0)
    assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])
    await demo.cache.settled()

    const second = await request(demo.app).get('/image.png').buffer(true)
    assert.equal(second.headers['x-cache'], 'HIT')
    assert.ok(png.equals(second.body as Buffer), 'binary body identical')
    assert.equal(second.headers['content-length'], String(png.length))
  })

  it('/news carries X-Cache and its route ttl of 5 s', async () => {
    const first = await request(demo.app).get('/news')
    assert.equal(first.status, 200)
    assert.equal(first.headers['x-cache'], 'MISS')
    await demo.cache.settled()
    const second = await request(demo.app).get('/news')
    assert.equal(second.headers['x-cache'], 'HIT')
    assert.match(second.headers['cache-status'] ?? '', /; hit; ttl=[45]\b/)
    assert.equal(second.text, first.text)
  })

  it('/api/time.json is JSON and cached', async () => {
    const first = await request(demo.app).get('/api/time.json')
    assert.equal(first.status, 200)
    assert.match(first.headers['content-type'] ?? '', /application\/json/)
    assert.equal(typeof first.body.renderedAt, 'string')
    await demo.cache.settled()
    const second = await request(demo.app).get('/api/time.json')
    assert.equal(second.headers['x-cache'], 'HIT')
    assert.deepEqual(second.body, first.body)
  })

  it('logs one line per request with the cache outcome', async () => {
    const lines: Record<string, unknown>[] = []
    const logger = pino(
      { level: 'info' },
      { write: (line: string) => lines.push(JSON.parse(line)) },
    )
    const logged = createDemoApp(new MemoryStore(), { logger })
    try {
      await request(logged.app).get('/image.png')
      await logged.cache.settled()
      await request(logged.app).get('/image.png')
      await request(logged.app).get('/me')
    } finally {
      await logged.cache.close()
    }
    assert.deepEqual(
      lines.map((l) => [l.msg?.toString().replace(/ \d+ms$/, ''), l.cache]),
      [
        ['GET /image.png 200', 'MISS'],
        ['GET /image.png 200', 'HIT'],
        ['GET /me 200', 'BYPASS'],
      ],
    )
  })
})
