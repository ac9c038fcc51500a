/**
 * RFC 9111 shared-cache behaviour, through supertest against a real memcached, including the
 * attacker's view: nothing private is ever served to another client.
 */
import assert from 'node:assert/strict'
import { after, before, it } from 'node:test'
import { gunzipSync } from 'node:zlib'
import compression from 'compression'
import type { Express } from 'express'
import request from 'supertest'
import type { ResponseCache, ResponseCacheOptions } from '../../src/index.js'
import { cacheOn, delay } from '../helpers/app.js'
import { type ExpressFactory, forEachExpress } from '../helpers/express.js'
import { type MemcachedProcess, startMemcached } from '../helpers/memcached.js'

let mc: MemcachedProcess
before(async () => {
  mc = await startMemcached()
})
after(async () => {
  await mc.stop()
})

/** GET twice (waiting for the write-back in between); returns both replies. */
async function twice(
  app: Express,
  cache: ResponseCache,
  path: string,
  headers: Record<string, string> = {},
) {
  const first = await request(app).get(path).set(headers)
  await cache.settled()
  const second = await request(app).get(path).set(headers)
  return [first, second] as const
}

function setup(
  express: ExpressFactory,
  options: ResponseCacheOptions,
  routes: (app: Express, cache: ResponseCache, count: () => number) => void,
  t: { after(fn: () => unknown): void },
  /** Middleware mounted before the cache. */
  before?: (app: Express) => void,
) {
  const cache = cacheOn(mc, options)
  t.after(() => cache.close())
  const app = express()
  let calls = 0
  before?.(app)
  app.use(cache)
  routes(app, cache, () => ++calls)
  return { app, cache, calls: () => calls }
}

forEachExpress('what gets stored (RFC 9111 §3, §5.2.2)', (express) => {
  it('never stores or replays Set-Cookie; with stripSetCookie the stored copy has no cookie', async (t) => {
    const { app, cache } = setup(
      express,
      {},
      (app, cache, count) => {
        app.get('/login', (_req, res) => {
          res.cookie('session', `secret-${count()}`).send('welcome')
        })
        app.get('/banner', cache.route({ stripSetCookie: true }), (_req, res) => {
          res.cookie('seen', `visitor-${count()}`).send('banner')
        })
      },
      t,
    )
    const [a, b] = await twice(app, cache, '/login')
    assert.notDeepEqual(a.headers['set-cookie'], b.headers['set-cookie'])
    assert.notEqual(b.headers['x-cache'], 'HIT')
    const [c, d] = await twice(app, cache, '/banner')
    assert.ok(c.headers['set-cookie'], 'the rendering client still gets its cookie')
    assert.equal(d.headers['x-cache'], 'HIT')
    assert.equal(d.headers['set-cookie'], undefined, 'no cookie replayed to the next visitor')
    assert.equal(d.text, 'banner')
  })

  it('does not store no-store, private, Vary: *, 206 or 304 responses; validates no-cache at every use', async (t) => {
    const rendered = new Map<string, number>()
    const { app, cache } = setup(
      express,
      {},
      (app) => {
        const respond = (path: string, fn: (res: import('express').Response) => void) =>
          app.get(path, (_req, res) => {
            rendered.set(path, (rendered.get(path) ?? 0) + 1)
            fn(res)
          })
        // The control: the same app stores a plain response.
        respond('/plain', (res) => res.send('x'))
        respond('/no-store', (res) => res.set('cache-control', 'no-store').send('x'))
        respond('/private', (res) => res.set('cache-control', 'private, max-age=60').send('x'))
        respond('/no-cache', (res) => res.set('cache-control', 'no-cache').send('x'))
        respond('/vary-star', (res) => res.set('vary', '*').send('x'))
        respond('/partial', (res) => res.status(206).set('content-range', 'bytes 0-0/10').send('x'))
        respond('/not-modified', (res) => res.status(304).end())
      },
      t,
    )
    const [, control] = await twice(app, cache, '/plain')
    assert.equal(control.headers['x-cache'], 'HIT', 'a storable response is a HIT')
    for (const path of ['/no-store', '/private', '/vary-star', '/partial', '/not-modified']) {
      const [, second] = await twice(app, cache, path)
      assert.equal(second.headers['x-cache'], 'MISS', path)
      assert.equal(rendered.get(path), 2, `${path}: the handler rendered both`)
    }
    // RFC 9111 §5.2.2.4: no-cache may be stored, but never reused without validation. Express's
    // ETag makes it validatable: the handler answers the second request's condition.
    const [, second] = await twice(app, cache, '/no-cache')
    assert.equal(second.headers['x-cache'], 'REVALIDATED')
    assert.equal(rendered.get('/no-cache'), 2, '/no-cache: the handler rendered both')
    assert.equal(rendered.get('/plain'), 1)
  })

  it('stores private="field" and no-cache="field" responses without those fields', async (t) => {
    const { app, cache } = setup(
      express,
      {},
      (app) => {
        app.get('/partly', (_req, res) => {
          res.set('cache-control', 'max-age=60, private="x-user", no-cache="x-debug"')
          res
            .set('x-user', 'alice')
            .set('x-debug', 'trace')
            .set('x-public', 'ok')
            .send('shared part')
        })
      },
      t,
    )
    const [first, second] = await twice(app, cache, '/partly')
    assert.equal(first.headers['x-user'], 'alice')
    assert.equal(second.headers['x-cache'], 'HIT')
    assert.equal(second.headers['x-user'], undefined)
    assert.equal(second.headers['x-debug'], undefined)
    assert.equal(second.headers['x-public'], 'ok')
  })

  it('does not answer or share for Authorization requests unless the response is public', async (t) => {
    const { app, cache } = setup(
      express,
      {},
      (app, _cache, count) => {
        app.get('/account', (req, res) => {
          count()
          res.send(`account of ${req.headers.authorization ?? 'anonymous'}`)
        })
        app.get('/catalog', (_req, res) => {
          count()
          res.set('cache-control', 'public, max-age=60').send('catalog')
        })
      },
      t,
    )
    await request(app).get('/account')
    await cache.settled()
    const authed = await request(app).get('/account').set('authorization', 'Bearer alice')
    assert.equal(
      authed.text,
      'account of Bearer alice',
      'a stored response never answers an authorized request',
    )
    assert.equal(authed.headers['x-cache'], 'BYPASS')
    await cache.settled()
    const anon = await request(app).get('/account')
    assert.equal(anon.headers['x-cache'], 'HIT', 'the anonymous copy is still the stored one')
    assert.equal(anon.text, 'account of anonymous', "alice's response was not stored for others")
    await request(app).get('/catalog').set('authorization', 'Bearer bob')
    await cache.settled()
    const shared = await request(app).get('/catalog')
    assert.equal(
      shared.headers['x-cache'],
      'HIT',
      'public responses to authorized requests may be shared',
    )
  })

  it('bypasses requests that carry a configured session cookie', async (t) => {
    const { app, cache } = setup(
      express,
      { sessionCookies: ['sid'] },
      (app, _cache, count) => {
        app.get('/home', (req, res) => {
          res.send(`home ${count()} ${req.headers.cookie ?? ''}`)
        })
      },
      t,
    )
    await twice(app, cache, '/home')
    const withSession = await request(app).get('/home').set('cookie', 'theme=dark; sid=abc')
    assert.equal(withSession.headers['x-cache'], 'BYPASS')
    assert.match(withSession.text, /sid=abc/)
    // Analytics cookies are ignored (ignoredCookies): such a request is answered from the cache.
    const other = await request(app).get('/home').set('cookie', '_ga=GA1.2.3; _gid=x')
    assert.equal(other.headers['x-cache'], 'HIT')
  })
})

forEachExpress('freshness and stale extensions (RFC 9111 §4.2, RFC 5861)', (express) => {
  it('takes s-maxage over max-age over the configured ttl, and passes Cache-Control unchanged', async (t) => {
    const { app, cache } = setup(
      express,
      { ttl: 3600, grace: 0, staleIfError: 0 },
      (app, cache) => {
        // s-maxage (1 s) beats max-age (600 s) and ttl (3600 s).
        app.get('/short', (_req, res) => {
          res.set('cache-control', 'public, max-age=600, s-maxage=1').send('short')
        })
        // max-age beats ttl, shorter...
        app.get('/max-age', (_req, res) => {
          res.set('cache-control', 'max-age=1').send('max-age')
        })
        // ...and longer.
        app.get('/longer', cache.route({ ttl: 1 }), (_req, res) => {
          res.set('cache-control', 'max-age=600').send('longer')
        })
        // Without either, ttl rules.
        app.get('/ttl', cache.route({ ttl: 1 }), (_req, res) => {
          res.send('ttl')
        })
      },
      t,
    )
    const [first, second] = await twice(app, cache, '/short')
    assert.equal(first.headers['cache-control'], 'public, max-age=600, s-maxage=1')
    assert.equal(second.headers['cache-control'], 'public, max-age=600, s-maxage=1')
    assert.equal(second.headers['x-cache'], 'HIT')
    for (const path of ['/max-age', '/longer', '/ttl']) {
      const [, hit] = await twice(app, cache, path)
      assert.equal(hit.headers['x-cache'], 'HIT', path)
    }
    await delay(2100)
    // s-maxage implies proxy-revalidate: no stale serving. Express's ETag lets the cache revalidate
    // (RFC 9111 §4.3): the handler answers 304 and the stored body is sent, not a HIT.
    const short = await request(app).get('/short')
    assert.equal(short.headers['x-cache'], 'REVALIDATED')
    assert.equal(short.text, 'short')
    assert.equal((await request(app).get('/max-age')).headers['x-cache'], 'REVALIDATED')
    assert.equal((await request(app).get('/ttl')).headers['x-cache'], 'REVALIDATED')
    const longer = await request(app).get('/longer')
    assert.equal(longer.headers['x-cache'], 'HIT', 'max-age=600 outlives the route ttl of 1 s')
  })

  it('with responseTtl: false a response may only shorten the ttl', async (t) => {
    const { app, cache } = setup(
      express,
      { ttl: 1, grace: 0, staleIfError: 0, responseTtl: false },
      (app, cache) => {
        app.get('/long', (_req, res) => {
          res.set('cache-control', 'max-age=3600').send('long')
        })
        app.get('/shorter', cache.route({ ttl: 3600 }), (_req, res) => {
          res.set('cache-control', 'max-age=1').send('shorter')
        })
        // The control: the same response with responseTtl on keeps its own lifetime.
        app.get('/own', cache.route({ responseTtl: true }), (_req, res) => {
          res.set('cache-control', 'max-age=3600').send('own')
        })
      },
      t,
    )
    for (const path of ['/long', '/shorter', '/own']) {
      const [first, second] = await twice(app, cache, path)
      assert.equal(first.headers['x-cache'], 'MISS', path)
      assert.equal(second.headers['x-cache'], 'HIT', path)
    }
    await delay(2100)
    // Stale after the 1 s ttl (revalidated through Express's ETag, not a HIT): the response's
    // longer lifetime did not lengthen it.
    assert.equal(
      (await request(app).get('/long')).headers['x-cache'],
      'REVALIDATED',
      'max-age=3600 did not lengthen the 1 s ttl',
    )
    assert.equal(
      (await request(app).get('/shorter')).headers['x-cache'],
      'REVALIDATED',
      'max-age=1 shortened the 3600 s ttl',
    )
    assert.equal((await request(app).get('/own')).headers['x-cache'], 'HIT')
  })

  it('uses stale-while-revalidate from the response as the grace window', async (t) => {
    const { app, cache } = setup(
      express,
      { grace: 0, staleIfError: 0 },
      (app, _cache, count) => {
        app.get('/swr', async (_req, res) => {
          const n = count()
          if (n > 1) await delay(300)
          res.set('cache-control', 'max-age=1, stale-while-revalidate=30').send(`swr ${n}`)
        })
      },
      t,
    )
    await twice(app, cache, '/swr')
    await delay(1100)
    const [regen, stale] = await Promise.all([
      request(app).get('/swr'),
      delay(30).then(() => request(app).get('/swr')),
    ])
    assert.equal(regen.text, 'swr 2')
    assert.equal(stale.headers['x-cache'], 'STALE')
    assert.equal(stale.text, 'swr 1')
  })

  it('uses stale-if-error from the response when a regeneration fails', async (t) => {
    let broken = false
    const { app, cache } = setup(
      express,
      { grace: 0, staleIfError: 0 },
      (app) => {
        app.get('/sie', (_req, res) => {
          if (broken) res.status(502).send('bad gateway')
          else res.set('cache-control', 'max-age=1, stale-if-error=60').send('good')
        })
      },
      t,
    )
    await twice(app, cache, '/sie')
    await delay(1100)
    broken = true
    const r = await request(app).get('/sie')
    assert.equal(r.status, 200)
    assert.equal(r.text, 'good')
    assert.equal(r.headers['x-cache'], 'STALE')
    assert.match(r.headers['cache-status'] ?? '', /stale-if-error/)
  })

  it('sends Age and keeps Date on cached responses; debugHeaders: false hides X-Cache', async (t) => {
    const { app, cache } = setup(
      express,
      { debugHeaders: false },
      (app) => {
        app.get('/dated', (_req, res) => {
          res.set('date', 'Tue, 24 Nov 2026 10:00:00 GMT').send('dated')
        })
      },
      t,
    )
    await twice(app, cache, '/dated')
    await delay(1100)
    const hit = await request(app).get('/dated')
    assert.equal(hit.headers.date, 'Tue, 24 Nov 2026 10:00:00 GMT')
    assert.ok(Number(hit.headers.age) >= 1)
    assert.equal(hit.headers['x-cache'], undefined)
    assert.equal(hit.headers['cache-status'], undefined)
  })

  it('never stores hop-by-hop fields or fields named in Connection', async (t) => {
    const { app, cache } = setup(
      express,
      {},
      (app) => {
        app.get('/hop', (_req, res) => {
          res
            .set('connection', 'x-hop')
            .set('x-hop', 'one-connection')
            .set('proxy-authenticate', 'Basic')
            .set('x-kept', 'yes')
            .send('hop')
        })
      },
      t,
    )
    const [, second] = await twice(app, cache, '/hop')
    assert.equal(second.headers['x-cache'], 'HIT')
    assert.equal(second.headers['x-hop'], undefined)
    assert.equal(second.headers['proxy-authenticate'], undefined)
    assert.equal(second.headers['x-kept'], 'yes')
  })
})

forEachExpress('Vary (RFC 9111 §4.1)', (express) => {
  it("honours the response's own Vary with normalised header values", async (t) => {
    const { app, cache, calls } = setup(
      express,
      {},
      (app, _cache, count) => {
        app.get('/greeting', (req, res) => {
          count()
          res.set('vary', 'Accept-Language')
          res.send(String(req.headers['accept-language']).startsWith('fr') ? 'bonjour' : 'hello')
        })
      },
      t,
    )
    const [en1, en2] = await twice(app, cache, '/greeting', { 'accept-language': 'en, fr;q=0.5' })
    assert.equal(en1.text, 'hello')
    assert.equal(en2.headers['x-cache'], 'HIT')
    const fr = await request(app).get('/greeting').set('accept-language', 'fr')
    assert.equal(fr.text, 'bonjour', 'another variant, never the English one')
    await cache.settled()
    const reordered = await request(app).get('/greeting').set('accept-language', 'FR;q=0.5 ,EN')
    assert.equal(reordered.headers['x-cache'], 'HIT', 'order, case and whitespace do not matter')
    assert.equal(reordered.text, 'hello')
    assert.equal((await request(app).get('/greeting').set('accept-language', 'fr')).text, 'bonjour')
    assert.equal(calls(), 2)
  })

  it('keys on configured vary headers the app does not declare', async (t) => {
    const { app, cache } = setup(
      express,
      { vary: ['x-country'] },
      (app) => {
        app.get('/prices', (req, res) => {
          res.send(`prices for ${req.headers['x-country'] ?? 'default'}`)
        })
      },
      t,
    )
    await twice(app, cache, '/prices', { 'x-country': 'de' })
    const us = await request(app).get('/prices').set('x-country', 'us')
    assert.equal(us.text, 'prices for us')
    const de = await request(app).get('/prices').set('x-country', 'de')
    assert.equal(de.headers['x-cache'], 'HIT')
    assert.equal(de.text, 'prices for de')
  })
})

forEachExpress('conditional requests (RFC 9110 §13, RFC 9111 §4.3)', (express) => {
  it('answers If-None-Match and If-Modified-Since with 304 from the cache', async (t) => {
    const { app, cache } = setup(
      express,
      {},
      (app) => {
        app.get('/doc', (_req, res) => {
          res
            .set('etag', '"v1"')
            .set('last-modified', 'Tue, 24 Nov 2026 10:00:00 GMT')
            .send('document')
        })
      },
      t,
    )
    await twice(app, cache, '/doc')
    const inm = await request(app).get('/doc').set('if-none-match', 'W/"v1", "other"')
    assert.equal(inm.status, 304)
    assert.equal(inm.headers.etag, '"v1"')
    assert.equal(inm.headers['x-cache'], 'HIT')
    const ims = await request(app)
      .get('/doc')
      .set('if-modified-since', 'Wed, 25 Nov 2026 10:00:00 GMT')
    assert.equal(ims.status, 304)
    const changed = await request(app).get('/doc').set('if-none-match', '"v0"')
    assert.equal(changed.status, 200)
    assert.equal(changed.text, 'document')
  })

  it('stores the full 200 when the first request on a cold key is conditional', async (t) => {
    const { app, cache, calls } = setup(
      express,
      {},
      (app, _cache, count) => {
        app.get('/cold', (_req, res) => {
          count()
          res.set('etag', '"c1"').send('cold body')
        })
      },
      t,
    )
    const conditional = await request(app).get('/cold').set('if-none-match', '"c1"')
    assert.equal(conditional.status, 304)
    await cache.settled()
    const plain = await request(app).get('/cold')
    assert.equal(plain.status, 200)
    assert.equal(plain.text, 'cold body', 'a client without a condition never gets an empty 304')
    assert.equal(plain.headers['x-cache'], 'HIT')
    assert.equal(calls(), 1)
  })
})

forEachExpress('request directives (RFC 9111 §5.2.1)', (express) => {
  it('ignores client no-cache unless honorClientNoCache; only-if-cached answers 504 on a miss', async (t) => {
    for (const honour of [false, true]) {
      const { app, cache, calls } = setup(
        express,
        { honorClientNoCache: honour },
        (app, _cache, count) => {
          app.get('/n', (_req, res) => {
            res.send(`n ${count()}`)
          })
        },
        t,
      )
      await twice(app, cache, '/n')
      for (const headers of [
        { 'cache-control': 'no-cache' },
        { 'cache-control': 'max-age=0' },
        { pragma: 'no-cache' },
      ]) {
        await request(app).get('/n').set(headers)
        await cache.settled()
      }
      assert.equal(calls(), honour ? 4 : 1)
      const onlyCached = await request(app).get('/missing').set('cache-control', 'only-if-cached')
      assert.equal(onlyCached.status, 504)
    }
  })
})

forEachExpress('invalidation, hit-for-miss, hosts and keys', (express) => {
  it('a successful POST invalidates the GET of its URL and of Location (RFC 9111 §4.4)', async (t) => {
    const { app, cache } = setup(
      express,
      {},
      (app, _cache, count) => {
        app.get('/posts', (_req, res) => {
          res.send(`list ${count()}`)
        })
        app.get('/posts/7', (_req, res) => {
          res.send(`post ${count()}`)
        })
        app.post('/posts', (_req, res) => {
          res.status(201).location('/posts/7').send('created')
        })
        app.get('/fail', (_req, res) => {
          res.send(`fail page ${count()}`)
        })
        app.post('/fail', (_req, res) => {
          res.status(500).location('/posts/7').send('no')
        })
      },
      t,
    )
    for (const path of ['/posts', '/posts/7', '/fail']) {
      const [, hit] = await twice(app, cache, path)
      assert.equal(hit.headers['x-cache'], 'HIT', `${path} is cached before the POSTs`)
    }
    // A failed POST invalidates nothing: not its URL, not its Location.
    assert.equal((await request(app).post('/fail')).status, 500)
    await cache.settled()
    for (const path of ['/fail', '/posts/7']) {
      assert.equal((await request(app).get(path)).headers['x-cache'], 'HIT', `${path} after a 500`)
    }
    assert.equal((await request(app).post('/posts')).status, 201)
    await cache.settled()
    const list = await request(app).get('/posts')
    assert.equal(list.headers['x-cache'], 'MISS')
    assert.notEqual(list.text, 'list 1', 'rendered again')
    assert.equal((await request(app).get('/posts/7')).headers['x-cache'], 'MISS')
    assert.equal((await request(app).get('/fail')).headers['x-cache'], 'HIT', 'other URLs stay')
  })

  it('remembers an uncacheable render (hit-for-miss): later requests go straight to the handler', async (t) => {
    const { app, cache, calls } = setup(
      express,
      {},
      (app, _cache, count) => {
        app.get('/personal', async (_req, res) => {
          count()
          await delay(200)
          res.set('cache-control', 'private').send('yours')
        })
      },
      t,
    )
    await request(app).get('/personal')
    await cache.settled()
    const started = Date.now()
    const replies = await Promise.all(
      Array.from({ length: 5 }, () => request(app).get('/personal')),
    )
    assert.ok(replies.every((r) => r.text === 'yours'))
    assert.ok(replies.every((r) => /hit-for-miss/.test(r.headers['cache-status'] ?? '')))
    assert.equal(calls(), 6)
    assert.ok(Date.now() - started < 5 * 200, 'they ran side by side, not one after another')
  })

  it('an untrusted X-Forwarded-Host can neither select nor poison an entry', async (t) => {
    const { app, cache, calls } = setup(
      express,
      {},
      (app, _cache, count) => {
        app.get('/where', (req, res) => {
          count()
          res.send(`host ${req.hostname}`)
        })
      },
      t,
    )
    const poisoned = await request(app)
      .get('/where')
      .set('host', 'shop.example')
      .set('x-forwarded-host', 'evil.example')
    assert.equal(poisoned.text, 'host shop.example')
    await cache.settled()
    // The attacker's request was stored under the real host, with the real host's body.
    const victim = await request(app).get('/where').set('host', 'shop.example')
    assert.equal(victim.headers['x-cache'], 'HIT')
    assert.equal(victim.text, 'host shop.example')
    // ...and the forwarded host selects nothing: the attacker gets the shop's entry too.
    const probe = await request(app)
      .get('/where')
      .set('host', 'shop.example')
      .set('x-forwarded-host', 'other.example')
    assert.equal(probe.headers['x-cache'], 'HIT')
    assert.equal(probe.text, 'host shop.example')
    const other = await request(app).get('/where').set('host', 'evil.example')
    assert.equal(other.text, 'host evil.example')
    assert.equal(other.headers['x-cache'], 'MISS')
    assert.equal(calls(), 2)
  })

  it('with trust proxy, the forwarded host is part of the key', async (t) => {
    const { app, cache, calls } = setup(
      express,
      {},
      (app, _cache, count) => {
        app.set('trust proxy', true)
        app.get('/tenant', (req, res) => {
          count()
          res.send(`tenant ${req.hostname}`)
        })
      },
      t,
    )
    const [, a] = await twice(app, cache, '/tenant', { 'x-forwarded-host': 'a.example' })
    assert.equal(a.headers['x-cache'], 'HIT')
    assert.equal(a.text, 'tenant a.example')
    const [b, b2] = await twice(app, cache, '/tenant', { 'x-forwarded-host': 'b.example' })
    assert.equal(b.headers['x-cache'], 'MISS')
    assert.equal(b.text, 'tenant b.example')
    assert.equal(b2.headers['x-cache'], 'HIT')
    assert.equal(b2.text, 'tenant b.example')
    const again = await request(app).get('/tenant').set('x-forwarded-host', 'a.example')
    assert.equal(again.text, 'tenant a.example')
    assert.equal(calls(), 2)
  })

  it('serves /p/Aa and /p/BB (a 32-bit hash collision pair) their own bodies', async (t) => {
    const { app, cache } = setup(
      express,
      {},
      (app) => {
        app.get('/p/:id', (req, res) => {
          res.send(`page ${req.params.id}`)
        })
      },
      t,
    )
    const [, aa] = await twice(app, cache, '/p/Aa')
    assert.equal(aa.headers['x-cache'], 'HIT')
    const bb = await request(app).get('/p/BB')
    assert.equal(bb.headers['x-cache'], 'MISS')
    assert.equal(bb.text, 'page BB')
    await cache.settled()
    for (const id of ['BB', 'Aa']) {
      const hit = await request(app).get(`/p/${id}`)
      assert.equal(hit.headers['x-cache'], 'HIT', id)
      assert.equal(hit.text, `page ${id}`)
    }
  })

  it('keys per user with the key option', async (t) => {
    const { app, cache, calls } = setup(
      express,
      {},
      (app, cache, count) => {
        app.get(
          '/dashboard',
          cache.route({ key: (req) => String(req.headers['x-user-id']) }),
          (req, res) => {
            count()
            res.send(`dashboard of ${req.headers['x-user-id']}`)
          },
        )
      },
      t,
    )
    const [, one] = await twice(app, cache, '/dashboard', { 'x-user-id': '1' })
    assert.equal(one.headers['x-cache'], 'HIT')
    assert.equal(one.text, 'dashboard of 1')
    const [two, two2] = await twice(app, cache, '/dashboard', { 'x-user-id': '2' })
    assert.equal(two.headers['x-cache'], 'MISS')
    assert.equal(two.text, 'dashboard of 2')
    assert.equal(two2.headers['x-cache'], 'HIT')
    assert.equal(two2.text, 'dashboard of 2')
    assert.equal(calls(), 2)
  })
})

forEachExpress('compression (both mount orders)', (express) => {
  for (const order of ['compression first', 'cache first'] as const) {
    it(`${order}: no client gets an encoding it did not ask for`, async (t) => {
      const cache = cacheOn(mc)
      t.after(() => cache.close())
      const app = express()
      if (order === 'compression first') {
        app.use(compression({ threshold: 0 }))
        app.use(cache)
      } else {
        app.use(cache)
        app.use(compression({ threshold: 0 }))
      }
      const text = 'compressible '.repeat(200)
      app.get('/text', (_req, res) => {
        res.type('text').send(text)
      })
      const ask = (encoding: string) =>
        request(app)
          .get('/text')
          .set('accept-encoding', encoding)
          .buffer(true)
          .parse((res, cb) => {
            const chunks: Buffer[] = []
            res.on('data', (c: Buffer) => chunks.push(c))
            res.on('end', () => cb(null, Buffer.concat(chunks)))
          })
      for (let round = 0; round < 2; round++) {
        for (const encoding of ['gzip', 'identity', 'gzip', 'identity']) {
          const r = await ask(encoding)
          await cache.settled()
          // superagent may already have gunzipped; decode only what is still gzip (magic 1f 8b).
          const raw = r.body as Buffer
          const body = raw[0] === 0x1f && raw[1] === 0x8b ? gunzipSync(raw) : raw
          assert.equal(body.toString(), text, `${order} round ${round} ${encoding}`)
          if (encoding === 'identity') {
            assert.equal(r.headers['content-encoding'], undefined, `${order} round ${round}`)
            assert.ok(!(raw[0] === 0x1f && raw[1] === 0x8b), 'identity client got gzip bytes')
          } else {
            assert.equal(r.headers['content-encoding'], 'gzip')
          }
        }
      }
      const hit = await ask('identity')
      assert.equal(hit.headers['x-cache'], 'HIT')
    })
  }
})

forEachExpress('review findings: late headers, schemes, conditions, buffers', (express) => {
  it('a private or Set-Cookie added inside writeHead by earlier middleware is never shared', async (t) => {
    const cache = cacheOn(mc)
    t.after(() => cache.close())
    const app = express()
    // What express-session and on-headers do: add fields at the moment the head is written.
    app.use((req, res, next) => {
      const writeHead = res.writeHead
      res.writeHead = function (this: typeof res, ...args: unknown[]) {
        const user = req.headers['x-user']
        if (user === 'alice') res.setHeader('cache-control', 'private')
        if (user === 'bob') res.setHeader('set-cookie', 'sid=bob')
        return writeHead.apply(this, args as never)
      } as typeof res.writeHead
      next()
    })
    app.use(cache)
    app.get('/account', (req, res) => {
      res.send(`account of ${req.headers['x-user'] ?? 'nobody'}`)
    })
    // One URL per case, so that each starts cold.
    for (const user of ['alice', 'bob']) {
      const path = `/account?case=${user}`
      await request(app).get(path).set('x-user', user)
      await cache.settled()
      const other = await request(app).get(path).set('x-user', 'carol')
      assert.equal(other.text, 'account of carol', `${user}'s page never reaches carol`)
      assert.equal(other.headers['x-cache'], 'MISS')
      await cache.settled()
      // The control: carol's page (nothing private) is stored and shared, so the cache is at work.
      const dave = await request(app).get(path).set('x-user', 'dave')
      assert.equal(dave.headers['x-cache'], 'HIT')
      assert.equal(dave.text, 'account of carol')
    }
  })

  it('http and https are separate entries on TLS sockets too (no X-Forwarded-Proto)', async (t) => {
    const { app, cache } = setup(
      express,
      {},
      (app) => {
        app.get('/', (req, res) => {
          if (req.protocol === 'http') res.redirect(301, `https://${req.hostname}/`)
          else res.send('secure home')
        })
      },
      t,
      // What a TLS socket says (Express reads req.protocol from it): set before the cache runs.
      (app) => {
        app.use((req, _res, next) => {
          if (req.get('x-test-tls') === '1')
            Object.defineProperty(req.socket, 'encrypted', { value: true, configurable: true })
          next()
        })
      },
    )
    // One Host for all (supertest's ports differ per call): the same raw request parts.
    const [, redirect] = await twice(app, cache, '/', { host: 'example.test' })
    assert.equal(redirect.status, 301)
    assert.equal(redirect.headers['x-cache'], 'HIT')
    const tls = await request(app).get('/').set({ host: 'example.test', 'x-test-tls': '1' })
    assert.equal(tls.status, 200, 'the cached redirect never answers a TLS request')
    assert.equal(tls.text, 'secure home')
  })

  it('http and https are separate entries', async (t) => {
    const { app, cache } = setup(
      express,
      {},
      (app) => {
        app.set('trust proxy', true)
        app.get('/', (req, res) => {
          if (req.protocol === 'http') res.redirect(301, `https://${req.hostname}/`)
          else res.send('secure home')
        })
      },
      t,
    )
    const [, redirect] = await twice(app, cache, '/', { 'x-forwarded-proto': 'http' })
    assert.equal(redirect.headers['x-cache'], 'HIT', 'the redirect is cached')
    assert.equal(redirect.status, 301)
    const https = await request(app).get('/').set('x-forwarded-proto', 'https')
    assert.equal(https.status, 200, 'the cached http→https redirect never answers https')
    assert.equal(https.text, 'secure home')
    assert.equal(https.headers['x-cache'], 'MISS')
    await cache.settled()
    const httpsHit = await request(app).get('/').set('x-forwarded-proto', 'https')
    assert.equal(httpsHit.headers['x-cache'], 'HIT')
    assert.equal(httpsHit.text, 'secure home')
    const http = await request(app).get('/').set('x-forwarded-proto', 'http')
    assert.equal(http.status, 301, 'and the https page never answers http')
    // Without the header the request is http (the socket is not TLS): the redirect's entry.
    const bare = await request(app).get('/')
    assert.equal(bare.status, 301)
    assert.equal(bare.headers['x-cache'], 'HIT')
    const httpsAgain = await request(app).get('/').set('x-forwarded-proto', 'https')
    assert.equal(
      httpsAgain.text,
      'secure home',
      'a bare http request did not change what https gets',
    )
  })

  it('answers a matching condition with 304 even when the response is not stored', async (t) => {
    const { app } = setup(
      express,
      { maxBodySize: 1000 },
      (app) => {
        app.get('/large', (_req, res) => {
          res.set('etag', '"L"').send('x'.repeat(5000))
        })
        app.get('/mine', (_req, res) => {
          res.set('etag', '"M"').set('cache-control', 'private').send('mine')
        })
      },
      t,
    )
    for (let i = 0; i < 2; i++) {
      const large = await request(app).get('/large').set('if-none-match', '"L"').timeout(5000)
      assert.equal(large.status, 304)
      const mine = await request(app).get('/mine').set('if-none-match', '"M"').timeout(5000)
      assert.equal(mine.status, 304)
    }
  })

  it('keeps the renderer its own cookie on a 304, with stripSetCookie', async (t) => {
    const { app } = setup(
      express,
      { stripSetCookie: true },
      (app) => {
        app.get('/welcome', (_req, res) => {
          res.cookie('visitor', 'v1').set('etag', '"W"').send('welcome')
        })
      },
      t,
    )
    const r = await request(app).get('/welcome').set('if-none-match', '"W"')
    assert.equal(r.status, 304)
    assert.match(String(r.headers['set-cookie']), /visitor=v1/)
  })

  it('stores what was written even when the handler reuses its buffer', async (t) => {
    const { app, cache } = setup(
      express,
      {},
      (app) => {
        app.get('/reuse', async (_req, res) => {
          // Legal Node usage: refill the buffer once the previous write has been flushed.
          const buf = Buffer.alloc(4)
          res.type('text')
          for (const line of ['aaa\n', 'bbb\n']) {
            buf.write(line)
            await new Promise((resolve) => res.write(buf, resolve))
          }
          buf.write('ccc\n')
          res.end(buf)
        })
      },
      t,
    )
    const [first, second] = await twice(app, cache, '/reuse')
    assert.equal(first.text, 'aaa\nbbb\nccc\n')
    assert.equal(second.headers['x-cache'], 'HIT')
    assert.equal(second.text, 'aaa\nbbb\nccc\n')
  })

  it("honours a route's maxBodySize after app.use(cache)", async (t) => {
    const { app, cache, calls } = setup(
      express,
      {},
      (app, cache, count) => {
        app.get('/capped', cache.route({ maxBodySize: 10 }), (_req, res) => {
          count()
          res.send('y'.repeat(500))
        })
        // The control: the same body under a route whose cap it fits.
        app.get('/roomy', cache.route({ maxBodySize: 1000 }), (_req, res) => {
          res.send('y'.repeat(500))
        })
      },
      t,
    )
    const [, roomy] = await twice(app, cache, '/roomy')
    assert.equal(roomy.headers['x-cache'], 'HIT')
    const [first, second] = await twice(app, cache, '/capped')
    assert.equal(first.text.length, 500)
    assert.equal(second.headers['x-cache'], 'MISS')
    assert.equal(second.text.length, 500)
    assert.equal(calls(), 2)
  })
})
