/**
 * Waiting for another request's render, and every way that wait ends. Two caches on one MemoryStore
 * stand for two processes of a fleet; a ControlledStore in front of one of them makes its lock `add`
 * lose (another process holds the lock) or its entry reads fail at a chosen call, so each exit of
 * the poll loop and of the in-process wait is reached on purpose. Faults and counts target entry
 * and lock keys only: the invalidation records the engine reads and creates alongside are left
 * alone. Each lock round sends the `add` and a re-read of the entry together, the first round
 * included: entry read 1 is the lookup, 2 the first round's re-read, 3 on are poll rounds. Bounds
 * are generous: a path that misses its exit waits out `waitTimeout` (10 s here), far beyond them.
 */
import assert from 'node:assert/strict'
import { it } from 'node:test'
import type { Express } from 'express'
import {
  type CacheStore,
  MemoryStore,
  type ResponseCache,
  type ResponseCacheOptions,
  responseCache,
} from '../../src/index.js'
import { delay, fetchAnswer, type Listening, listen } from '../helpers/app.js'
import { type ExpressFactory, forEachExpress } from '../helpers/express.js'
import { ControlledStore, DelegatingStore, gate, keyKind, signal } from '../helpers/store.js'

/**
 * A store whose next entry read, once armed, reads its value at once and answers only `lagMs` later:
 * a reply still on the wire, describing the store as it was when the read was sent.
 */
class LaggingStore extends DelegatingStore {
  #lag: { ms: number; issued: () => void } | undefined
  /** Arms the lag; resolves once the lagging read has been sent (and its value taken). */
  lagNextEntryRead(ms: number): Promise<void> {
    return new Promise((issued) => {
      this.#lag = { ms, issued }
    })
  }
  override async get(key: string) {
    const lag = keyKind(key) === 'entry' ? this.#lag : undefined
    if (lag === undefined) return this.inner.get(key)
    this.#lag = undefined
    const value = await this.inner.get(key)
    lag.issued()
    await delay(lag.ms)
    return value
  }
}

/** Long enough that a wait which misses its exit is unmistakable. */
const WAIT_TIMEOUT = '10s'
/** An exit taken on time answers well inside this, even on a loaded 2-core runner. */
const EARLY_MS = 5000

interface Node {
  readonly url: string
  readonly cache: ResponseCache
  calls(): number
}

let prefixes = 0

/** One "process": a cache on `store`, sharing `prefix` with its peers, and an origin at /page. */
async function node(
  express: ExpressFactory,
  store: CacheStore,
  prefix: string,
  name: string,
  t: { after(fn: () => unknown): void },
  options: ResponseCacheOptions = {},
  routes?: (app: Express, count: () => number) => void,
): Promise<Node> {
  const cache = responseCache({
    store,
    prefix,
    pollInterval: '20ms',
    waitTimeout: WAIT_TIMEOUT,
    timeout: '1s',
    ...options,
  })
  let calls = 0
  const app = express()
  app.use(cache)
  if (routes) routes(app, () => ++calls)
  else
    app.get('/page', (_req, res) => {
      calls++
      res.send(`from ${name}`)
    })
  const server: Listening = await listen(app)
  t.after(async () => {
    await server.close()
    await cache.close()
  })
  return { url: server.url, cache, calls: () => calls }
}

/** Two processes on one shared store; process A sees it through a ControlledStore. */
async function pair(
  express: ExpressFactory,
  t: { after(fn: () => unknown): void },
  options: ResponseCacheOptions = {},
  routesB?: (app: Express, count: () => number) => void,
) {
  const shared = new MemoryStore()
  const storeA = new ControlledStore(shared)
  const prefix = `pair${++prefixes}`
  const a = await node(express, storeA, prefix, 'A', t, options)
  const b = await node(express, shared, prefix, 'B', t, options, routesB)
  return { storeA, a, b }
}

forEachExpress('polling for another process’s render', (express) => {
  it('serves the entry the lock holder stored, without calling its own handler', async (t) => {
    const { storeA, a, b } = await pair(express, t)
    storeA.rule('add', 'drop', { keys: 'lock' }) // another process holds the lock
    const waiting = fetchAnswer(`${a.url}/page`)
    // Lost the first round and one poll round: A is polling before B renders.
    await storeA.settledCalls('add', 2, { keys: 'lock' })
    const rendered = await fetchAnswer(`${b.url}/page`)
    assert.equal(rendered.text, 'from B')
    const got = await waiting
    assert.equal(got.status, 200)
    assert.equal(got.text, 'from B')
    assert.equal(got.cache, 'HIT')
    assert.equal(a.calls(), 0, 'the waiting process never rendered')
    assert.ok(got.ms < EARLY_MS, `served when the entry appeared (${Math.round(got.ms)} ms)`)
  })

  it('takes the lock when its holder is gone, renders once and stores for the fleet', async (t) => {
    const { storeA, a, b } = await pair(express, t)
    storeA.rule('add', (call) => (call.nOfKind === 1 ? 'drop' : undefined), { keys: 'lock' })
    const got = await fetchAnswer(`${a.url}/page`)
    assert.equal(got.text, 'from A')
    assert.equal(got.cache, 'MISS')
    assert.ok(got.ms < EARLY_MS, `did not wait out waitTimeout (${Math.round(got.ms)} ms)`)
    assert.equal(storeA.count('add', 'lock'), 2, 'lost once, then won the lock on a poll round')
    await a.cache.settled()
    const other = await fetchAnswer(`${b.url}/page`)
    assert.equal(other.cache, 'HIT')
    assert.equal(other.text, 'from A')
    assert.equal(b.calls(), 0)
  })

  it('a failed re-read ends the wait: the handler answers at once, nothing is stored', async (t) => {
    const { storeA, a } = await pair(express, t)
    storeA.rule('add', 'drop', { keys: 'lock' })
    // The lookup reads nothing; every re-read after it fails.
    storeA.rule('get', (call) => (call.nOfKind >= 2 ? 'reject' : undefined), { keys: 'entry' })
    const got = await fetchAnswer(`${a.url}/page`)
    assert.equal(got.text, 'from A')
    assert.equal(got.cache, 'MISS')
    assert.match(got.cacheStatus, /wait-timeout/)
    assert.ok(got.ms < EARLY_MS, `stopped polling a failing store (${Math.round(got.ms)} ms)`)
    assert.equal(
      storeA.count('get', 'entry', (c) => c.outcome === 'rejected'),
      1,
      'one failed re-read, then no more polling',
    )
    await a.cache.settled()
    assert.equal(storeA.count('set', 'entry'), 0, 'a render nobody coalesced on is not stored')
  })

  it('a failed lock retry ends the wait: the handler answers at once, nothing is stored', async (t) => {
    const { storeA, a } = await pair(express, t)
    storeA.rule('add', (call) => (call.nOfKind === 1 ? 'drop' : 'reject'), { keys: 'lock' })
    const got = await fetchAnswer(`${a.url}/page`)
    assert.equal(got.text, 'from A')
    assert.equal(got.cache, 'MISS')
    assert.match(got.cacheStatus, /wait-timeout/)
    assert.ok(got.ms < EARLY_MS, `stopped polling a failing store (${Math.round(got.ms)} ms)`)
    assert.equal(storeA.count('add', 'lock'), 2, 'one lost add, one failed retry')
    await a.cache.settled()
    assert.equal(storeA.count('set', 'entry'), 0)
  })

  it('a hit-for-miss marker stored meanwhile ends the wait: its own handler answers', async (t) => {
    const { storeA, a, b } = await pair(express, t, {}, (app, count) => {
      app.get('/page', (_req, res) => {
        count()
        res.set('cache-control', 'private').send('private to B’s client')
      })
    })
    storeA.rule('add', 'drop', { keys: 'lock' })
    const waiting = fetchAnswer(`${a.url}/page`)
    await storeA.settledCalls('add', 2, { keys: 'lock' }) // polling
    // The lock holder's render is uncacheable: it leaves a hit-for-miss marker.
    const rendered = await fetchAnswer(`${b.url}/page`)
    assert.equal(rendered.text, 'private to B’s client')
    await b.cache.settled()
    const got = await waiting
    assert.equal(got.text, 'from A', 'never the private response of another process')
    assert.equal(got.cache, 'MISS')
    assert.ok(got.ms < EARLY_MS, `stopped waiting at the marker (${Math.round(got.ms)} ms)`)
    assert.equal(a.calls(), 1)
    assert.equal(storeA.count('set', 'entry'), 0)
  })

  it('gives up after waitTimeout: the handler answers and the result is not stored', async (t) => {
    const { storeA, a } = await pair(express, t, { waitTimeout: '300ms' })
    storeA.rule('add', 'drop', { keys: 'lock' })
    const got = await fetchAnswer(`${a.url}/page`)
    assert.equal(got.text, 'from A')
    assert.equal(got.cache, 'MISS')
    assert.match(got.cacheStatus, /wait-timeout/)
    assert.ok(storeA.count('get', 'entry') >= 3, 'it re-read the entry on poll rounds')
    assert.ok(storeA.count('add', 'lock') >= 2, 'and tried the lock again')
    assert.equal(a.calls(), 1)
    await a.cache.settled()
    assert.equal(storeA.count('set', 'entry'), 0)
  })
})

forEachExpress('waiting for a render in the same process', (express) => {
  it('a waiter with other Vary values gets its own variant; one with the same values is coalesced', async (t) => {
    const store = new ControlledStore()
    const held = gate()
    const entered = signal()
    const a = await node(express, store, `vary${++prefixes}`, 'A', t, {}, (app, count) => {
      app.get('/greeting', async (req, res) => {
        if (count() === 1) {
          entered.raise()
          await held.opened
        }
        const lang = String(req.headers['accept-language'])
        res.set('vary', 'Accept-Language').send(lang.startsWith('fr') ? 'bonjour' : 'hello')
      })
    })
    const url = `${a.url}/greeting`
    const en = fetchAnswer(url, { 'accept-language': 'en' })
    await entered.wait('the first render to start')
    const before = store.count('get', 'entry')
    const fr = fetchAnswer(url, { 'accept-language': 'fr' })
    const en2 = fetchAnswer(url, { 'accept-language': 'en' })
    // Both have read the entry and found nothing: they now wait on the render in flight.
    await store.settledCalls('get', before + 2, { keys: 'entry' })
    held.open()
    const [first, french, second] = await Promise.all([en, fr, en2])
    assert.equal(first.text, 'hello')
    assert.equal(french.text, 'bonjour', 'never the English variant it waited for')
    assert.equal(french.cache, 'MISS')
    assert.equal(second.text, 'hello')
    assert.equal(second.cache, 'HIT', 'same variant: served from the render it waited for')
    assert.equal(a.calls(), 2)
    await a.cache.settled()
    const frHit = await fetchAnswer(url, { 'accept-language': 'fr' })
    assert.equal(frHit.cache, 'HIT', 'the other variant was stored too')
    assert.equal(frHit.text, 'bonjour')
    assert.equal((await fetchAnswer(url, { 'accept-language': 'en' })).text, 'hello')
    assert.equal(a.calls(), 2)
  })

  it('a waiter on an uncacheable render runs its own handler at once, never sharing it', async (t) => {
    const store = new ControlledStore()
    const held = gate()
    const entered = signal()
    const a = await node(express, store, `unc${++prefixes}`, 'A', t, {}, (app, count) => {
      app.get('/mine', async (req, res) => {
        if (count() === 1) {
          entered.raise()
          await held.opened
        }
        res.set('cache-control', 'private').send(`for ${req.headers['x-user']}`)
      })
    })
    const url = `${a.url}/mine`
    const alice = fetchAnswer(url, { 'x-user': 'alice' })
    await entered.wait('the first render to start')
    const before = store.count('get', 'entry')
    const bob = fetchAnswer(url, { 'x-user': 'bob' })
    await store.settledCalls('get', before + 1, { keys: 'entry' })
    held.open()
    const [forAlice, forBob] = await Promise.all([alice, bob])
    assert.equal(forAlice.text, 'for alice')
    assert.equal(forBob.text, 'for bob')
    assert.equal(forBob.cache, 'MISS')
    assert.match(forBob.cacheStatus, /uncoalesced/)
    assert.ok(forBob.ms < EARLY_MS, `released when the render proved uncacheable`)
    assert.equal(a.calls(), 2)
  })

  it('a waiter whose render takes longer than waitTimeout runs its own handler, unstored', async (t) => {
    const store = new ControlledStore()
    const held = gate()
    const entered = signal()
    t.after(() => held.open())
    const a = await node(
      express,
      store,
      `slow${++prefixes}`,
      'A',
      t,
      { waitTimeout: '200ms' },
      (app, count) => {
        app.get('/slow', async (_req, res) => {
          const n = count()
          if (n === 1) {
            entered.raise()
            await held.opened
          }
          res.send(`render ${n}`)
        })
      },
    )
    const url = `${a.url}/slow`
    const first = fetchAnswer(url)
    await entered.wait('the first render to start')
    const waiter = await fetchAnswer(url)
    assert.equal(waiter.text, 'render 2')
    assert.equal(waiter.cache, 'MISS')
    assert.match(waiter.cacheStatus, /uncoalesced/)
    await a.cache.settled()
    assert.equal(store.count('set', 'entry'), 0, 'the impatient render is not stored')
    held.open()
    assert.equal((await first).text, 'render 1')
    await a.cache.settled()
    const hit = await fetchAnswer(url)
    assert.equal(hit.cache, 'HIT')
    assert.equal(hit.text, 'render 1', 'the leader stores its render')
  })
})

forEachExpress('hits sharing a read in flight', (express) => {
  it('concurrent requests for one key make one entry read; each judges it itself', async (t) => {
    const store = new ControlledStore(new MemoryStore())
    const a = await node(express, store, `share${++prefixes}`, 'A', t)
    assert.equal((await fetchAnswer(`${a.url}/page`)).cache, 'MISS')
    await a.cache.settled()
    // Slow entry reads, so that all the requests below arrive while the first read is in flight.
    store.rule('get', { delayMs: 200 }, { keys: 'entry' })
    const before = store.count('get', 'entry')
    const replies = await Promise.all(Array.from({ length: 8 }, () => fetchAnswer(`${a.url}/page`)))
    for (const r of replies) {
      assert.equal(r.status, 200)
      assert.equal(r.cache, 'HIT')
      assert.equal(r.text, 'from A')
    }
    assert.equal(store.count('get', 'entry') - before, 1, 'one read for the eight requests')
    assert.equal(a.calls(), 1)
    // The read is shared only while it is in flight: the next request reads again.
    assert.equal((await fetchAnswer(`${a.url}/page`)).cache, 'HIT')
    assert.equal(store.count('get', 'entry') - before, 2)
  })

  it('a request that joins a read made before an invalidation does not serve what it removed', async (t) => {
    const store = new ControlledStore(new MemoryStore())
    const a = await node(express, store, `share${++prefixes}`, 'A', t, {}, (app, count) => {
      app.get('/page', (_req, res) => {
        res.send(`render ${count()}`)
      })
    })
    assert.equal((await fetchAnswer(`${a.url}/page`)).text, 'render 1')
    await a.cache.settled()
    store.rule('get', { delayMs: 300 }, { keys: 'entry' })
    const first = fetchAnswer(`${a.url}/page`)
    await delay(50)
    await a.cache.invalidate('/page')
    const second = await fetchAnswer(`${a.url}/page`)
    // Both joined the read sent before the invalidation; the entry it returns is judged against
    // the records as they are when it arrives, so neither request gets the removed copy.
    assert.notEqual((await first).text, 'render 1')
    assert.notEqual(second.text, 'render 1')
  })

  it('the re-read sent with a lock add never joins an older read: one render per key', async (t) => {
    const shared = new MemoryStore()
    const lagging = new LaggingStore(shared)
    const storeA = new ControlledStore(lagging)
    const prefix = `share${++prefixes}`
    const entered = signal()
    const release = gate()
    // A store deadline well past the late read, which must arrive, not time out.
    const options = { pollInterval: '300ms', timeout: '5s' } as const
    const a = await node(express, storeA, prefix, 'A', t, options)
    const b = await node(express, shared, prefix, 'B', t, options, (app, count) => {
      app.get('/page', async (_req, res) => {
        count()
        entered.raise()
        await release.opened
        res.send('from B')
      })
    })
    // B holds the lock and renders; A's first request loses the lock and polls every 300 ms.
    const rendered = fetchAnswer(`${b.url}/page`)
    await entered.wait('B renders')
    const polling = fetchAnswer(`${a.url}/page`)
    await storeA.settledCalls('add', 1, { keys: 'lock' })
    // A second request to A: its read reflects the store before B stores, and answers late.
    const issued = lagging.lagNextEntryRead(1500)
    const late = fetchAnswer(`${a.url}/page`)
    await issued
    // B stores its render and releases the lock while that read is still on its way.
    release.open()
    assert.equal((await rendered).text, 'from B')
    await b.cache.settled()
    // A's next poll round wins the free lock; its re-read must see B's entry, not join the late read.
    const got = await polling
    assert.equal(got.text, 'from B')
    assert.equal(got.cache, 'HIT')
    assert.equal((await late).text, 'from B')
    assert.equal(a.calls(), 0, 'one render for the fleet')
  })
})
