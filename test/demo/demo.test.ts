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
    demo = createDemoApp(new MemoryStore(), { logger: pino({ level: 'silent' }) })
  })
  after(async () => {
    await demo.cache.close()
  })

  it('serves the index page with the routes', async () => {
    const res = await request(demo.app).get('/').set('host', 'demo.test:3000')
    assert.equal(res.status, 200)
    assert.match(res.headers['content-type'] ?? '', /text\/html/)
    for (const path of ['/slow', '/api/time.json', '/news', '/me', '/image.png']) {
      assert.ok(res.text.includes(`href="${path}"`), `index links ${path}`)
    }
    assert.match(res.text, /curl [^<]*http:\/\/demo\.test:3000\/slow/)
    assert.equal(res.headers['x-cache'], 'MISS')
    await demo.cache.settled()
    const again = await request(demo.app).get('/').set('host', 'demo.test:3000')
    assert.equal(again.headers['x-cache'], 'HIT')
    assert.equal(again.text, res.text)
  })

  it('/slow: MISS and slow, then HIT, fast and byte-identical', async () => {
    let t = performance.now()
    const first = await request(demo.app).get('/slow')
    const firstMs = performance.now() - t
    assert.equal(first.status, 200)
    assert.equal(first.headers['x-cache'], 'MISS')
    assert.ok(firstMs >= 450, `first render took ${firstMs} ms`)
    await demo.cache.settled()

    t = performance.now()
    const second = await request(demo.app).get('/slow')
    const secondMs = performance.now() - t
    assert.equal(second.status, 200)
    assert.equal(second.headers['x-cache'], 'HIT')
    assert.ok(secondMs < 200, `cached answer took ${secondMs} ms`)
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
