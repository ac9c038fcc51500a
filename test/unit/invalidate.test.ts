/** The invalidation records (src/engine/invalidate.ts) on a MemoryStore, without HTTP. */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { EventEmitter } from 'node:events'
import type { ServerResponse } from 'node:http'
import { describe, it } from 'node:test'
import {
  ALL_TAG,
  InvalidationError,
  Invalidations,
  invalidateAfterUnsafe,
  pathTag,
} from '../../src/engine/invalidate.js'
import type { ResponseEntry } from '../../src/entry.js'
import { StoreGuard } from '../../src/guard.js'
import { RateLimitedLog, silentLogger } from '../../src/logging.js'
import { MemoryStore } from '../../src/store/memory.js'
import type { CacheStore } from '../../src/store/types.js'
import { delay } from '../helpers/app.js'
import { ControlledStore } from '../helpers/store.js'

const PREFIX = 'u'
const recordKey = (tag: string): string =>
  `${PREFIX}:inv:${createHash('sha256').update(tag).digest('base64url')}`

function records(store: CacheStore = new MemoryStore(), pollMs = 20) {
  const guard = new StoreGuard(store, new RateLimitedLog(silentLogger), 1000)
  return new Invalidations(guard, PREFIX, pollMs, 1000)
}

function entry(startedAt: number, tags: readonly string[]): ResponseEntry {
  return {
    kind: 'response',
    cachedAt: startedAt + 1,
    staleAt: startedAt + 60_000,
    graceUntil: startedAt + 120_000,
    errorUntil: startedAt + 120_000,
    initialAge: 0,
    status: 200,
    headers: [],
    body: Buffer.from('x'),
    startedAt,
    tags,
    shared: false,
  }
}

const deadline = () => Date.now() + 1000

describe('Invalidations', () => {
  it('an entry rendered before a hard invalidation of one of its tags is gone; after it, valid', async (t) => {
    const inv = records()
    t.after(() => inv.close())
    await inv.admits(['a', 'b'], Date.now() - 10_000, 1)
    const before = Date.now() - 10
    assert.equal(await inv.judge(entry(before, ['a', 'b']), deadline()), 'valid')
    await inv.invalidate(['a'], false)
    const after = Date.now() + 10
    assert.equal(await inv.judge(entry(before, ['a']), deadline()), 'gone')
    assert.equal(await inv.judge(entry(before, ['a', 'b']), deadline()), 'gone')
    assert.equal(await inv.judge(entry(after, ['a']), deadline()), 'valid')
    assert.equal(await inv.admits(['a'], before, 1), false)
    assert.equal(await inv.admits(['a'], after, 1), true)
  })

  it('soft makes it stale; hard beats soft; times never move backwards', async (t) => {
    const inv = records()
    t.after(() => inv.close())
    const T = Date.now()
    // Records exist from a render long ago (a missing one would count as "now").
    await inv.admits(['s'], T - 10_000, 1)
    await inv.invalidate(['s'], true, T)
    assert.equal(await inv.judge(entry(T - 5, ['s']), deadline()), 'stale')
    assert.equal(await inv.judge(entry(T + 5, ['s']), deadline()), 'valid')
    await inv.invalidate(['s'], false, T - 100)
    assert.equal(await inv.judge(entry(T - 200, ['s']), deadline()), 'gone')
    assert.equal(await inv.judge(entry(T - 5, ['s']), deadline()), 'stale', 'hard at T-100 only')
    // An older time recorded later changes nothing.
    await inv.invalidate(['s'], true, T - 1000)
    assert.equal(await inv.judge(entry(T - 5, ['s']), deadline()), 'stale')
    // A soft one keeps the earlier hard one.
    await inv.invalidate(['s'], true, T + 50)
    assert.equal(await inv.judge(entry(T - 200, ['s']), deadline()), 'gone')
    assert.equal(await inv.judge(entry(T + 20, ['s']), deadline()), 'stale')
  })

  it('the all-entries tag covers every entry', async (t) => {
    const inv = records()
    t.after(() => inv.close())
    await inv.admits([pathTag('/x'), 'y'], Date.now() - 10_000, 1)
    const before = Date.now() - 5
    assert.equal(await inv.judge(entry(before, [pathTag('/x'), 'y']), deadline()), 'valid')
    await inv.invalidate([ALL_TAG], false)
    assert.equal(await inv.judge(entry(before, []), deadline()), 'gone')
    assert.equal(await inv.judge(entry(before, [pathTag('/x'), 'y']), deadline()), 'gone')
    assert.equal(await inv.judge(entry(Date.now() + 5, ['y']), deadline()), 'valid')
  })

  it('a missing record counts as "invalidated now" and is written, so an eviction never resurrects', async (t) => {
    const store = new MemoryStore()
    const inv = records(store)
    t.after(() => inv.close())
    await inv.invalidate(['gone'], false)
    const purged = entry(Date.now() - 1000, ['gone'])
    await store.delete(recordKey('gone'))
    // A process with nothing memoised (a fresh one) reads the store.
    const fresh = records(store)
    t.after(() => fresh.close())
    assert.equal(await fresh.judge(purged, deadline()), 'gone')
    assert.notEqual(await store.get(recordKey('gone')), undefined, 'the record was written back')
    // A tag never seen is treated the same way.
    assert.equal(await fresh.judge(entry(Date.now() - 1000, ['never']), deadline()), 'gone')
  })

  it('a render that starts in the same millisecond as a reader-written record may store its result', {}, async (t) => {
    const inv = records()
    t.after(() => inv.close())
    const now = Date.now()
    t.mock.method(Date, 'now', () => now)
    assert.equal(await inv.judge(entry(now - 1000, ['m']), deadline()), 'gone')
    // The request that found the entry gone renders at once: same millisecond.
    assert.equal(await inv.admits(['m'], now, 1), true)
  })

  it('admits() writes a missing record just before the render started', async (t) => {
    const store = new MemoryStore()
    const inv = records(store)
    t.after(() => inv.close())
    const startedAt = Date.now()
    assert.equal(await inv.admits(['new-tag'], startedAt, 1), true)
    assert.equal(await inv.judge(entry(startedAt, ['new-tag']), deadline()), 'valid')
    assert.equal(await inv.judge(entry(startedAt - 1, ['new-tag']), deadline()), 'gone')
  })

  it('admits() has a background budget: a slow store still gets a new tag its record', async (t) => {
    // 60 ms a call against a 100 ms request timeout: get + add of a missing record take 120 ms.
    const store = new ControlledStore().rule('get', { delayMs: 60 }).rule('add', { delayMs: 60 })
    const guard = new StoreGuard(store, new RateLimitedLog(silentLogger), 1000)
    const inv = new Invalidations(guard, PREFIX, 20, 100)
    t.after(() => inv.close())
    assert.equal(await inv.admits(['slow-tag'], Date.now(), 1), true)
  })

  it('admits() reads the store, not the memo: an invalidation by another process during the render counts', async (t) => {
    const store = new MemoryStore()
    const mine = records(store)
    const theirs = records(store)
    t.after(() => {
      mine.close()
      theirs.close()
    })
    const startedAt = Date.now() - 50
    // Memoised as valid here...
    assert.equal(await mine.judge(entry(startedAt, ['p']), deadline()), 'gone')
    await mine.admits(['p'], startedAt, 1)
    // ...then invalidated elsewhere while the render runs.
    await theirs.invalidate(['p'], false)
    assert.equal(await mine.admits(['p'], startedAt, 1), false)
  })

  it('a render that started earlier is not refused by a record a later render created', async (t) => {
    const inv = records()
    t.after(() => inv.close())
    const now = Date.now()
    // Two renders of one fleet-wide tag in flight: the later one finishes first and finds the
    // record missing. It writes it a lock TTL before its own start, not just before it.
    assert.equal(await inv.admits(['shared'], now, 10_000), true)
    assert.equal(await inv.admits(['shared'], now - 500, 10_000), true)
  })

  it('judgeMemoised (the hot tier) knows nothing until the generation and every record are memoised', async (t) => {
    const inv = records()
    t.after(() => inv.close())
    const e = entry(Date.now() - 10, ['h'])
    assert.equal(inv.judgeMemoised(e, Date.now()), undefined)
    await inv.admits(['h'], e.startedAt, 1)
    assert.equal(
      inv.judgeMemoised(e, Date.now()),
      undefined,
      'no generation yet: nothing is trusted',
    )
    // A lookup starts the generation poll.
    assert.equal(await inv.judge(e, deadline()), 'valid')
    await delay(60)
    assert.equal(inv.judgeMemoised(e, Date.now()), 'valid')
    assert.equal(inv.judgeMemoised(entry(e.startedAt, ['h', 'unknown']), Date.now()), undefined)
    await inv.invalidate(['h'], false)
    assert.equal(
      inv.judgeMemoised(e, Date.now()),
      'gone',
      'a local invalidation is memoised at once',
    )
  })

  it("another process's invalidation reaches this memo within a poll", async (t) => {
    const store = new MemoryStore()
    const a = records(store, 20)
    const b = records(store, 20)
    t.after(() => {
      a.close()
      b.close()
    })
    const e = entry(Date.now() - 10, ['f'])
    await b.admits(['f'], e.startedAt, 1)
    assert.equal(await b.judge(e, deadline()), 'valid')
    await delay(60)
    assert.equal(b.judgeMemoised(e, Date.now()), 'valid')
    await a.invalidate(['f'], false)
    let seen = false
    for (let i = 0; i < 100 && !seen; i++) {
      await delay(10)
      // Polls ride on requests: each lookup ticks.
      b.tick()
      const memo = b.judgeMemoised(e, Date.now())
      if (memo === 'gone' || memo === undefined) seen = true
    }
    assert.ok(seen, 'the generation bump emptied the memo')
    assert.equal(await b.judge(e, deadline()), 'gone')
  })

  it('rejects with EFTC_INVALIDATION when the record or the generation cannot be written', async (t) => {
    class Refusing extends MemoryStore {
      refuse: 'none' | 'records' | 'generation' = 'none'
      override async set(key: string, value: Buffer, ttl: number): Promise<void> {
        const generation = key.endsWith(':inv-gen')
        if (
          (this.refuse === 'records' && !generation) ||
          (this.refuse === 'generation' && generation)
        )
          throw new Error('refused')
        return super.set(key, value, ttl)
      }
    }
    const store = new Refusing()
    const inv = records(store)
    t.after(() => inv.close())
    store.refuse = 'records'
    await assert.rejects(
      inv.invalidate(['r1', 'r2'], false),
      (err: unknown) =>
        err instanceof InvalidationError &&
        err.code === 'EFTC_INVALIDATION' &&
        /r1/.test(err.message) &&
        /r2/.test(err.message),
    )
    store.refuse = 'generation'
    await assert.rejects(inv.invalidate(['r1'], false), {
      code: 'EFTC_INVALIDATION',
      message: /fleet could not be told/,
    })
    store.refuse = 'none'
    await inv.invalidate(['r1'], false)
  })
})

/** Just enough of a ServerResponse for invalidateAfterUnsafe. */
class FakeResponse extends EventEmitter {
  statusCode = 200
  headersSent = false
  readonly headers = new Map<string, string>()
  getHeader(name: string): string | undefined {
    return this.headers.get(name)
  }
  writeHead(status: number): this {
    this.statusCode = status
    this.headersSent = true
    return this
  }
  end(): this {
    // A destroyed response (client gone) skips writeHead: Node does not write a head for it.
    return this
  }
}

function watch(res: FakeResponse, path = '/items', host = 'shop.example') {
  const runs: string[][] = []
  invalidateAfterUnsafe(
    { headers: { host }, hostname: host },
    res as unknown as ServerResponse,
    path,
    (tags) => runs.push(tags),
  )
  return runs
}

describe('invalidateAfterUnsafe (RFC 9111 §4.4)', () => {
  it('a 2xx/3xx invalidates the path and the same-host Location and Content-Location paths', () => {
    const res = new FakeResponse()
    res.statusCode = 201
    res.headers.set('location', '/items/7?x=1')
    res.headers.set('content-location', 'https://shop.example/items/7/summary')
    const runs = watch(res)
    res.emit('finish')
    res.emit('close')
    assert.deepEqual(runs, [[pathTag('/items'), pathTag('/items/7'), pathTag('/items/7/summary')]])
  })

  it('ignores another host in Location, and a Location that is not a URL', () => {
    const res = new FakeResponse()
    res.statusCode = 303
    res.headers.set('location', 'https://evil.example/items/7')
    res.headers.set('content-location', 'http://[::1')
    const runs = watch(res)
    res.emit('finish')
    assert.deepEqual(runs, [[pathTag('/items')]])
  })

  it('an error status (4xx/5xx) invalidates nothing', () => {
    for (const status of [400, 404, 500, 503]) {
      const res = new FakeResponse()
      res.statusCode = status
      const runs = watch(res)
      res.emit('finish')
      res.emit('close')
      assert.deepEqual(runs, [], String(status))
    }
  })

  it('client gone after the head: the committed 2xx still invalidates', () => {
    const res = new FakeResponse()
    res.writeHead(202)
    const runs = watch(res)
    res.emit('close')
    assert.deepEqual(runs, [[pathTag('/items')]])
  })

  it('client gone before the head: an explicit writeHead(2xx) afterwards invalidates', () => {
    const res = new FakeResponse()
    const runs = watch(res)
    res.emit('close')
    assert.deepEqual(runs, [])
    res.writeHead(200)
    assert.deepEqual(runs, [[pathTag('/items')]])
  })

  it('client gone before the head: res.end() with a 2xx afterwards invalidates', {}, () => {
    const res = new FakeResponse()
    const runs = watch(res)
    res.emit('close')
    res.statusCode = 200
    res.end()
    assert.deepEqual(runs, [[pathTag('/items')]])
  })
})
