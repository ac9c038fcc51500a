/** Cache-Status says why a response was not stored (RFC 9211 §2.8 detail). */
import assert from 'node:assert/strict'
import { it } from 'node:test'
import pino from 'pino'
import request from 'supertest'
import { MemoryStore, responseCache } from '../../src/index.js'
import { forEachExpress } from '../helpers/express.js'

const CASES: readonly [path: string, detail: string][] = [
  ['/private', 'private'],
  ['/no-store', 'no-store'],
  ['/set-cookie', 'set-cookie'],
  ['/vary-star', 'vary-star'],
  ['/too-large', 'too-large'],
  ['/status', 'status'],
]

forEachExpress('Cache-Status detail for responses that are not stored', (express) => {
  it('names the reason on the render, and the next request renders again', async (t) => {
    const cache = responseCache({
      store: new MemoryStore(),
      logger: pino({ level: 'silent' }),
      maxBodySize: 100,
    })
    t.after(() => cache.close())
    const app = express()
    app.use(cache)
    app.get('/private', (_req, res) => res.set('cache-control', 'private').send('p'))
    app.get('/no-store', (_req, res) => res.set('cache-control', 'no-store').send('n'))
    app.get('/set-cookie', (_req, res) => res.cookie('a', '1').send('c'))
    app.get('/vary-star', (_req, res) => res.set('vary', '*').send('v'))
    app.get('/too-large', (_req, res) => res.send('x'.repeat(500)))
    app.get('/status', (_req, res) => res.status(418).send('t'))
    app.get('/public', (_req, res) => res.set('cache-control', 'public, max-age=60').send('pub'))
    for (const [path, detail] of CASES) {
      const first = await request(app).get(path)
      assert.equal(first.headers['x-cache'], 'MISS', path)
      assert.match(first.headers['cache-status'] ?? '', new RegExp(`; detail=${detail}(;|$)`), path)
      await cache.settled()
      assert.notEqual((await request(app).get(path)).headers['x-cache'], 'HIT', path)
    }
    // A request with a session cookie: its own render is not shared unless public.
    const withCookie = await request(app).get('/private').set('cookie', 'sid=alice')
    assert.equal(withCookie.headers['x-cache'], 'BYPASS')
    assert.match(withCookie.headers['cache-status'] ?? '', /detail=cookie/)
    // A stored response says nothing of the kind.
    const stored = await request(app).get('/public')
    assert.doesNotMatch(stored.headers['cache-status'] ?? '', /detail=/)
    await cache.settled()
    assert.equal((await request(app).get('/public')).headers['x-cache'], 'HIT')
  })
})
