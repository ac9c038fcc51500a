/**
 * The in-process hot tier (`hotCache`): answers repeated requests without a store round trip, within
 * min(hotCache.ttl, freshness), with the same HTTP rules as store hits, and obeys invalidations.
 */
import assert from 'node:assert/strict'
import { it } from 'node:test'
import pino from 'pino'
import request from 'supertest'
import {
  MemcachedStore,
  MemoryStore,
  type ResponseCache,
  type ResponseCacheOptions,
  responseCache,
} from '../../src/index.js'
import { delay } from '../helpers/app.js'
import { forEachExpress } from '../helpers/express.js'
import { memcachedForFile } from '../helpers/memcached-file.js'
import { mount, warm } from '../helpers/mount.js'
import { DelegatingStore } from '../helpers/store.js'

const mc = memcachedForFile()

/**
 * Delegates to a store and counts the reads of entries. Reads of the invalidation records and of the
 * fleet's generation key (`:inv`) are left out: the generation is polled on a timer.
 */
class CountingStore extends DelegatingStore {
  entryGets = 0
  override get(key: string) {
    if (!key.includes(':inv')) this.entryGets++
    return this.inner.get(key)
  }
}

/** A MemoryStore whose reads of invalidation records take `slowMs`. */
class SlowRecordReads extends MemoryStore {
  slowMs = 0
  override async get(key: string) {
    if (this.slowMs > 0 && key.includes(':inv:')) await delay(this.slowMs)
    return super.get(key)
  }
}

type Kind = 'memcached' | 'memory'
const KINDS: readonly Kind[] = ['memcached', 'memory']
let counter = 0

function hotCache(
  kind: Kind,
  options: ResponseCacheOptions = {},
): { cache: ResponseCache; store: CountingStore } {
  const inner =
    kind === 'memcached'
      ? new MemcachedStore({ servers: mc.address, timeout: '1s' })
      : new MemoryStore()
  const store = new CountingStore(inner)
  const cache = responseCache({
    store,
    prefix: `hot${process.pid}x${++counter}`,
    logger: pino({ level: 'silent' }),
    hotCache: true,
    // A loaded runner must not turn a store read into a fail-open miss.
    timeout: '1s',
    ...options,
  })
  return { cache, store }
}

forEachExpress('hot tier', (express) => {
  for (const kind of KINDS) {
    it(`answers repeated requests without reading the store (${kind})`, async (t) => {
      // A long hot lifetime: no refresh-ahead re-read comes due during the test, however slow.
      const { cache, store } = hotCache(kind, { hotCache: { ttl: '60s' } })
      t.after(() => cache.close())
      const { app, calls } = mount(express, cache, (app, count) => {
        app.get('/hot', (_req, res) => {
          res.set('x-origin', 'yes').send(`hot ${count()}`)
        })
      })
      const warmed = await warm(app, cache, '/hot')
      const gets = store.entryGets
      const hitsBefore = cache.stats().hot.hits
      for (let i = 0; i < 20; i++) {
        const r = await request(app).get('/hot')
        assert.equal(r.headers['x-cache'], 'HIT')
        assert.equal(r.text, warmed.text)
        assert.equal(r.headers['x-origin'], 'yes')
        // Age and Cache-Status as on any hit (RFC 9111 §5.1, RFC 9211).
        assert.match(String(r.headers.age), /^\d+$/)
        assert.match(String(r.headers['cache-status']), /^express-ft-cache; hit; ttl=\d+$/)
        assert.equal(r.headers['content-length'], String(Buffer.byteLength(warmed.text)))
      }
      assert.equal(store.entryGets, gets, 'no entry read reached the store')
      assert.equal(cache.stats().hot.hits - hitsBefore, 20)
      assert.equal(calls(), 1)
      assert.equal(cache.stats().hot.entries, 1)
      assert.ok(cache.stats().hot.bytes > 0)
    })
  }

  it('keeps an entry at most hotCache.ttl, then reads the store again', async (t) => {
    const { cache, store } = hotCache('memcached', { hotCache: { ttl: '300ms' }, ttl: 60 })
    t.after(() => cache.close())
    const { app, calls } = mount(express, cache, (app, count) => {
      app.get('/short', (_req, res) => {
        res.send(`short ${count()}`)
      })
    })
    await warm(app, cache, '/short')
    const gets = store.entryGets
    assert.equal((await request(app).get('/short')).headers['x-cache'], 'HIT')
    assert.equal(store.entryGets, gets)
    await delay(450)
    const r = await request(app).get('/short')
    assert.equal(r.headers['x-cache'], 'HIT')
    assert.ok(store.entryGets > gets, 'past hotCache.ttl the store answers')
    const again = store.entryGets
    assert.equal((await request(app).get('/short')).headers['x-cache'], 'HIT')
    assert.equal(store.entryGets, again, 'and the hot tier holds it again')
    assert.equal(calls(), 1)
  })

  it('refresh-ahead: past half of hotCache.ttl, one hit re-reads the store in the background', async (t) => {
    const { cache, store } = hotCache('memcached', { hotCache: { ttl: '1s' }, ttl: 60 })
    t.after(() => cache.close())
    const { app, calls } = mount(express, cache, (app, count) => {
      app.get('/busy', (_req, res) => {
        res.send(`busy ${count()}`)
      })
    })
    await warm(app, cache, '/busy')
    const gets = store.entryGets
    const held = Date.now()
    await delay(600)
    // Past half its hot lifetime: served from the tier at once, and one re-read goes out.
    for (let i = 0; i < 3; i++) {
      const r = await request(app).get('/busy')
      assert.equal(r.headers['x-cache'], 'HIT')
      assert.equal(r.text, 'busy 1')
    }
    await cache.settled()
    assert.equal(store.entryGets - gets, 1, 'one background re-read for the three hits')
    assert.ok(cache.stats().hot.hits >= 3)
    // Past the first copy's lifetime, the re-read copy answers: no request paid a round trip.
    await delay(Math.max(0, held + 1200 - Date.now()))
    const hotHits = cache.stats().hot.hits
    const r = await request(app).get('/busy')
    assert.equal(r.headers['x-cache'], 'HIT')
    if (Date.now() - held < 1500)
      assert.equal(cache.stats().hot.hits - hotHits, 1, 'served by the re-read copy')
    assert.equal(calls(), 1)
  })

  it('refresh-ahead skips a copy hit only now and then: it expires and the store answers', async (t) => {
    const { cache, store } = hotCache('memcached', { hotCache: { ttl: '1s' }, ttl: 60 })
    t.after(() => cache.close())
    const { app } = mount(express, cache, (app, count) => {
      app.get('/cool', (_req, res) => {
        res.send(`cool ${count()}`)
      })
    })
    await warm(app, cache, '/cool') // its second request is the copy's first hit
    const gets = store.entryGets
    const held = Date.now()
    await delay(600)
    assert.equal((await request(app).get('/cool')).headers['x-cache'], 'HIT')
    await cache.settled()
    assert.equal(store.entryGets, gets, 'two hits: not worth a re-read')
    await delay(Math.max(0, held + 1100 - Date.now()))
    assert.equal((await request(app).get('/cool')).headers['x-cache'], 'HIT')
    assert.equal(store.entryGets - gets, 1, 'past hotCache.ttl the store answers')
  })

  it('refresh-ahead never outlives freshness: a copy near its staleAt is not re-read', async (t) => {
    const { cache, store } = hotCache('memcached', { hotCache: { ttl: '60s' }, ttl: 1, grace: 60 })
    t.after(() => cache.close())
    const { app } = mount(express, cache, (app, count) => {
      app.get('/ending', (_req, res) => {
        res.send(`ending ${count()}`)
      })
    })
    await warm(app, cache, '/ending')
    const gets = store.entryGets
    await delay(700)
    assert.equal((await request(app).get('/ending')).headers['x-cache'], 'HIT')
    await cache.settled()
    assert.equal(
      store.entryGets,
      gets,
      'freshness, not hotCache.ttl, ends this copy: nothing to re-read',
    )
  })

  it('keeps an entry at most its freshness: a stale entry always goes through the store', async (t) => {
    const { cache, store } = hotCache('memcached', {
      hotCache: { ttl: 60 },
      ttl: 1,
      grace: 60,
    })
    t.after(() => cache.close())
    const { app, calls } = mount(express, cache, (app, count) => {
      app.get('/fresh', (_req, res) => {
        res.send(`fresh ${count()}`)
      })
    })
    await warm(app, cache, '/fresh')
    const gets = store.entryGets
    assert.equal((await request(app).get('/fresh')).headers['x-cache'], 'HIT')
    assert.equal(store.entryGets, gets)
    await delay(1100)
    const r = await request(app).get('/fresh')
    assert.ok(store.entryGets > gets, 'the stale entry is read from the store')
    assert.notEqual(r.headers['x-cache'], 'HIT', 'never a HIT past its freshness')
    await cache.settled()
    assert.equal(calls(), 2, 'one regeneration')
  })

  it('keeps Vary variants apart', async (t) => {
    const { cache, store } = hotCache('memcached')
    t.after(() => cache.close())
    const { app } = mount(express, cache, (app, count) => {
      app.get('/greet', (req, res) => {
        const lang = req.get('accept-language') ?? 'en'
        res.vary('accept-language').send(`${lang === 'fr' ? 'bonjour' : 'hello'} ${count()}`)
      })
    })
    const en = await warm(app, cache, '/greet', { 'accept-language': 'en' })
    const fr = await warm(app, cache, '/greet', { 'accept-language': 'fr' })
    assert.match(en.text, /^hello/)
    assert.match(fr.text, /^bonjour/)
    const gets = store.entryGets
    for (let i = 0; i < 6; i++) {
      const lang = i % 2 === 0 ? 'en' : 'fr'
      const r = await request(app).get('/greet').set('accept-language', lang)
      assert.equal(r.headers['x-cache'], 'HIT')
      assert.equal(r.text, lang === 'en' ? en.text : fr.text)
    }
    assert.equal(store.entryGets, gets)
    assert.equal(cache.stats().hot.entries, 2)
  })

  it('answers Authorization and Cookie requests only from public entries', async (t) => {
    const { cache, store } = hotCache('memcached')
    t.after(() => cache.close())
    const { app } = mount(express, cache, (app, count) => {
      app.get('/plain', (req, res) => {
        res.send(`plain ${req.get('authorization') ?? req.get('cookie') ?? 'anonymous'} ${count()}`)
      })
      app.get('/public', (_req, res) => {
        res.set('cache-control', 'public, max-age=60').send(`public ${count()}`)
      })
    })
    const plain = await warm(app, cache, '/plain')
    const pub = await warm(app, cache, '/public')
    for (const credential of [{ authorization: 'Bearer x' }, { cookie: 'sid=abc' }]) {
      const r = await request(app).get('/plain').set(credential)
      assert.equal(r.headers['x-cache'], 'BYPASS', JSON.stringify(credential))
      assert.notEqual(r.text, plain.text)
      const gets = store.entryGets
      const s = await request(app).get('/public').set(credential)
      assert.equal(s.headers['x-cache'], 'HIT')
      assert.equal(s.text, pub.text)
      assert.equal(store.entryGets, gets, 'a public entry answers from the hot tier')
    }
    assert.equal((await request(app).get('/plain')).text, plain.text, 'nothing leaked back')
  })

  it('answers conditional requests with 304, and HEAD without a body', async (t) => {
    const { cache, store } = hotCache('memcached')
    t.after(() => cache.close())
    const { app } = mount(express, cache, (app, count) => {
      app.get('/tagged', (_req, res) => {
        count()
        res.set('etag', '"v1"').set('last-modified', 'Mon, 01 Jan 2024 00:00:00 GMT').send('body')
      })
    })
    await warm(app, cache, '/tagged')
    const gets = store.entryGets
    const inm = await request(app).get('/tagged').set('if-none-match', '"v1"')
    assert.equal(inm.status, 304)
    assert.equal(inm.headers['x-cache'], 'HIT')
    assert.equal(inm.headers.etag, '"v1"')
    assert.equal(inm.text, '')
    const ims = await request(app)
      .get('/tagged')
      .set('if-modified-since', 'Tue, 02 Jan 2024 00:00:00 GMT')
    assert.equal(ims.status, 304)
    const other = await request(app).get('/tagged').set('if-none-match', '"v0"')
    assert.equal(other.status, 200)
    assert.equal(other.text, 'body')
    const head = await request(app).head('/tagged')
    assert.equal(head.status, 200)
    assert.equal(head.headers['x-cache'], 'HIT')
    assert.equal(head.headers['content-length'], '4')
    assert.equal(head.text, undefined)
    assert.equal(store.entryGets, gets, 'all answered from the hot tier')
  })

  for (const kind of KINDS) {
    it(`a local invalidation evicts at once: API, unsafe method, soft (${kind})`, async (t) => {
      const { cache } = hotCache(kind)
      t.after(() => cache.close())
      const { app, calls } = mount(express, cache, (app, count) => {
        app.get('/doc', cache.route({ tags: ['docs'] }), (_req, res) => {
          res.send(`doc ${count()}`)
        })
        app.post('/doc', (_req, res) => {
          res.send('saved')
        })
      })
      await warm(app, cache, '/doc')
      await cache.invalidate('/doc')
      assert.equal((await request(app).get('/doc')).headers['x-cache'], 'MISS', 'API')
      await warm(app, cache, '/doc')

      await request(app).post('/doc')
      await cache.settled()
      assert.equal((await request(app).get('/doc')).headers['x-cache'], 'MISS', 'POST')
      await warm(app, cache, '/doc')

      await cache.invalidateTags('docs', { soft: true })
      const soft = await request(app).get('/doc')
      assert.notEqual(soft.headers['x-cache'], 'HIT', 'soft: no longer fresh')
      await cache.settled()
      await warm(app, cache, '/doc')
      await cache.invalidateAll()
      assert.equal((await request(app).get('/doc')).headers['x-cache'], 'MISS', 'all')
      assert.ok(calls() >= 5)
    })
  }

  for (const [slow, hot] of [
    [false, true],
    [true, true],
    [true, false],
  ] as const) {
    const bug = slow ? {} : {}
    const name = `${slow ? 'slow' : 'fast'} record reads, hotCache ${hot}`
    it(`a GET right after a successful POST (no wait) is a MISS (${name})`, bug, async (t) => {
      const store = new SlowRecordReads()
      const cache = responseCache({
        store,
        prefix: `hot${process.pid}x${++counter}`,
        logger: pino({ level: 'silent' }),
        hotCache: hot,
        timeout: '1s',
      })
      t.after(() => cache.close())
      const { app } = mount(express, cache, (app, count) => {
        app.get('/cart', (_req, res) => {
          res.send(`cart ${count()}`)
        })
        app.post('/cart', (_req, res) => {
          res.send('added')
        })
      })
      for (let i = 0; i < 3; i++) {
        await warm(app, cache, '/cart')
        // Reads of records take a while now, like a loaded memcached (the ones judging the entry
        // are memoised already).
        store.slowMs = slow ? 100 : 0
        await request(app).post('/cart')
        const r = await request(app).get('/cart')
        store.slowMs = 0
        assert.equal(r.headers['x-cache'], 'MISS', `round ${i}: read your own write`)
        await cache.settled()
      }
    })
  }

  it('respects maxBytes (stats().hot.bytes <= maxBytes) and skips an entry larger than it', async (t) => {
    const maxBytes = 8 * 1024
    const { cache } = hotCache('memcached', { hotCache: { maxBytes } })
    t.after(() => cache.close())
    const { app } = mount(express, cache, (app) => {
      app.get('/kb/:n', (req, res) => {
        res.type('text').send(`${req.params.n}:${'x'.repeat(1000)}`)
      })
      app.get('/big', (_req, res) => {
        res.type('text').send('y'.repeat(maxBytes * 2))
      })
    })
    for (let n = 0; n < 30; n++) {
      await warm(app, cache, `/kb/${n}`)
      const { hot } = cache.stats()
      assert.ok(hot.bytes <= maxBytes, `${hot.bytes} <= ${maxBytes}`)
    }
    const { entries } = cache.stats().hot
    assert.ok(entries > 0 && entries < 30, `${entries} entries kept`)
    await warm(app, cache, '/big')
    assert.ok(cache.stats().hot.bytes <= maxBytes)
    // The most recent small entries are still hot; the oldest were evicted (LRU).
    assert.equal((await request(app).get('/kb/29')).headers['x-cache'], 'HIT')
  })
})
