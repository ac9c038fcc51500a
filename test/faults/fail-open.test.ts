/**
 * Fail-open, one store operation at a time (on every key, or on one kind of key: entries, mint
 * locks, invalidation records): a store that rejects, throws synchronously or never settles costs a
 * request at most its deadline, and the handler answers. Also the `key` option throwing, and a
 * client that leaves while the cache is still reading the store. A ControlledStore over a
 * MemoryStore injects the faults; every request carries a client-side timeout, so a request the
 * cache never answers fails the test instead of hanging it.
 */
import assert from 'node:assert/strict'
import { request as httpRequest } from 'node:http'
import { it } from 'node:test'
import type { Express } from 'express'
import { type ResponseCache, type ResponseCacheOptions, responseCache } from '../../src/index.js'
import { type Answer, fetchAnswer, listen } from '../helpers/app.js'
import { type ExpressFactory, forEachExpress } from '../helpers/express.js'
import {
  ControlledStore,
  type Fault,
  gate,
  type KeyKind,
  type StoreOp,
  signal,
} from '../helpers/store.js'

/** The request deadline the cache is given. */
const TIMEOUT_MS = 100
/** A request the cache held for its deadline still answers well inside this on a loaded runner. */
const BOUND_MS = 3000
/** Client-side: past this the request counts as never answered. */
const CLIENT_TIMEOUT_MS = 8000

let prefixes = 0

async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_r, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not done within ${ms} ms`)), ms)
  })
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer))
}

async function setup(
  express: ExpressFactory,
  store: ControlledStore,
  t: { after(fn: () => unknown): void },
  options: ResponseCacheOptions = {},
  routes?: (app: Express, cache: ResponseCache, count: () => number) => void,
  /** Middleware mounted before the cache. */
  pre?: (app: Express) => void,
) {
  const cache = responseCache({
    store,
    prefix: `open${++prefixes}`,
    timeout: `${TIMEOUT_MS}ms`,
    waitTimeout: '10s',
    ...options,
  })
  let calls = 0
  const app = express()
  pre?.(app)
  app.use(cache)
  if (routes) routes(app, cache, () => ++calls)
  else {
    app.get('/page', (_req, res) => {
      res.send(`page ${++calls}`)
    })
    app.post('/page', (_req, res) => {
      res.send('posted')
    })
  }
  const server = await listen(app)
  t.after(async () => {
    store.releaseHung()
    await server.close()
    await within(cache.close(), 5000, 'cache.close()')
  })
  const get = async (path: string, headers: Record<string, string> = {}): Promise<Answer> => {
    const r = await fetchAnswer(`${server.url}${path}`, headers, CLIENT_TIMEOUT_MS)
    assert.ok(r.ms < BOUND_MS, `${path} answered in ${Math.round(r.ms)} ms (bound ${BOUND_MS})`)
    return r
  }
  return { url: server.url, cache, get, calls: () => calls }
}

interface Case {
  readonly op: StoreOp
  /** Only calls on these keys are faulty (all, when absent). */
  readonly keys?: KeyKind
  /** What the second and third GETs say (the first always renders). */
  readonly later: 'HIT' | 'MISS'
  /** Whether the engine calls this op on these keys at all while serving GETs. */
  readonly called: boolean
}

const CASES: readonly Case[] = [
  { op: 'get', later: 'MISS', called: true }, // nothing can be read
  { op: 'get', keys: 'entry', later: 'MISS', called: true },
  // An entry that cannot be judged is not served, and a render whose tags cannot be checked against
  // the invalidation records is not stored.
  { op: 'get', keys: 'records', later: 'MISS', called: true },
  { op: 'set', later: 'MISS', called: true }, // nothing was stored
  { op: 'add', later: 'MISS', called: true },
  // No lock: the render goes on without it and is stored (a peer may render the key too).
  { op: 'add', keys: 'lock', later: 'HIT', called: true },
  // Missing invalidation records are created with add (so that an evicted one never resurrects a
  // purged entry): without them nothing is stored rather than stored unchecked.
  { op: 'add', keys: 'records', later: 'MISS', called: true },
  // Unsafe methods invalidate by writing records: nothing deletes.
  { op: 'delete', later: 'HIT', called: false },
  { op: 'compareAndDelete', later: 'HIT', called: true }, // only lock release
]

forEachExpress('a faulty store never fails a request', (express) => {
  for (const { op, keys, later, called } of CASES) {
    for (const fault of ['reject', 'throw', 'hang'] as const satisfies readonly Fault[]) {
      const what =
        keys === undefined
          ? op
          : `${op} of ${keys === 'records' ? 'invalidation records' : `${keys} keys`}`
      it(`${what} that ${fault === 'throw' ? 'throws synchronously' : fault === 'hang' ? 'never settles' : 'rejects'}: the handler answers within the deadline`, async (t) => {
        const store = new ControlledStore().rule(op, fault, { keys })
        const { cache, get, calls } = await setup(express, store, t)
        const first = await get('/page')
        assert.equal(first.status, 200)
        assert.equal(first.text, 'page 1')
        assert.equal(first.cache, 'MISS')
        // Background calls (write-back, lock release) have their own deadline: settled() returns.
        await within(cache.settled(), 5000, 'write-back')
        for (let i = 0; i < 2; i++) {
          const again = await get('/page')
          assert.equal(again.status, 200)
          assert.equal(again.cache, later, `request ${i + 2}`)
          assert.equal(again.text, later === 'HIT' ? 'page 1' : `page ${i + 2}`)
          await within(cache.settled(), 5000, 'write-back')
        }
        assert.equal(calls(), later === 'HIT' ? 1 : 3)
        if (called) assert.ok(store.count(op, keys) > 0, `the faulty ${what} was called`)
        else assert.equal(store.count(op), 0, `nothing calls ${op}`)
      })
    }
  }

  it('a store on which every call hangs: concurrent requests are all answered, in-process coalescing only', async (t) => {
    const store = new ControlledStore()
    for (const op of ['get', 'set', 'add', 'delete', 'compareAndDelete'] as const)
      store.rule(op, 'hang')
    const { cache, get, calls } = await setup(express, store, t)
    const replies = await Promise.all(Array.from({ length: 5 }, () => get('/page')))
    assert.ok(replies.every((r) => r.status === 200 && /^page \d$/.test(r.text)))
    // The five share one read, which times out: one render in this process answers those that
    // waited for it (coalesced HITs); each MISS is one handler call.
    const misses = replies.filter((r) => r.cache === 'MISS')
    assert.ok(misses.length >= 1)
    assert.ok(replies.every((r) => r.cache === 'MISS' || r.cache === 'HIT'))
    assert.equal(calls(), misses.length)
    for (const r of replies) assert.ok(misses.some((m) => m.text === r.text))
    await within(cache.settled(), 5000, 'write-backs on a hung store end by their deadline')
  })

  it('a POST whose record write fails is still answered, and this process obeys it', async (t) => {
    const store = new ControlledStore()
    const { url, cache, get } = await setup(express, store, t)
    assert.equal((await get('/page')).text, 'page 1')
    await within(cache.settled(), 5000, 'write-back')
    assert.equal((await get('/page')).cache, 'HIT')
    // The POST invalidates by writing its path's record (and the generation): both fail.
    store.rule('set', 'reject', { keys: 'records' })
    const r = await fetch(`${url}/page`, {
      method: 'POST',
      signal: AbortSignal.timeout(CLIENT_TIMEOUT_MS),
    })
    assert.equal(r.status, 200)
    assert.equal(await r.text(), 'posted')
    await within(cache.settled(), 5000, 'invalidation')
    assert.ok(
      store.count('set', 'records', (c) => c.outcome === 'rejected') >= 1,
      'the record write was tried and failed',
    )
    // The other processes cannot know, but this one recorded it before any round trip.
    const after = await get('/page')
    assert.equal(after.cache, 'MISS')
    assert.equal(after.text, 'page 2')
    await within(cache.settled(), 5000, 'write-back')
    const hit = await get('/page')
    assert.equal(hit.cache, 'HIT', 'the new render is stored again')
    assert.equal(hit.text, 'page 2')
  })
})

forEachExpress('the `key` option throwing', (express) => {
  it('passes the request to the handler uncached, app-wide and per route', async (t) => {
    const store = new ControlledStore()
    const { url, get, calls } = await setup(
      express,
      store,
      t,
      {
        key: (req) => {
          if (req.path === '/app-throws') throw new Error('no tenant')
          return undefined
        },
      },
      (app, cache, count) => {
        app.get('/app-throws', (_req, res) => {
          res.send(`app ${count()}`)
        })
        app.get(
          '/route-throws',
          cache.route({
            key: () => {
              throw new Error('no user')
            },
          }),
          (_req, res) => {
            res.send(`route ${count()}`)
          },
        )
        // A key that is not a string is a bug of the same kind.
        app.get(
          '/not-a-string',
          cache.route({ key: () => 42 as unknown as string }),
          (_req, res) => {
            res.send(`number ${count()}`)
          },
        )
        app.post('/app-throws', (_req, res) => {
          res.send('posted')
        })
      },
    )
    for (const [path, name] of [
      ['/app-throws', 'app'],
      ['/route-throws', 'route'],
      ['/not-a-string', 'number'],
    ] as const) {
      const before = calls()
      for (let i = 1; i <= 2; i++) {
        const r = await get(path)
        assert.equal(r.status, 200, path)
        assert.equal(r.text, `${name} ${before + i}`, `${path}: rendered every time`)
        assert.equal(r.cache, 'BYPASS', path)
        assert.match(r.cacheStatus, /key-error/, path)
      }
    }
    const posted = await fetch(`${url}/app-throws`, {
      method: 'POST',
      signal: AbortSignal.timeout(CLIENT_TIMEOUT_MS),
    })
    assert.equal(await posted.text(), 'posted')
  })
})

forEachExpress('a client gone while the cache reads the store', (express) => {
  it('leaks no lock and no waiters: the next request for the key is served at once', async (t) => {
    const store = new ControlledStore()
    const readHeld = gate()
    // The lookup's read of the entry; the invalidation records are read alongside, unhindered.
    store.rule('get', (call) => (call.nOfKind === 1 ? { after: readHeld.opened } : undefined), {
      keys: 'entry',
    })
    t.after(() => readHeld.open())
    const gone = signal()
    const { url, cache, get } = await setup(
      express,
      store,
      t,
      // The read is held past its gate, not past its deadline: the lock is taken after it.
      { timeout: '5s' },
      (app, _cache, count) => {
        app.get('/page', (_req, res) => {
          res.send(`page ${count()}`)
        })
      },
      (app) => {
        app.use((_req, res, next) => {
          res.once('close', () => {
            if (!res.writableFinished) gone.raise()
          })
          next()
        })
      },
    )
    const abandoned = httpRequest(`${url}/page`)
    abandoned.on('error', () => {})
    abandoned.end()
    await waitUntil(() => store.count('get', 'entry') >= 1, 'the first read to start')
    abandoned.destroy()
    await gone.wait('the server to see the client go')
    readHeld.open()
    await store.settledCalls('get', 1, { keys: 'entry' })
    await within(cache.settled(), 5000, 'the abandoned render to settle')
    // Whatever lock the abandoned request took is gone from the store, not left to its TTL.
    for (const call of store.calls.filter((c) => c.op === 'add' && c.kind === 'lock'))
      assert.equal(await store.inner.get(call.key), undefined, 'no lock left behind')
    const next = await get('/page')
    assert.equal(next.status, 200)
    assert.match(next.text, /^page \d$/)
    assert.equal(next.cache, 'MISS')
    await cache.settled()
    const hit = await get('/page')
    assert.equal(hit.cache, 'HIT', 'the key is cached normally afterwards')
    assert.equal(hit.text, next.text)
  })
})

async function waitUntil(check: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const started = Date.now()
  while (!check()) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 5))
  }
}
