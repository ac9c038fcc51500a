import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable, Writable } from 'node:stream'
import { after, before, it } from 'node:test'
import pino from 'pino'
import { pinoHttp } from 'pino-http'
import request from 'supertest'
import { encodeEntry } from '../../src/entry.js'
import { primaryKey } from '../../src/key.js'
import { MemcachedStore } from '../../src/store/memcached.js'
import { appWith, cacheOn, delay, fetchAnswer, listen, PNG } from '../helpers/app.js'
import { responseEntry } from '../helpers/entry.js'
import { forEachExpress } from '../helpers/express.js'
import { type MemcachedProcess, startMemcached } from '../helpers/memcached.js'
import { ControlledStore, gate, signal } from '../helpers/store.js'

let mc: MemcachedProcess
before(async () => {
  mc = await startMemcached()
})
after(async () => {
  await mc.stop()
})

forEachExpress('full-response caching', (express) => {
  it('answers MISS, then HIT with the same body and headers', async (t) => {
    const cache = cacheOn(mc)
    t.after(() => cache.close())
    const { app, calls } = appWith(express, cache, (app, count) => {
      app.get('/page', (_req, res) => {
        count('/page')
        res.set('x-custom', 'yes').type('html').send('<h1>hello</h1>')
      })
    })
    const first = await request(app).get('/page')
    assert.equal(first.headers['x-cache'], 'MISS')
    await cache.settled()
    const second = await request(app).get('/page')
    assert.equal(second.status, 200)
    assert.equal(second.headers['x-cache'], 'HIT')
    assert.equal(second.text, '<h1>hello</h1>')
    assert.equal(second.headers['x-custom'], 'yes')
    assert.match(second.headers['content-type'] ?? '', /text\/html/)
    assert.match(second.headers['cache-status'] ?? '', /^express-ft-cache; hit; ttl=\d+/)
    assert.ok(Number(second.headers.age) >= 0)
    assert.equal(calls.get('/page'), 1)
  })

  it('round-trips a binary body byte for byte', async (t) => {
    const cache = cacheOn(mc)
    t.after(() => cache.close())
    const { app } = appWith(express, cache, (app) => {
      app.get('/logo.png', (_req, res) => {
        res.type('png').send(PNG)
      })
      const all = Buffer.from(Array.from({ length: 256 * 40 }, (_, i) => i % 256))
      app.get('/bytes', (_req, res) => {
        res.type('application/octet-stream').send(all)
      })
    })
    for (const path of ['/logo.png', '/bytes']) {
      const miss = await request(app).get(path).buffer(true)
      await cache.settled()
      const hit = await request(app).get(path).buffer(true)
      assert.equal(hit.headers['x-cache'], 'HIT')
      assert.ok(Buffer.isBuffer(hit.body))
      assert.equal(
        createHash('sha256').update(hit.body).digest('hex'),
        createHash('sha256').update(miss.body).digest('hex'),
      )
      assert.equal(hit.headers['content-type'], miss.headers['content-type'])
      assert.equal(hit.headers['content-length'], String(miss.body.length))
    }
  })

  it('captures res.write streaming, piped streams and sendFile', async (t) => {
    const cache = cacheOn(mc)
    t.after(() => cache.close())
    const dir = mkdtempSync(join(tmpdir(), 'eftc-'))
    t.after(() => rmSync(dir, { recursive: true, force: true }))
    writeFileSync(join(dir, 'file.txt'), 'from a file\n')
    const { app, calls } = appWith(express, cache, (app, count) => {
      app.get('/stream', (_req, res) => {
        count('/stream')
        res.status(200).set('content-type', 'text/plain')
        res.write('one,')
        res.write(Buffer.from('two,'))
        setTimeout(() => res.end('three'), 5)
      })
      app.get('/pipe', (_req, res) => {
        count('/pipe')
        res.type('text')
        Readable.from(['a', 'b', 'c']).pipe(res)
      })
      app.get('/file', (_req, res) => {
        count('/file')
        // sendFile says `max-age=0` by default, which (rightly) makes the response unstorable.
        res.sendFile(join(dir, 'file.txt'), { maxAge: '1m' })
      })
    })
    for (const [path, body] of [
      ['/stream', 'one,two,three'],
      ['/pipe', 'abc'],
      ['/file', 'from a file\n'],
    ] as const) {
      const miss = await request(app).get(path)
      assert.equal(miss.text, body)
      await cache.settled()
      const hit = await request(app).get(path)
      assert.equal(hit.headers['x-cache'], 'HIT', path)
      assert.equal(hit.text, body)
      assert.equal(calls.get(path), 1)
    }
  })

  it('never caches POST, PUT, DELETE; they say BYPASS', async (t) => {
    const cache = cacheOn(mc)
    t.after(() => cache.close())
    const { app, calls } = appWith(express, cache, (app, count) => {
      app.all('/thing', (req, res) => {
        res.send(`${req.method} ${count('/thing')}`)
      })
    })
    // The control: a GET of the same URL is cached.
    await request(app).get('/thing')
    await cache.settled()
    const hit = await request(app).get('/thing')
    assert.equal(hit.headers['x-cache'], 'HIT')
    assert.equal(hit.text, 'GET 1')
    for (const method of ['post', 'put', 'delete'] as const) {
      const a = await request(app)[method]('/thing')
      await cache.settled()
      const b = await request(app)[method]('/thing')
      assert.equal(a.headers['x-cache'], 'BYPASS')
      assert.equal(b.headers['x-cache'], 'BYPASS')
      assert.match(a.text, new RegExp(`^${method.toUpperCase()} `), 'never the cached GET body')
      assert.notEqual(a.text, b.text)
    }
    const get = await request(app).get('/thing')
    assert.match(get.text, /^GET /, 'a GET never gets a cached POST body')
    assert.equal(calls.get('/thing'), 8)
  })

  it('answers HEAD from the GET entry, without a body', async (t) => {
    const cache = cacheOn(mc)
    t.after(() => cache.close())
    const { app, calls } = appWith(express, cache, (app, count) => {
      app.get('/h', (_req, res) => {
        count('/h')
        res.type('text').send('twelve bytes')
      })
    })
    await request(app).get('/h')
    await cache.settled()
    const head = await request(app).head('/h')
    assert.equal(head.headers['x-cache'], 'HIT')
    assert.equal(head.headers['content-length'], '12')
    assert.equal(head.text, undefined)
    assert.equal(calls.get('/h'), 1)
  })

  it('serves STALE at once while one request regenerates, then HIT with the new body', async (t) => {
    const cache = cacheOn(mc, { ttl: 1, grace: 60 })
    const held = gate()
    const entered = signal()
    const { app } = appWith(express, cache, (app, count) => {
      app.get('/v', async (_req, res) => {
        const n = count('/v')
        if (n === 2) {
          entered.raise()
          await held.opened
        }
        res.send(`v${n}`)
      })
    })
    const server = await listen(app)
    t.after(async () => {
      held.open()
      await server.close()
      await cache.close()
    })
    const url = `${server.url}/v`
    await fetchAnswer(url)
    await cache.settled()
    await delay(1100)
    const regen = fetchAnswer(url)
    await entered.wait('the regeneration to start')
    // The render is held until the stale answers are in: they cannot have waited for it.
    const stale = await Promise.all([fetchAnswer(url), fetchAnswer(url)])
    for (const r of stale) {
      assert.equal(r.cache, 'STALE')
      assert.equal(r.text, 'v1')
    }
    held.open()
    const fresh = await regen
    assert.equal(fresh.cache, 'MISS')
    assert.equal(fresh.text, 'v2')
    await cache.settled()
    const hit = await fetchAnswer(url)
    assert.equal(hit.cache, 'HIT')
    assert.equal(hit.text, 'v2')
  })

  it('past the grace window, no request gets the old copy: they wait for the new one', async (t) => {
    // staleIfError outlives grace, so the old entry is still in memcached (as a stale-if-error
    // fallback) when grace ends: only the grace check keeps it from being served STALE.
    const store = new ControlledStore(new MemcachedStore({ servers: mc.address, timeout: '1s' }))
    const cache = cacheOn(mc, { store, ttl: 2, grace: 1, staleIfError: 30, timeout: '1s' })
    const held = gate()
    const entered = signal()
    const { app, calls } = appWith(express, cache, (app, count) => {
      app.get('/graced', async (_req, res) => {
        const n = count('/graced')
        if (n === 2) {
          entered.raise()
          await held.opened
        }
        res.send(`v${n}`)
      })
    })
    const server = await listen(app)
    t.after(async () => {
      held.open()
      await server.close()
      await cache.close()
    })
    const url = `${server.url}/graced`
    assert.equal((await fetchAnswer(url)).text, 'v1')
    await cache.settled()
    assert.equal((await fetchAnswer(url)).cache, 'HIT')
    await delay(3300) // past ttl (2 s) and grace (1 s more)
    const first = fetchAnswer(url)
    await entered.wait('the regeneration to start')
    const before = store.count('get')
    const second = fetchAnswer(url)
    await store.settledCalls('get', before + 1) // it read the old entry, and now waits
    held.open()
    const [a, b] = await Promise.all([first, second])
    assert.equal(a.cache, 'MISS')
    assert.equal(a.text, 'v2')
    assert.notEqual(b.cache, 'STALE', 'nothing is served stale after grace')
    assert.equal(b.text, 'v2', 'the waiting request gets the new copy')
    assert.equal(calls.get('/graced'), 2)
  })

  it('stores and replays headers passed to writeHead, as an object or a raw array', async (t) => {
    const cache = cacheOn(mc)
    t.after(() => cache.close())
    const { app, calls } = appWith(express, cache, (app, count) => {
      app.get('/wh-object', (_req, res) => {
        count('/wh-object')
        res.writeHead(200, { 'content-type': 'text/plain', 'x-object': 'yes' })
        res.end('object form')
      })
      app.get('/wh-array', (_req, res) => {
        count('/wh-array')
        res.writeHead(200, ['Content-Type', 'text/plain', 'X-Array', 'one', 'X-Array', 'two'])
        res.end('array form')
      })
      app.get('/wh-message', (_req, res) => {
        count('/wh-message')
        res.setHeader('x-before', 'set earlier')
        res.writeHead(200, 'Fine', { 'content-type': 'text/plain', 'x-message': 'kept' })
        res.end('message form')
      })
    })
    const expected: Record<string, Record<string, string>> = {
      '/wh-object': { 'x-object': 'yes' },
      '/wh-array': { 'x-array': 'one, two' },
      '/wh-message': { 'x-message': 'kept', 'x-before': 'set earlier' },
    }
    for (const [path, fields] of Object.entries(expected)) {
      const miss = await request(app).get(path)
      assert.equal(miss.headers['x-cache'], 'MISS', path)
      await cache.settled()
      const hit = await request(app).get(path)
      assert.equal(hit.headers['x-cache'], 'HIT', path)
      assert.equal(hit.text, miss.text)
      assert.match(hit.headers['content-type'] ?? '', /^text\/plain/, path)
      for (const [name, value] of Object.entries(fields)) {
        assert.equal(miss.headers[name], value, `${path}: ${name} sent`)
        assert.equal(hit.headers[name], value, `${path}: ${name} replayed`)
      }
      assert.equal(calls.get(path), 1)
    }
  })

  it('keeps serving the stale copy when regeneration fails with a 5xx or a throw', async (t) => {
    const cache = cacheOn(mc, { ttl: 1, grace: 60, lockTtl: 2 })
    t.after(() => cache.close())
    let fail: 'no' | 'status' | 'throw' = 'no'
    const { app, calls } = appWith(express, cache, (app, count) => {
      app.get('/fragile', (_req, res) => {
        const n = count('/fragile')
        if (fail === 'status') res.status(503).send('down')
        else if (fail === 'throw') throw new Error('boom')
        else res.send(`good ${n}`)
      })
    })
    await request(app).get('/fragile')
    await cache.settled()
    await delay(1100)
    fail = 'status'
    const r1 = await request(app).get('/fragile')
    assert.equal(r1.status, 200)
    assert.equal(r1.text, 'good 1')
    assert.equal(r1.headers['x-cache'], 'STALE')
    // The lock stays held after a failed render: the origin is not hammered meanwhile.
    const r2 = await request(app).get('/fragile')
    assert.equal(r2.text, 'good 1')
    assert.equal(calls.get('/fragile'), 2)
    await delay(2100)
    fail = 'throw'
    const r3 = await request(app).get('/fragile')
    assert.equal(r3.status, 200)
    assert.equal(r3.text, 'good 1')
    await cache.settled()
    fail = 'no'
    await delay(2100)
    const r4 = await request(app).get('/fragile')
    assert.equal(r4.text, 'good 4')
  })

  it('takes over a regeneration that hangs past its lock, in the same process', async (t) => {
    const cache = cacheOn(mc, { ttl: 1, grace: 60, lockTtl: 2 })
    let release: () => void = () => undefined
    const hung = new Promise<void>((resolve) => {
      release = resolve
    })
    t.after(async () => {
      release()
      await cache.close()
    })
    const { app, calls } = appWith(express, cache, (app, count) => {
      app.get('/hang', async (_req, res) => {
        const n = count('/hang')
        if (n === 2) await hung
        res.send(`render ${n}`)
      })
    })
    await request(app).get('/hang')
    await cache.settled()
    await delay(1100)
    const stuck = request(app)
      .get('/hang')
      .then((r) => r) // wins the lock, then hangs
    await delay(300)
    assert.equal((await request(app).get('/hang')).headers['x-cache'], 'STALE')
    await delay(3000) // lockTtl 2 s, plus memcached's one-second granularity
    const takeover = await request(app).get('/hang')
    assert.equal(takeover.headers['x-cache'], 'MISS', 'a new request regenerates')
    assert.equal(takeover.text, 'render 3')
    release()
    await stuck
    assert.equal(calls.get('/hang'), 3, 'one hung render, one takeover, nothing else')
  })

  it('does not store a body larger than a memcached item, and still sends it whole', async (t) => {
    const store = new MemcachedStore({ servers: mc.address })
    const cache = cacheOn(mc, { store, maxBodySize: 8 * 1024 * 1024 })
    t.after(() => cache.close())
    const big = Buffer.alloc(1_200_000, 7)
    const { app, calls } = appWith(express, cache, (app, count) => {
      app.get('/big', (_req, res) => {
        count('/big')
        res.type('application/octet-stream').send(big)
      })
      app.get('/fits', (_req, res) => {
        res.type('application/octet-stream').send(big.subarray(0, 900_000))
      })
    })
    // The control: a body that fits an item is stored.
    await request(app).get('/fits').buffer(true)
    await cache.settled()
    const fits = await request(app).get('/fits').buffer(true)
    assert.equal(fits.headers['x-cache'], 'HIT')
    assert.equal(fits.body.length, 900_000)
    const a = await request(app).get('/big').buffer(true)
    assert.equal(a.body.length, big.length)
    await cache.settled()
    const b = await request(app).get('/big').buffer(true)
    assert.equal(b.body.length, big.length)
    assert.equal(b.headers['x-cache'], 'MISS')
    assert.equal(calls.get('/big'), 2)
  })

  it('treats garbage, truncated and old-format values as a miss and overwrites them', async (t) => {
    const store = new MemcachedStore({ servers: mc.address })
    const prefix = `garbage${process.pid}`
    const cache = cacheOn(mc, { store, prefix })
    t.after(() => cache.close())
    const { app } = appWith(express, cache, (app) => {
      app.get('/g/:n', (req, res) => {
        res.send(`fresh ${req.params.n}`)
      })
    })
    const good = encodeEntry(responseEntry({ body: Buffer.from('stored body') }))
    const oldFormat = Buffer.from(good)
    oldFormat[3] = 0
    const values = [
      Buffer.from('not an entry at all'),
      good.subarray(0, good.length - 3),
      oldFormat,
      Buffer.alloc(0),
    ]
    for (const [i, value] of values.entries()) {
      const host = '127.0.0.1'
      const key = primaryKey(prefix, { host, path: `/g/${i}`, query: '', custom: undefined })
      await store.set(key, value, 60)
      const miss = await request(app).get(`/g/${i}`)
      assert.equal(miss.headers['x-cache'], 'MISS', `value ${i}`)
      assert.equal(miss.text, `fresh ${i}`)
      await cache.settled()
      const hit = await request(app).get(`/g/${i}`)
      assert.equal(hit.headers['x-cache'], 'HIT')
      assert.equal(hit.text, `fresh ${i}`)
    }
  })

  it('route options override app options; enabled: false says BYPASS', async (t) => {
    const cache = cacheOn(mc, { ttl: 60 })
    t.after(() => cache.close())
    const { app, calls } = appWith(express, cache, (app, count) => {
      app.get('/me', cache.route({ enabled: false }), (_req, res) => {
        res.send(`me ${count('/me')}`)
      })
      app.get('/short', cache.route({ ttl: 1, grace: 0, staleIfError: 0 }), (_req, res) => {
        res.send(`short ${count('/short')}`)
      })
    })
    const me1 = await request(app).get('/me')
    await cache.settled()
    const me2 = await request(app).get('/me')
    assert.equal(me2.headers['x-cache'], 'BYPASS')
    assert.notEqual(me1.text, me2.text)
    await request(app).get('/short')
    await cache.settled()
    assert.equal((await request(app).get('/short')).headers['x-cache'], 'HIT')
    await delay(2100)
    const after = await request(app).get('/short')
    assert.equal(after.headers['x-cache'], 'MISS')
    assert.equal(calls.get('/short'), 2)
  })

  it('works with cache.route() alone, without app.use(cache)', async (t) => {
    const cache = cacheOn(mc)
    t.after(() => cache.close())
    const app = express()
    let n = 0
    app.get('/only', cache.route({ ttl: 30 }), (_req, res) => {
      res.send(`only ${++n}`)
    })
    await request(app).get('/only')
    await cache.settled()
    const hit = await request(app).get('/only')
    assert.equal(hit.headers['x-cache'], 'HIT')
    assert.equal(hit.text, 'only 1')
  })

  it('adds the cache outcome to the pino-http completion line', async (t) => {
    const cache = cacheOn(mc)
    t.after(() => cache.close())
    const lines: Record<string, unknown>[] = []
    const sink = new Writable({
      write(chunk, _enc, cb) {
        lines.push(JSON.parse(String(chunk)))
        cb()
      },
    })
    const app = express()
    app.use(pinoHttp({ logger: pino(sink) }))
    app.use(cache)
    app.get('/logged', (_req, res) => {
      res.send('logged')
    })
    await request(app).get('/logged')
    await cache.settled()
    await request(app).get('/logged')
    await delay(20)
    const done = lines.filter((l) => l.msg === 'request completed')
    assert.deepEqual(
      done.map((l) => l.cache),
      ['MISS', 'HIT'],
    )
  })
})
