/**
 * Safety: responses the cache must never mangle, leak or resurrect, and states it must never get
 * stuck in (issue 7). Every test runs on Express 4 and 5 against a real memcached and asserts
 * behaviour: origin calls, bodies, headers, and bounded waits with generous slack.
 */
import assert from 'node:assert/strict'
import http, { type IncomingHttpHeaders, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Writable } from 'node:stream'
import { it } from 'node:test'
import type { Express, NextFunction, Request, Response } from 'express'
import pino from 'pino'
import { pinoHttp } from 'pino-http'
import request from 'supertest'
import type { ResponseCache, ResponseCacheOptions } from '../../src/index.js'
import { MemcachedStore } from '../../src/store/memcached.js'
import { cacheOn, delay } from '../helpers/app.js'
import { type ExpressFactory, forEachExpress } from '../helpers/express.js'
import { memcachedForFile } from '../helpers/memcached-file.js'

const mc = memcachedForFile()

type T = { after(fn: () => unknown): void }

/**
 * A cache on the test memcached with deadlines far above a loaded CI box's worst round trip: these
 * tests assert what is stored and served, and a read or write-back that timed out would turn an
 * expected HIT into a MISS.
 */
const cacheFor = (options: ResponseCacheOptions = {}): ResponseCache =>
  cacheOn(mc, {
    store: new MemcachedStore({ servers: mc.address, timeout: '2s' }),
    timeout: '2s',
    ...options,
  })

/** An app with the cache mounted (after `before`, when given) and a shared origin-call counter. */
function setup(
  express: ExpressFactory,
  options: ResponseCacheOptions,
  routes: (app: Express, cache: ResponseCache, count: () => number) => void,
  t: T,
  before?: (app: Express) => void,
) {
  const cache = cacheFor(options)
  t.after(() => cache.close())
  const app = express()
  before?.(app)
  let calls = 0
  app.use(cache)
  routes(app, cache, () => ++calls)
  return { app, cache, calls: () => calls }
}

/** Rejects when `p` takes longer than `ms`: a bound with generous slack, not a timing assertion. */
function within<V>(ms: number, p: Promise<V>, what: string): Promise<V> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms)
  })
  return Promise.race([p, late]).finally(() => clearTimeout(timer))
}

/** Fails the test on any uncaught exception while it runs (a crash inside a patched `res`). */
function noCrash(t: T): () => void {
  const crashes: unknown[] = []
  const onCrash = (err: unknown): void => {
    crashes.push(err)
  }
  process.on('uncaughtException', onCrash)
  t.after(() => process.off('uncaughtException', onCrash))
  return () => assert.deepEqual(crashes, [], 'no uncaught exception')
}

async function listen(app: Express, t: T): Promise<number> {
  const server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s))
  })
  t.after(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  )
  return (server.address() as AddressInfo).port
}

interface Raw {
  status: number
  headers: IncomingHttpHeaders
  /** Field lines as received, names lower-cased: [name, value] each. */
  lines: [string, string][]
  body: string
  /** False when the connection ended before the message did. */
  complete: boolean
}

/** A GET that keeps the raw field lines and survives a connection cut mid-body. */
function raw(port: number, path: string, headers: Record<string, string> = {}): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = []
      const lines: [string, string][] = []
      for (let i = 0; i < res.rawHeaders.length; i += 2)
        lines.push([(res.rawHeaders[i] as string).toLowerCase(), res.rawHeaders[i + 1] as string])
      let done = false
      const finish = (): void => {
        if (done) return
        done = true
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          lines,
          body: Buffer.concat(chunks).toString(),
          complete: res.complete,
        })
      }
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', finish)
      res.on('error', finish)
      res.on('close', finish)
    })
    req.on('error', reject)
  })
}

const valuesOf = (r: Raw, name: string): string[] =>
  r.lines.filter(([n]) => n === name).map(([, v]) => v)

forEachExpress('early flush (issue 7.1)', (express) => {
  /**
   * GET /flaky stored once as `good 1`, then, past its ttl (1 s), failing: a 503 whose head is
   * flushed before its body.
   */
  async function failingPastTtl(options: ResponseCacheOptions, t: T) {
    let failing = false
    const { app, cache } = setup(
      express,
      options,
      (app, _cache, count) => {
        app.get('/flaky', (_req, res) => {
          const n = count()
          if (!failing) {
            res.type('text').send(`good ${n}`)
            return
          }
          res.writeHead(503, { 'Content-Type': 'text/plain' })
          res.flushHeaders()
          setTimeout(() => res.end('down'), 20)
        })
      },
      t,
    )
    await request(app).get('/flaky')
    await cache.settled()
    await delay(1100)
    failing = true
    return { app, cache }
  }

  it('If-None-Match: * on a flushed 200 head: no crash, a complete answer, nothing left waiting', async (t) => {
    const crashed = noCrash(t)
    const { app, cache, calls } = setup(
      express,
      { waitTimeout: 30 },
      (app, _cache, count) => {
        app.get('/early', (_req, res) => {
          count()
          res.writeHead(200, { ETag: '"x"', 'Content-Type': 'text/plain' })
          res.flushHeaders()
          setTimeout(() => res.end('body'), 20)
        })
      },
      t,
    )
    const first = await within(
      10_000,
      request(app).get('/early').set('if-none-match', '*'),
      'the conditional request',
    )
    assert.ok(first.status === 304 || (first.status === 200 && first.text === 'body'))
    await cache.settled()
    const next = await within(10_000, request(app).get('/early'), 'the next plain request')
    assert.equal(next.status, 200)
    assert.equal(next.text, 'body')
    assert.equal(calls(), 1, 'stored once, served from the cache')
    crashed()
  })

  it('a 503 flushed early with a stale copy in stale-if-error: the stale copy answers, the next request is not held', {}, async (t) => {
    const crashed = noCrash(t)
    const { app, cache } = await failingPastTtl(
      // Past ttl and grace, inside staleIfError: the cold path with a fallback.
      { ttl: 1, grace: 0, staleIfError: 60, waitTimeout: 30, lockTtl: 30 },
      t,
    )
    for (const conditional of [true, false]) {
      const r = request(app).get('/flaky')
      if (conditional) r.set('if-none-match', '*')
      const stale = await within(6000, r, 'the stale-if-error answer')
      // The stale copy answers the client's own condition too: `*` matches it (RFC 9110 §13.1.2).
      assert.equal(stale.status, conditional ? 304 : 200)
      if (!conditional) assert.equal(stale.text, 'good 1')
      assert.equal(stale.headers['x-cache'], 'STALE')
      await cache.settled()
    }
    crashed()
  })

  it('a 503 flushed early within grace: stale answers, and the next request is served stale at once', async (t) => {
    const crashed = noCrash(t)
    const { app, cache } = await failingPastTtl({ ttl: 1, grace: 60, waitTimeout: 30 }, t)
    for (let i = 0; i < 2; i++) {
      const stale = await within(
        10_000,
        request(app).get('/flaky').set('if-none-match', '*'),
        'a stale answer',
      )
      // The stale copy answers the condition (304), or in full (the render's 503 was diverted).
      if (stale.status !== 304) {
        assert.equal(stale.status, 200)
        assert.equal(stale.text, 'good 1')
      }
      assert.equal(stale.headers['x-cache'], 'STALE')
      await cache.settled()
    }
    crashed()
  })

  it('a second writeHead after the head went out never throws out of res', async (t) => {
    const crashed = noCrash(t)
    const thrown: unknown[] = []
    const { app, cache, calls } = setup(
      express,
      {},
      (app, _cache, count) => {
        app.get('/twice', (_req, res) => {
          count()
          res.writeHead(200, { 'Content-Type': 'text/plain' })
          res.flushHeaders()
          try {
            res.writeHead(500, { 'X-Late': 'yes' })
          } catch (err) {
            thrown.push(err)
          }
          res.end('first head wins')
        })
      },
      t,
    )
    const first = await request(app).get('/twice')
    assert.equal(first.status, 200)
    assert.equal(first.text, 'first head wins')
    await cache.settled()
    const second = await request(app).get('/twice')
    assert.equal(second.status, 200)
    assert.equal(second.text, 'first head wins')
    assert.equal(second.headers['x-late'], undefined)
    assert.deepEqual(thrown, [])
    assert.equal(calls(), 1)
    crashed()
  })
})

forEachExpress('request-scoped headers (issue 7.2)', (express) => {
  /** What a request-id / tracing / timing middleware does, per request, before the cache. */
  const perRequest = (app: Express): void => {
    let n = 0
    app.use((_req: Request, res: Response, next: NextFunction) => {
      n++
      res.setHeader('x-request-id', `req-${n}`)
      res.setHeader('traceparent', `00-${String(n).padStart(32, '0')}-${'1'.repeat(16)}-01`)
      res.setHeader('tracestate', `vendor=${n}`)
      res.setHeader('x-tenant-trace', `tenant-${n}`)
      // response-time sets its header while the head is written (on-headers).
      const writeHead = res.writeHead
      res.writeHead = function (this: Response, ...args: unknown[]) {
        if (!res.headersSent) {
          res.setHeader('x-response-time', `${n}.000ms`)
          res.setHeader('server-timing', `total;dur=${n}`)
        }
        return writeHead.apply(this, args as never)
      } as Response['writeHead']
      next()
    })
  }

  it('a HIT carries the current request’s ids and timings, never the stored ones', async (t) => {
    const { app, cache, calls } = setup(
      express,
      { perRequestHeaders: ['x-tenant-trace'] },
      (app, _cache, count) => {
        app.get('/traced', (_req, res) => {
          count()
          res.setHeader('server-timing', 'db;dur=3')
          res.set('etag', '"t1"').type('text').send('traced')
        })
      },
      t,
      perRequest,
    )
    const miss = await request(app).get('/traced')
    assert.equal(miss.headers['x-request-id'], 'req-1')
    await cache.settled()
    const hit = await request(app).get('/traced')
    assert.equal(hit.headers['x-cache'], 'HIT')
    assert.equal(calls(), 1)
    assert.equal(hit.headers['x-request-id'], 'req-2')
    assert.match(hit.headers.traceparent ?? '', /^00-0{31}2-/)
    assert.equal(hit.headers.tracestate, 'vendor=2')
    assert.equal(hit.headers['x-tenant-trace'], 'tenant-2', 'perRequestHeaders extends the list')
    assert.notEqual(hit.headers['x-response-time'], '1.000ms')
    assert.ok(!String(hit.headers['server-timing'] ?? '').includes('db;dur=3'))
    assert.ok(!String(hit.headers['server-timing'] ?? '').includes('total;dur=1'))
    // A 304 answered from the entry: the current request's ids too.
    const notModified = await request(app).get('/traced').set('if-none-match', '"t1"')
    assert.equal(notModified.status, 304)
    assert.equal(notModified.headers['x-request-id'], 'req-3')
    assert.equal(notModified.headers['x-tenant-trace'], 'tenant-3')
  })

  it('a 304 the cache answers for a render keeps the current request’s ids', async (t) => {
    const { app } = setup(
      express,
      {},
      (app, _cache, count) => {
        app.get('/cond', (_req, res) => {
          count()
          res.set('etag', '"c1"').type('text').send('conditional')
        })
      },
      t,
      perRequest,
    )
    const r = await request(app).get('/cond').set('if-none-match', '"c1"')
    assert.equal(r.status, 304)
    assert.equal(r.headers['x-request-id'], 'req-1')
    assert.equal(r.headers.tracestate, 'vendor=1')
  })
})

forEachExpress('truncated responses (issue 7.3)', (express) => {
  it('a body shorter than its Content-Length is never stored; a whole one is', async (t) => {
    const { app, cache } = setup(
      express,
      {},
      (app, _cache, count) => {
        const counts = new Map<string, number>()
        const bump = (p: string): number => {
          count()
          const n = (counts.get(p) ?? 0) + 1
          counts.set(p, n)
          return n
        }
        app.get('/short', (_req, res) => {
          bump('short')
          res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': '100' })
          res.write('x'.repeat(50))
          // What a stream that failed half-way leaves: the message ends short; cut the connection
          // so the client is not left waiting for the rest.
          res.once('finish', () => res.socket?.destroy())
          res.end()
        })
        app.get('/whole', (_req, res) => {
          const n = bump('whole')
          res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': '100' })
          res.write('y'.repeat(50))
          res.end(`${n}`.padEnd(50, 'y'))
        })
        app.get('/__calls/:p', (req, res) => {
          res.json(counts.get(String(req.params.p)) ?? 0)
        })
      },
      t,
    )
    const port = await listen(app, t)
    const calls = async (p: string): Promise<number> =>
      (await request(app).get(`/__calls/${p}`)).body as number
    const cut = await raw(port, '/short')
    assert.equal(cut.complete, false)
    await cache.settled()
    const again = await raw(port, '/short')
    assert.equal(again.headers['x-cache'], 'MISS', 'the next request renders again')
    await cache.settled()
    assert.equal(await calls('short'), 2)

    const whole = await raw(port, '/whole')
    assert.equal(whole.body.length, 100)
    await cache.settled()
    const hit = await raw(port, '/whole')
    assert.equal(hit.headers['x-cache'], 'HIT')
    assert.equal(hit.body, whole.body)
    assert.equal(await calls('whole'), 1)
  })
})

forEachExpress('aborted responses', (express) => {
  it('a chunked response destroyed mid-body is never stored', async (t) => {
    const { app, cache, calls } = setup(
      express,
      {},
      (app, _cache, count) => {
        app.get('/broken', (_req, res) => {
          count()
          res.type('text')
          res.write('first half, ')
          // A stream that errors half-way: Express/pipeline destroy the response.
          setTimeout(() => res.destroy(), 20)
        })
      },
      t,
    )
    const port = await listen(app, t)
    const cut = await raw(port, '/broken')
    assert.equal(cut.complete, false)
    await cache.settled()
    const again = await raw(port, '/broken')
    assert.equal(again.complete, false)
    assert.equal(again.headers['x-cache'], 'MISS', 'the partial body was not stored')
    await cache.settled()
    assert.equal(calls(), 2)
  })
})

forEachExpress('replay details (mutation check)', (express) => {
  it('a chunked body above maxBodySize is sent whole and never stored', async (t) => {
    const { app, cache, calls } = setup(
      express,
      { maxBodySize: 100 },
      (app, _cache, count) => {
        app.get('/chunked', (_req, res) => {
          count()
          res.type('text')
          for (let i = 0; i < 4; i++) res.write('c'.repeat(40))
          res.end()
        })
      },
      t,
    )
    const first = await request(app).get('/chunked')
    assert.equal(first.text.length, 160)
    await cache.settled()
    const second = await request(app).get('/chunked')
    assert.equal(second.text.length, 160)
    assert.notEqual(second.headers['x-cache'], 'HIT')
    assert.equal(calls(), 2)
  })

  it('Age counts the age the response arrived with (RFC 9111 §5.1)', async (t) => {
    const { app, cache } = setup(
      express,
      {},
      (app) => {
        app.get('/aged', (_req, res) => {
          res.set({ age: '100', 'cache-control': 'max-age=600' }).type('text').send('aged')
        })
      },
      t,
    )
    await request(app).get('/aged')
    await cache.settled()
    const hit = await request(app).get('/aged')
    assert.equal(hit.headers['x-cache'], 'HIT')
    assert.ok(Number(hit.headers.age) >= 100, `Age ${hit.headers.age}`)
  })

  it('a 304 from the cache carries validators and caching fields, not the representation’s', async (t) => {
    const { app, cache } = setup(
      express,
      {},
      (app) => {
        app.get('/doc', (_req, res) => {
          res.set({ etag: '"d1"', 'x-custom': 'yes', 'content-language': 'en' })
          res.type('text').send('document')
        })
      },
      t,
    )
    await request(app).get('/doc')
    await cache.settled()
    const r = await request(app).get('/doc').set('if-none-match', '"d1"')
    assert.equal(r.status, 304)
    assert.equal(r.headers['x-cache'], 'HIT')
    assert.equal(r.headers.etag, '"d1"')
    assert.equal(r.headers['x-custom'], undefined)
    assert.equal(r.headers['content-language'], undefined)
  })

  it('a stored 404 ignores If-None-Match (RFC 9110 §13.2.1: conditions apply to 2xx)', async (t) => {
    const { app, cache } = setup(
      express,
      {},
      (app) => {
        app.get('/gone', (_req, res) => {
          res.status(404).set('etag', '"g1"').type('text').send('not here')
        })
      },
      t,
    )
    await request(app).get('/gone')
    await cache.settled()
    const r = await request(app).get('/gone').set('if-none-match', '*')
    assert.equal(r.headers['x-cache'], 'HIT')
    assert.equal(r.status, 404)
    assert.equal(r.text, 'not here')
  })
})

forEachExpress('cookies (issue 7.4, RFC 9111 §3.5 applied to Cookie)', (express) => {
  const routes = (app: Express, cache: ResponseCache, count: () => number): void => {
    app.get('/me', (req, res) => {
      count()
      res.type('text').send(`page for ${req.headers.cookie ?? 'anonymous'}`)
    })
    app.get('/public', (req, res) => {
      count()
      res.set('cache-control', 'public, max-age=60').type('text')
      res.send(`public page rendered for ${req.headers.cookie ?? 'anonymous'}`)
    })
    app.get('/smaxage', (req, res) => {
      count()
      res.set('cache-control', 's-maxage=60').type('text')
      res.send(`shared page rendered for ${req.headers.cookie ?? 'anonymous'}`)
    })
    app.get('/revalidate', (req, res) => {
      count()
      // must-revalidate shares an Authorization response (RFC 9111 §3.5), never a cookie one.
      res.set('cache-control', 'max-age=60, must-revalidate').type('text')
      res.send(`revalidated page for ${req.headers.cookie ?? 'anonymous'}`)
    })
    app.get('/ignore', cache.route({ cookies: 'ignore' }), (req, res) => {
      count()
      res.type('text').send(`cookies ignored, rendered for ${req.headers.cookie ?? 'anonymous'}`)
    })
  }

  it('a page rendered for sid=alice is never served to anonymous or to sid=bob', async (t) => {
    const { app, cache, calls } = setup(express, {}, routes, t)
    const alice = await request(app).get('/me').set('cookie', 'sid=alice')
    assert.equal(alice.text, 'page for sid=alice')
    await cache.settled()
    const anon = await request(app).get('/me')
    assert.equal(anon.text, 'page for anonymous')
    await cache.settled()
    const bob = await request(app).get('/me').set('cookie', 'sid=bob')
    assert.equal(bob.text, 'page for sid=bob')
    await cache.settled()
    const alice2 = await request(app).get('/me').set('cookie', 'sid=alice')
    assert.equal(alice2.text, 'page for sid=alice')
    assert.notEqual(alice2.headers['x-cache'], 'HIT', 'an anonymous copy does not answer alice')
    assert.equal(calls(), 4)
    // Anonymous requests still share the anonymous render.
    const anon2 = await request(app).get('/me')
    assert.equal(anon2.headers['x-cache'], 'HIT')
    assert.equal(anon2.text, 'page for anonymous')
    // must-revalidate does not make a cookie page shareable; only public or s-maxage do.
    await request(app).get('/revalidate').set('cookie', 'sid=alice')
    await cache.settled()
    const anon3 = await request(app).get('/revalidate')
    assert.equal(anon3.text, 'revalidated page for anonymous')
  })

  it('a public or s-maxage page is stored from a cookie request and may answer others', async (t) => {
    const { app, cache, calls } = setup(express, {}, routes, t)
    for (const path of ['/public', '/smaxage']) {
      await request(app).get(path).set('cookie', 'sid=alice')
      await cache.settled()
      const bob = await request(app).get(path).set('cookie', 'sid=bob')
      assert.equal(bob.headers['x-cache'], 'HIT', path)
      assert.match(bob.text, /rendered for sid=alice/)
      const anon = await request(app).get(path)
      assert.equal(anon.headers['x-cache'], 'HIT', path)
    }
    assert.equal(calls(), 2)
  })

  it('analytics cookies do not count; cookies: "ignore" opts out', async (t) => {
    const { app, cache, calls } = setup(express, {}, routes, t)
    await request(app).get('/me').set('cookie', '_ga=GA1.2.3.4; _gid=GA1.2.5.6')
    await cache.settled()
    const anon = await request(app).get('/me')
    assert.equal(anon.headers['x-cache'], 'HIT')
    const ga = await request(app).get('/me').set('cookie', '_ga=GA1.9.9.9')
    assert.equal(ga.headers['x-cache'], 'HIT')
    assert.equal(calls(), 1)

    await request(app).get('/ignore').set('cookie', 'sid=alice')
    await cache.settled()
    const other = await request(app).get('/ignore').set('cookie', 'sid=bob')
    assert.equal(other.headers['x-cache'], 'HIT')
    assert.equal(calls(), 2)
  })

  it('cookies: "ignore" on a route-only cache opts out as well', async (t) => {
    const cache = cacheFor()
    t.after(() => cache.close())
    const app = express()
    let calls = 0
    app.get('/only', cache.route({ cookies: 'ignore' }), (req, res) => {
      calls++
      res.type('text').send(`for ${req.headers.cookie}`)
    })
    await request(app).get('/only').set('cookie', 'sid=alice')
    await cache.settled()
    const bob = await request(app).get('/only').set('cookie', 'sid=bob')
    assert.equal(bob.headers['x-cache'], 'HIT')
    assert.equal(calls, 1)
  })

  it('sessionCookies still bypass entirely, even a public page', async (t) => {
    const { app, cache, calls } = setup(express, { sessionCookies: ['sid'] }, routes, t)
    await request(app).get('/public')
    await cache.settled()
    const session = await request(app).get('/public').set('cookie', 'sid=alice')
    assert.equal(session.headers['x-cache'], 'BYPASS')
    assert.equal(session.text, 'public page rendered for sid=alice')
    await cache.settled()
    const anon = await request(app).get('/public')
    assert.equal(anon.headers['x-cache'], 'HIT')
    assert.equal(anon.text, 'public page rendered for anonymous')
    assert.equal(calls(), 2)
  })
})

forEachExpress('unsafe methods and client disconnects (issue 7.5)', (express) => {
  /**
   * A POST whose client leaves while the handler works; `commit` is how the handler then answers.
   * Returns the cache's invalidation count and whether the GET was rendered again.
   */
  async function disconnect(
    t: T,
    commit: (res: Response) => void,
    flushFirst: boolean,
  ): Promise<{ invalidations: number; rerendered: boolean }> {
    let committed!: () => void
    const done = new Promise<void>((r) => {
      committed = r
    })
    let started!: () => void
    const inHandler = new Promise<void>((r) => {
      started = r
    })
    const { app, cache, calls } = setup(
      express,
      {},
      (app, _cache, count) => {
        app.get('/thing', (_req, res) => {
          res.type('text').send(`thing ${count()}`)
        })
        app.post('/thing', (_req, res) => {
          if (flushFirst) {
            res.status(200)
            res.flushHeaders()
          }
          started()
          res.once('close', () => {
            setTimeout(() => {
              commit(res)
              committed()
            }, 20)
          })
        })
      },
      t,
    )
    const port = await listen(app, t)
    await request(app).get('/thing')
    await cache.settled()
    const post = http.request({
      host: '127.0.0.1',
      port,
      path: '/thing',
      method: 'POST',
      agent: false,
    })
    post.on('error', () => undefined)
    post.end()
    await inHandler
    post.destroy()
    await within(10_000, done, 'the handler committing')
    await delay(20)
    await cache.settled()
    const get = await request(app).get('/thing')
    return {
      invalidations: cache.stats().invalidations,
      rerendered: get.headers['x-cache'] === 'MISS' && calls() === 2,
    }
  }

  it('a 2xx head flushed before the client left invalidates, once', async (t) => {
    const r = await disconnect(t, (res) => res.end(), true)
    assert.deepEqual(r, { invalidations: 1, rerendered: true })
  })

  it('a 2xx committed with a body after the client left invalidates, once', {}, async (t) => {
    const r = await disconnect(t, (res) => res.status(201).send('made'), false)
    assert.deepEqual(r, { invalidations: 1, rerendered: true })
  })

  it('a bodiless 2xx committed after the client left invalidates, once', async (t) => {
    const r = await disconnect(t, (res) => res.status(204).end(), false)
    assert.deepEqual(r, { invalidations: 1, rerendered: true })
  })

  it('an error committed after the client left does not invalidate', async (t) => {
    const r = await disconnect(t, (res) => res.status(500).end(), false)
    assert.deepEqual(r, { invalidations: 0, rerendered: false })
  })

  it('a completed unsafe request invalidates exactly once', async (t) => {
    const { app, cache } = setup(
      express,
      {},
      (app, _cache, count) => {
        app.get('/x', (_req, res) => {
          res.send(`x ${count()}`)
        })
        app.post('/x', (_req, res) => {
          res.status(201).send('ok')
        })
      },
      t,
    )
    await request(app).get('/x')
    await cache.settled()
    await request(app).post('/x')
    await delay(20)
    await cache.settled()
    assert.equal(cache.stats().invalidations, 1)
    assert.equal((await request(app).get('/x')).headers['x-cache'], 'MISS')
  })
})

forEachExpress('raw header arrays (issue 7.6)', (express) => {
  const routes = (app: Express, cache: ResponseCache): void => {
    app.get('/flat', (_req, res) => {
      res.writeHead(200, [
        'Set-Cookie',
        ['a=1', 'b=2'],
        'X-A',
        '1',
        'Content-Type',
        'text/plain',
      ] as never)
      res.end('flat')
    })
    app.get('/pairs', (_req, res) => {
      res.writeHead(200, [
        ['Set-Cookie', 'a=1'],
        ['Set-Cookie', 'b=2'],
        ['X-A', '1'],
      ] as never)
      res.end('pairs')
    })
    app.get('/multi', (_req, res) => {
      res.writeHead(200, ['X-Multi', ['one', 'two'], 'Content-Type', 'text/plain'] as never)
      res.end('multi')
    })
    app.get('/multi-pairs', (_req, res) => {
      res.writeHead(200, [
        ['X-Multi', 'one'],
        ['X-Multi', 'two'],
      ] as never)
      res.end('multi pairs')
    })
    app.get('/stripped', cache.route({ stripSetCookie: true }), (_req, res) => {
      res.writeHead(200, ['Set-Cookie', ['a=1', 'b=2'], 'X-Multi', ['one', 'two']] as never)
      res.end('stripped')
    })
    app.get('/login', (_req, res) => {
      res.cookie('a', '1').cookie('b', '2').set('etag', '"l1"').send('login')
    })
  }

  it('the rendering client gets separate Set-Cookie lines (flat and [[name, value]] forms)', async (t) => {
    const { app, cache } = setup(express, {}, routes, t)
    const port = await listen(app, t)
    for (const path of ['/flat', '/pairs']) {
      const r = await raw(port, path)
      assert.equal(r.status, 200)
      assert.deepEqual(valuesOf(r, 'set-cookie'), ['a=1', 'b=2'], path)
      assert.deepEqual(valuesOf(r, 'x-a'), ['1'], path)
      await cache.settled()
      const again = await raw(port, path)
      assert.notEqual(again.headers['x-cache'], 'HIT', 'a response with cookies is not shared')
    }
    for (const path of ['/multi', '/multi-pairs', '/stripped']) {
      const miss = await raw(port, path)
      assert.deepEqual(valuesOf(miss, 'x-multi'), ['one', 'two'], path)
      if (path === '/stripped') assert.deepEqual(valuesOf(miss, 'set-cookie'), ['a=1', 'b=2'])
    }
  })

  it('multi-valued non-cookie headers are stored and replayed as separate lines', {}, async (t) => {
    const { app, cache } = setup(express, {}, routes, t)
    const port = await listen(app, t)
    for (const path of ['/multi', '/multi-pairs', '/stripped']) {
      await raw(port, path)
      await cache.settled()
      const hit = await raw(port, path)
      assert.equal(hit.headers['x-cache'], 'HIT', path)
      assert.deepEqual(valuesOf(hit, 'x-multi'), ['one', 'two'], `${path}: replayed as two lines`)
      assert.deepEqual(valuesOf(hit, 'set-cookie'), [], path)
    }
  })

  it('a 304 the cache answers for a render keeps every Set-Cookie line', {}, async (t) => {
    const { app } = setup(express, {}, routes, t)
    const port = await listen(app, t)
    const r = await raw(port, '/login', { 'if-none-match': '"l1"' })
    assert.equal(r.status, 304)
    assert.deepEqual(
      valuesOf(r, 'set-cookie').map((c) => c.split(';')[0]),
      ['a=1', 'b=2'],
    )
  })
})

forEachExpress('hit-for-miss at the variant key (issue 7.7)', (express) => {
  const routes = (app: Express, _cache: ResponseCache, count: () => number): void => {
    app.get('/greeting', (req, res) => {
      count()
      const lang = String(req.headers['accept-language'] ?? 'en')
      res.set('vary', 'Accept-Language')
      // One variant turns uncacheable.
      if (lang === 'fr') res.set('cache-control', 'no-store')
      res.type('text').send(`greeting in ${lang}`)
    })
  }
  const ask = (app: Express, lang: string) =>
    request(app).get('/greeting').set('accept-language', lang)

  it('a variant turning uncacheable after others were stored leaves them cached', async (t) => {
    const { app, cache, calls } = setup(express, {}, routes, t)
    await ask(app, 'en')
    await cache.settled()
    assert.equal((await ask(app, 'en')).headers['x-cache'], 'HIT')
    for (let i = 0; i < 2; i++) {
      const fr = await ask(app, 'fr')
      assert.equal(fr.text, 'greeting in fr')
      assert.equal(fr.headers['x-cache'], 'MISS')
      await cache.settled()
    }
    const en = await ask(app, 'en')
    assert.equal(en.headers['x-cache'], 'HIT')
    assert.equal(en.text, 'greeting in en')
    await ask(app, 'de')
    await cache.settled()
    const de = await ask(app, 'de')
    assert.equal(de.headers['x-cache'], 'HIT')
    assert.equal(de.text, 'greeting in de')
    assert.equal(calls(), 4)
  })

  it('a first render that is uncacheable does not disable the other variants', async (t) => {
    const { app, cache, calls } = setup(express, {}, routes, t)
    await ask(app, 'fr')
    await cache.settled()
    for (const lang of ['en', 'de']) {
      await ask(app, lang)
      await cache.settled()
      const hit = await ask(app, lang)
      assert.equal(hit.headers['x-cache'], 'HIT', lang)
      assert.equal(hit.text, `greeting in ${lang}`)
    }
    const fr = await ask(app, 'fr')
    assert.equal(fr.text, 'greeting in fr')
    assert.notEqual(fr.headers['x-cache'], 'HIT')
    await cache.settled()
    assert.equal((await ask(app, 'en')).headers['x-cache'], 'HIT')
    assert.equal(calls(), 4)
  })
})

forEachExpress('coalescing across Vary values', (express) => {
  it('a waiter whose Vary values differ from the leader’s renders its own variant', async (t) => {
    let started!: () => void
    const inLeader = new Promise<void>((r) => {
      started = r
    })
    let go!: () => void
    const gate = new Promise<void>((r) => {
      go = r
    })
    const { app, cache, calls } = setup(
      express,
      { waitTimeout: 30 },
      (app, _cache, count) => {
        app.get('/hello', async (req, res) => {
          if (count() === 1) {
            started()
            await gate
          }
          const lang = String(req.headers['accept-language'])
          res.set('vary', 'Accept-Language').type('text').send(`hello in ${lang}`)
        })
      },
      t,
    )
    const ask = (lang: string) =>
      request(app)
        .get('/hello')
        .set('accept-language', lang)
        .then((r) => r)
    const leader = ask('en')
    await inLeader
    const fr = ask('fr')
    const en = ask('en')
    // Both are queued on the leader's in-process render by now (a lookup is a local round trip).
    await delay(150)
    go()
    const [a, b, c] = await within(20_000, Promise.all([leader, fr, en]), 'the three requests')
    assert.equal(a.text, 'hello in en')
    assert.equal(b.text, 'hello in fr', 'never the leader’s variant')
    assert.equal(c.text, 'hello in en')
    assert.equal(c.headers['x-cache'], 'HIT', 'same Vary values share the render')
    assert.equal(calls(), 2)
    await cache.settled()
  })
})

forEachExpress('declared Content-Length above maxBodySize (issue 7.8)', (express) => {
  /**
   * Apps whose first request (fleet-wide) declares a large body (its head 300 ms late, so a second
   * request is waiting by then), sends half, then holds the rest
   * until another request's handler starts (bounded by 4 s). `overlapped()` tells whether that
   * other handler started while the first response was still open.
   */
  function fleet(size: number, options: ResponseCacheOptions, t: T) {
    let calls = 0
    let open = 0
    let overlap = false
    let release!: () => void
    const released = new Promise<void>((r) => {
      release = r
    })
    const apps = Array.from({ length: size }, () => {
      const cache = cacheFor(options)
      t.after(() => cache.close())
      const app = express()
      app.use((_req, res, next) => {
        open++
        res.once('finish', () => {
          open--
        })
        next()
      })
      app.use(cache)
      app.get('/big', async (_req, res) => {
        const n = ++calls
        if (n > 1) {
          overlap ||= open > 1
          release()
        }
        // The leader's head goes out after the waiter queued (on the flight, or polling the lock).
        if (n === 1) await delay(300)
        res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': '200' })
        res.write('a'.repeat(100))
        if (n === 1) await Promise.race([released, delay(4000)])
        res.end('b'.repeat(100))
      })
      return { app, cache }
    })
    return { apps, overlapped: () => overlap }
  }

  for (const [name, size] of [
    ['in this process', 1],
    ['in another process', 2],
  ] as const) {
    it(`releases same-key waiters ${name} at head time`, async (t) => {
      const prefix = `big${process.pid}x${Math.random().toString(36).slice(2)}`
      const { apps, overlapped } = fleet(
        size,
        { prefix, maxBodySize: 100, waitTimeout: 30, pollInterval: '20ms' },
        t,
      )
      const ports = await Promise.all(apps.map(({ app }) => listen(app, t)))
      const leader = raw(ports[0] as number, '/big')
      await delay(100)
      const waiter = raw(ports[size - 1] as number, '/big')
      const [a, b] = await within(20_000, Promise.all([leader, waiter]), 'both requests')
      assert.equal(a.body.length, 200)
      assert.equal(b.body.length, 200)
      assert.ok(overlapped(), 'the waiter ran its handler while the leader’s body was still open')
      await Promise.all(apps.map(({ cache }) => cache.settled()))
    })
  }
})

forEachExpress('invalidation during a render (issue 7.10)', (express) => {
  for (const how of ['this process', 'another process', 'a tag', 'a soft tag'] as const) {
    it(`a render that started before an invalidation (${how}) stores nothing`, async (t) => {
      const prefix = `inv${process.pid}x${Math.random().toString(36).slice(2)}`
      const cache = cacheFor({ prefix, tags: ['catalog'] })
      const other = cacheFor({ prefix })
      t.after(() => cache.close())
      t.after(() => other.close())
      let started!: () => void
      const inHandler = new Promise<void>((r) => {
        started = r
      })
      let go!: () => void
      const gate = new Promise<void>((r) => {
        go = r
      })
      let calls = 0
      const app = express()
      app.use(cache)
      app.get('/catalog', async (_req, res) => {
        const n = ++calls
        if (n === 1) {
          started()
          await gate
        }
        res.type('text').send(`catalog ${n}`)
      })
      // Records for every tag of the entry exist before the render (a missing record reads as
      // "invalidated now"), so only the write-back check can keep the old render out.
      await Promise.all([
        cache.invalidate('/catalog'),
        cache.invalidateTags('catalog'),
        cache.invalidateAll(),
      ])
      await delay(5)
      const first = request(app)
        .get('/catalog')
        .then((r) => r)
      await inHandler
      if (how === 'this process') await cache.invalidate('/catalog')
      else if (how === 'another process') await other.invalidate('/catalog')
      else if (how === 'a tag') await other.invalidateTags('catalog')
      // Soft: had it been stored, the old render would be served STALE (readers see 'stale').
      else await other.invalidateTags('catalog', { soft: true })
      go()
      assert.equal((await first).text, 'catalog 1')
      await cache.settled()
      // RFC 9111 §5.2.1.7: only-if-cached shows what is stored without running the handler.
      const probe = await request(app).get('/catalog').set('cache-control', 'only-if-cached')
      assert.equal(probe.status, 504, 'nothing stored, not even a stale copy')
      const next = await request(app).get('/catalog')
      assert.equal(next.text, 'catalog 2', 'the old render was not stored')
      await cache.settled()
      const hit = await request(app).get('/catalog')
      assert.equal(hit.headers['x-cache'], 'HIT')
      assert.equal(hit.text, 'catalog 2')
    })
  }
})

forEachExpress('pino-http line (issue 7.12)', (express) => {
  it('cache.route({ enabled: false }) under app.use(cache): one `cache` key per line', async (t) => {
    const lines: string[] = []
    const sink = new Writable({
      write(chunk, _enc, cb) {
        lines.push(String(chunk))
        cb()
      },
    })
    const { app, cache } = setup(
      express,
      {},
      (app, cache) => {
        app.get('/off', cache.route({ enabled: false }), (_req, res) => {
          res.send('off')
        })
        app.get('/other-key', cache.route({ key: () => 'k' }), (_req, res) => {
          res.send('other key')
        })
      },
      t,
      (app) => app.use(pinoHttp({ logger: pino(sink) })),
    )
    await request(app).get('/off')
    await request(app).get('/other-key')
    await cache.settled()
    await request(app).get('/other-key')
    await delay(20)
    const done = lines.filter((l) => l.includes('"request completed"'))
    assert.equal(done.length, 3)
    for (const line of done) assert.equal(line.split('"cache":').length - 1, 1, line)
    assert.deepEqual(
      done.map((l) => (JSON.parse(l) as { cache: string }).cache),
      ['BYPASS', 'MISS', 'HIT'],
    )
  })
})
