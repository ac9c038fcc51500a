/** Revalidation through the handler (RFC 9111 §4.3), Range from stored 200s (RFC 9110 §14). */
import assert from 'node:assert/strict'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { it } from 'node:test'
import pino from 'pino'
import request from 'supertest'
import { MemoryStore, responseCache } from '../../src/index.js'
import { delay } from '../helpers/app.js'
import { forEachExpress } from '../helpers/express.js'

const quiet = { store: new MemoryStore(), logger: pino({ level: 'silent' }) }

forEachExpress('revalidation through the handler (RFC 9111 §4.3)', (express) => {
  it('a stale copy with an ETag is checked with If-None-Match; the 304 freshens it, body kept', async (t) => {
    const cache = responseCache({ ...quiet, store: new MemoryStore(), ttl: 1, grace: 0 })
    t.after(() => cache.close())
    const app = express()
    const seen: (string | undefined)[] = []
    app.use(cache)
    app.get('/doc', (req, res) => {
      seen.push(req.get('if-none-match'))
      res.set('x-version', String(seen.length)).send('the document')
    })
    const first = await request(app).get('/doc')
    assert.equal(first.headers['x-cache'], 'MISS')
    await cache.settled()
    assert.equal((await request(app).get('/doc')).headers['x-cache'], 'HIT')
    await delay(1100)
    const again = await request(app).get('/doc')
    assert.equal(again.headers['x-cache'], 'REVALIDATED')
    assert.equal(again.status, 200)
    assert.equal(again.text, 'the document')
    assert.equal(seen[1], first.headers.etag, 'the handler got the stored ETag as its condition')
    // §4.3.4: the 304's fields replace the stored ones.
    assert.equal(again.headers['x-version'], '2')
    await cache.settled()
    const hit = await request(app).get('/doc')
    assert.equal(hit.headers['x-cache'], 'HIT', 'fresh again for another ttl')
    assert.equal(hit.headers['x-version'], '2')
    // The client's own condition is answered from the refreshed copy.
    await delay(1100)
    const conditional = await request(app)
      .get('/doc')
      .set('if-none-match', first.headers.etag ?? '')
    assert.equal(conditional.status, 304)
    assert.equal(conditional.headers['x-cache'], 'REVALIDATED')
  })

  it('a changed representation replaces the copy (the handler answers 200)', async (t) => {
    const cache = responseCache({ ...quiet, store: new MemoryStore(), ttl: 1, grace: 0 })
    t.after(() => cache.close())
    const app = express()
    let version = 1
    app.use(cache)
    app.get('/doc', (_req, res) => {
      res.send(`version ${version}`)
    })
    await request(app).get('/doc')
    await cache.settled()
    version = 2
    await delay(1100)
    const changed = await request(app).get('/doc')
    assert.equal(changed.headers['x-cache'], 'MISS')
    assert.equal(changed.text, 'version 2')
    await cache.settled()
    assert.equal((await request(app).get('/doc')).text, 'version 2')
  })

  it('res.sendFile (max-age=0) is stored and served after a cheap 304 check', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'eftc-'))
    writeFileSync(join(dir, 'a.txt'), 'file body')
    const cache = responseCache({ ...quiet, store: new MemoryStore() })
    t.after(() => cache.close())
    const app = express()
    let sends = 0
    app.use(cache)
    app.get('/a.txt', (_req, res) => {
      sends++
      res.sendFile(join(dir, 'a.txt'))
    })
    const first = await request(app).get('/a.txt')
    assert.equal(first.text, 'file body')
    await cache.settled()
    const second = await request(app).get('/a.txt')
    assert.equal(second.headers['x-cache'], 'REVALIDATED')
    assert.equal(second.text, 'file body')
    assert.equal(sends, 2, 'the handler ran, and answered 304 without the body')
  })

  it('a route that takes over never sees the validators the app-level revalidation injected', async (t) => {
    const cache = responseCache({ ...quiet, store: new MemoryStore(), ttl: 1, grace: 0 })
    t.after(() => cache.close())
    const app = express()
    app.use(cache)
    app.get('/page', cache.route({ cookies: 'ignore' }), (_req, res) => {
      res.send('page body')
    })
    await request(app).get('/page')
    await cache.settled()
    await delay(1100)
    const plain = await request(app).get('/page')
    assert.equal(plain.status, 200, 'an unconditional request never gets a 304')
    assert.equal(plain.text, 'page body')
  })
})

forEachExpress('Range from a stored 200 (RFC 9110 §14)', (express) => {
  it('206 for one satisfiable range, 416 for an unsatisfiable one, 200 for several', async (t) => {
    const cache = responseCache({ ...quiet, store: new MemoryStore() })
    t.after(() => cache.close())
    const app = express()
    app.use(cache)
    app.get('/r', (_req, res) => {
      res.type('text').send('0123456789')
    })
    await request(app).get('/r')
    await cache.settled()
    const part = await request(app).get('/r').set('range', 'bytes=2-5')
    assert.equal(part.status, 206)
    assert.equal(part.text, '2345')
    assert.equal(part.headers['content-range'], 'bytes 2-5/10')
    assert.equal(part.headers['x-cache'], 'HIT')
    const none = await request(app).get('/r').set('range', 'bytes=50-60')
    assert.equal(none.status, 416)
    assert.equal(none.headers['content-range'], 'bytes */10')
    const several = await request(app).get('/r').set('range', 'bytes=0-1,4-5')
    assert.equal(several.status, 200)
    assert.equal(several.text, '0123456789')
  })
})
