/**
 * memcached's limits, hit by traffic through Express: the connection limit, odd custom keys,
 * oversized values, garbage and truncated values under the app's keys, the request-id counter near
 * 2^31, and a tiny memory limit that evicts entries and locks under load.
 *
 * Each scenario asserts: every request gets its own correct body, none takes longer than origin +
 * deadline + slack, no 5xx, nothing escapes as an unhandled rejection, and caching works again
 * once the fault ends, in the same app. Each records a row for scripts/fault-report.mjs.
 *
 * The engine does not depend on the Express major (test/http covers both), so this runs on Express 5.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import type { Express, Request } from 'express'
import { type Entry, encodeEntry } from '../../src/entry.js'
import { MemcachedStore } from '../../src/store/memcached.js'
import { responseEntry } from '../helpers/entry.js'
import { EXPRESS_VERSIONS } from '../helpers/express.js'
import { type MemcachedProcess, startMemcached } from '../helpers/memcached.js'
import {
  bodyFor,
  mergeReports,
  recordFaultRow,
  runTraffic,
  type TrafficApp,
  type TrafficOptions,
  type TrafficReport,
  trafficApp,
} from '../helpers/traffic.js'
import {
  assertClean,
  BOUND_MS,
  DEADLINE_MS,
  holdConnectionSlots,
  keyOf,
  ORIGIN_MS,
  SLACK_MS,
  trackEscapes,
  untilHits,
  watchEvictions,
} from './tools.js'

const express = EXPRESS_VERSIONS[0]!.express
/** Moving megabyte bodies through a starved CPU takes longer; a hang would still take 5-10 s. */
const BIG_BOUND_MS = BOUND_MS + 1000
/** How long traffic runs under a fault. */
const FAULT_MS = 1500
const ITEMS = Array.from({ length: 30 }, (_, i) => `/item/${i}`)

/** Traffic over `paths` for `ms`, and on while `more()` (when given) says so. */
function timedTraffic(
  app: TrafficApp,
  paths: readonly string[],
  ms: number,
  concurrency = 10,
  extra: TrafficOptions = {},
  more: () => boolean = () => false,
): Promise<TrafficReport> {
  const stopAt = Date.now() + ms
  return runTraffic(app.url, Number.POSITIVE_INFINITY, paths.length, concurrency, {
    path: (i) => paths[i % paths.length]!,
    stop: () => Date.now() > stopAt && !more(),
    ...extra,
  })
}

const sized = new Map<string, string>()
/** `size` bytes derived from the path alone, so the client can check them (memoized). */
function sizedBody(path: string, size: number): string {
  const id = `${path}:${size}`
  let body = sized.get(id)
  if (body === undefined) {
    const unit = `${bodyFor(path)}\n`
    body = unit.repeat(Math.ceil(size / unit.length)).slice(0, size)
    sized.set(id, body)
  }
  return body
}

const escapes = trackEscapes()
after(() => {
  escapes.dispose()
  assert.deepEqual(escapes.escaped, [], 'no unhandled rejection or uncaught exception')
})

/** An app on `mc`, and a second store that writes straight under the app's keys. */
async function withVandal(t: { after(fn: () => unknown): void }, mc: MemcachedProcess) {
  const app = await trafficApp(
    express,
    { servers: mc.address },
    { timeout: DEADLINE_MS / 1000 },
    ORIGIN_MS,
  )
  t.after(() => app.close())
  const vandal = new MemcachedStore({ servers: mc.address, timeout: '1s' })
  t.after(() => vandal.close())
  return { app, vandal }
}

describe('memcached limits under load', () => {
  let mc: MemcachedProcess
  before(async () => {
    mc = await startMemcached()
  })
  after(async () => {
    await mc.stop()
  })

  it('custom keys that are very long, binary, or full of whitespace are hashed and cached', async (t) => {
    const shapes: ((id: string) => string)[] = [
      (id) => `${'k'.repeat(20_000)}${id}`,
      (id) => `\u0000\u0001\u007f\u00ff\r\n\u2028\ud800${id}\udfff\uffff`,
      (id) => ` tenant ${id}\t with  spaces\n\v\f`,
      (id) => `${'€'.repeat(300)}${id}`,
      (id) => `${id}~lock`,
    ]
    const key = (req: Request): string => {
      const tenant = req.get('x-tenant')
      if (tenant !== undefined) return `${'t'.repeat(20_000)} ${tenant}`
      const id = req.path.slice(req.path.lastIndexOf('/') + 1)
      return shapes[Number(id) % shapes.length]!(id)
    }
    const app = await trafficApp(
      express,
      // Keys are under test here, not deadlines: a 1 s deadline keeps a loaded runner from
      // turning hits into (correct) misses.
      { servers: mc.address, timeout: '1s' },
      { timeout: 1, key },
      ORIGIN_MS,
    )
    t.after(() => app.close())
    const warm = await untilHits(app, ITEMS, 'custom keys: warm-up')
    const load = await timedTraffic(app, ITEMS, 1000, 20)
    assertClean(load, 'custom keys under load')
    assert.ok(
      load.hits >= 0.9 * load.requests,
      `custom keys stay hits (${JSON.stringify(load.outcomes)})`,
    )
    // Keys that differ only in their last character, 20 KB in, are still different entries.
    const outcome = async (tenant: string): Promise<string | null> => {
      const r = await fetch(`${app.url}/item/0`, { headers: { 'x-tenant': tenant } })
      assert.equal(await r.text(), bodyFor('/item/0'))
      await app.cache.settled()
      return r.headers.get('x-cache')
    }
    assert.deepEqual(
      [await outcome('a'), await outcome('a'), await outcome('b'), await outcome('b')],
      ['MISS', 'HIT', 'MISS', 'HIT'],
    )
    t.diagnostic(
      JSON.stringify(
        recordFaultRow('custom key: long / binary / whitespace', mergeReports(warm, load)),
      ),
    )
  })

  it('oversized responses under load pass through whole; the other keys keep their hits', async (t) => {
    let big = 0
    const paths = [
      ...ITEMS,
      ...Array.from({ length: 3 }, (_, i) => `/big/${i}`),
      ...Array.from({ length: 3 }, (_, i) => `/edge/${i}`),
    ]
    // An item's value may be at most this for a ~120-byte key; an `/edge` body fits the capture
    // limit, but not once headers and the entry envelope are added.
    let edgeSize = 0
    const expect = (path: string): string =>
      path.startsWith('/big/')
        ? sizedBody(path, 1_200_000)
        : path.startsWith('/edge/')
          ? sizedBody(path, edgeSize)
          : bodyFor(path)
    const app = await trafficApp(
      express,
      { servers: mc.address },
      { timeout: DEADLINE_MS / 1000 },
      ORIGIN_MS,
      (app: Express) => {
        app.get(['/big/:id', '/edge/:id'], async (req, res) => {
          big++
          await sleep(ORIGIN_MS)
          res.type('text').send(expect(req.path))
        })
      },
    )
    t.after(() => app.close())
    edgeSize = app.store.maxValueBytes(120) - 16
    await untilHits(app, ITEMS, 'oversized: warm-up')
    let smallHits = 0
    let small = 0
    let bigHits = 0
    let bigRequests = 0
    const load = await timedTraffic(
      app,
      paths,
      FAULT_MS,
      5,
      {
        expect,
        observe: (path, outcome) => {
          if (path.startsWith('/item/')) {
            small++
            if (outcome === 'HIT') smallHits++
            return
          }
          bigRequests++
          if (outcome === 'HIT') bigHits++
        },
      },
      () => bigRequests < 18,
    )
    assertClean(load, 'oversized under load', BIG_BOUND_MS)
    assert.equal(bigHits, 0, 'an oversized response is never served from the cache')
    assert.ok(big >= bigRequests, `each oversized response was rendered (${big} of ${bigRequests})`)
    assert.ok(smallHits >= 0.85 * small, `small keys stay hits (${smallHits}/${small})`)
    const recovery = await untilHits(app, ITEMS, 'oversized: afterwards')
    t.diagnostic(
      JSON.stringify(
        recordFaultRow(
          'oversized values (1.2 MB and item limit - 16 B)',
          mergeReports(load, recovery),
        ),
      ),
    )
  })

  it('oversized values the server rejects (store itemSize larger than memcached -I): still correct', async (t) => {
    const paths = [...ITEMS, ...Array.from({ length: 3 }, (_, i) => `/big/${i}`)]
    const expect = (path: string): string =>
      path.startsWith('/big/') ? sizedBody(path, 1_200_000) : bodyFor(path)
    const app = await trafficApp(
      express,
      // Misconfigured on purpose: the store believes items may be 4 MiB; memcached -I is 1 MiB.
      { servers: mc.address, itemSize: 4 * 1024 * 1024 },
      { timeout: DEADLINE_MS / 1000, maxBodySize: 4 * 1024 * 1024 },
      ORIGIN_MS,
      (app: Express) => {
        app.get('/big/:id', async (req, res) => {
          await sleep(ORIGIN_MS)
          res.type('text').send(expect(req.path))
        })
      },
    )
    t.after(() => app.close())
    await untilHits(app, ITEMS, 'rejected values: warm-up')
    const load = await timedTraffic(app, paths, FAULT_MS, 5, { expect })
    assertClean(load, 'values rejected by memcached', BIG_BOUND_MS)
    await app.cache.settled()
    const recovery = await untilHits(app, ITEMS, 'rejected values: afterwards')
    t.diagnostic(
      JSON.stringify(
        recordFaultRow(
          'oversized values rejected by the server (-I mismatch)',
          mergeReports(load, recovery),
        ),
      ),
    )
  })

  it('garbage and truncated values written under the app’s keys under load are misses, then overwritten', async (t) => {
    const { app, vandal } = await withVandal(t, mc)
    const garbage = garbageFor(false)
    await untilHits(app, ITEMS, 'garbage: warm-up')
    let written = 0
    let done = false
    const vandalism = (async () => {
      while (!done) {
        const path = ITEMS[Math.floor(Math.random() * ITEMS.length)]!
        await vandal.set(keyOf(app.prefix, path), garbage(path), 60).catch(() => undefined)
        written++
        await sleep(2)
      }
    })()
    const load = await timedTraffic(app, ITEMS, FAULT_MS, 10, {}, () => written < 100)
    done = true
    await vandalism
    assertClean(load, 'garbage values under load')
    assert.ok(written >= 100, `${written} garbage values written`)
    await app.cache.settled()
    // Every key answers a hit again: each garbage value was replaced by a good entry.
    const recovery = await untilHits(app, ITEMS, 'garbage: afterwards', {}, 1)
    t.diagnostic(
      JSON.stringify(
        recordFaultRow(
          'garbage / truncated values under the app’s keys',
          mergeReports(load, recovery),
        ),
      ),
    )
  })

  it('a stored entry whose headers Node refuses is a miss, is overwritten, and leaks no header', async (t) => {
    const { app, vandal } = await withVandal(t, mc)
    const garbage = garbageFor(true)
    for (const path of ITEMS) await vandal.set(keyOf(app.prefix, path), garbage(path), 60)
    let leaked = 0
    const load = await runTraffic(app.url, 3 * ITEMS.length, ITEMS.length, 5)
    for (const path of ITEMS.slice(0, 5)) {
      const r = await fetch(app.url + path)
      await r.text()
      if (r.headers.get('set-cookie') !== null || r.headers.get('x-planted') !== null) leaked++
    }
    assertClean(load, 'unservable entries')
    assert.equal(leaked, 0, 'no header of the unservable entry reaches the response')
    await untilHits(app, ITEMS, 'unservable entries: afterwards', {}, 1)
  })

  it('request ids forced near 2^31 (and past it) mid-traffic: hits all along', async (t) => {
    const app = await trafficApp(
      express,
      // Request ids are under test here, not deadlines (see the custom keys test).
      { servers: mc.address, timeout: '1s' },
      { timeout: 1 },
      ORIGIN_MS,
    )
    t.after(() => app.close())
    await untilHits(app, ITEMS, 'sequence: warm-up')
    // Mid-traffic, the counter is set just below the store's reset point (2^30, so it crosses it
    // by itself), then near and past 2^31 and at 2^32 - 1 (each of which makes the next id 1).
    // Each jump comes 100 responses after the previous one: memcached answers in order on a
    // connection, so by then no request still in flight can share an id with a new one. (Jumping
    // every few requests would be a fault of the test, not of the store: ids 1, 2, ... handed out
    // twice while the first ones are pending make memjs deliver responses to the wrong request.)
    const values = [2 ** 30 - 50, 2 ** 31 - 3, 2 ** 32 - 1, 2 ** 31 + 7]
    let responses = 0
    let forced = 0
    const observe = (): void => {
      if (++responses % 100 === 0 && forced < values.length) {
        app.store._forceSequenceForTests(values[forced++]!)
      }
    }
    const load = await timedTraffic(
      app,
      ITEMS,
      FAULT_MS,
      10,
      { observe },
      () => responses < 100 * (values.length + 1),
    )
    assertClean(load, 'sequence counter near 2^31')
    assert.equal(forced, values.length)
    assert.ok(load.hits >= 0.9 * load.requests, `hits all along (${JSON.stringify(load.outcomes)})`)
    t.diagnostic(JSON.stringify(recordFaultRow('request-id counter forced near 2^31', load)))
  })
})

describe('connection limit', () => {
  let mc: MemcachedProcess
  before(async () => {
    mc = await startMemcached({ maxConnections: 64 })
  })
  after(async () => {
    await mc.stop()
  })

  it('reached (memcached -c, idle sockets hold the slots), then freed: the same app recovers', async (t) => {
    const events: string[] = []
    const app = await trafficApp(
      express,
      { servers: mc.address, cooldown: '300ms', onEvent: (e) => events.push(e.type) },
      { timeout: DEADLINE_MS / 1000 },
      ORIGIN_MS,
    )
    t.after(() => app.close())
    await untilHits(app, ITEMS, 'connection limit: warm-up')
    // The restart drops the app's connection; the slots are all taken before it reconnects.
    await mc.restart()
    const slots = await holdConnectionSlots(mc.port, 100)
    let load: TrafficReport
    try {
      load = await timedTraffic(app, ITEMS, FAULT_MS)
    } finally {
      slots.release()
    }
    assertClean(load, 'at the connection limit')
    // Hits may still come from in-process coalescing (X-Cache: HIT; detail=coalesced); the fault
    // was real if the store could not reach the server.
    assert.ok(events.includes('breaker-open'), `the store saw the server down (${events.join()})`)
    const recovery = await untilHits(app, ITEMS, 'connection limit: after the slots were freed')
    t.diagnostic(
      JSON.stringify(
        recordFaultRow('connection limit reached, then freed', mergeReports(load, recovery)),
      ),
    )
  })
})

describe('shutdown at the connection limit', () => {
  it('cache.close() resolves while store calls are pending on a connection memcached closed', () => {
    const script = fileURLToPath(new URL('./close-pending.ts', import.meta.url))
    const child = spawnSync(process.execPath, ['--import', 'tsx', script], {
      encoding: 'utf8',
      timeout: 20_000,
    })
    assert.match(child.stdout, /response body/)
    assert.match(child.stdout, /closed after \d+ ms/, `close() never resolved: ${child.stdout}`)
  })
})

describe('tiny memory (-m 2): entries and locks evicted under load', () => {
  let mc: MemcachedProcess
  before(async () => {
    // -n 48000 -f 2: every item up to ~48 KB, locks included, shares one slab class of 1 MB pages
    // (21 chunks each), so the large entries push live locks out of the LRU too. (With default slab
    // sizes a lock-sized class keeps a whole page of ~5,000 small items and locks are never evicted.)
    mc = await startMemcached({ memoryMb: 2, extraArgs: ['-n', '100000', '-f', '2'] })
  })
  after(async () => {
    await mc.stop()
  })

  it('no wrong body, no 5xx, no hang; hits again once the working set fits', async (t) => {
    const origin = 60
    const bound = 2 * origin + DEADLINE_MS + SLACK_MS // a waiter may see one render evicted, then render
    const paths = Array.from({ length: 300 }, (_, i) => `/blob/${i}`)
    const expect = (path: string): string =>
      path.startsWith('/blob/')
        ? sizedBody(path, 8000 + ((Number(path.slice(6)) * 7919) % 24_000))
        : bodyFor(path)
    const routes = (app: Express): void => {
      app.get('/blob/:id', async (req, res) => {
        await sleep(origin)
        res.type('text').send(expect(req.path))
      })
    }
    // Two apps on one prefix: two "processes" contending for the same locks.
    const prefix = `evict${process.pid}x${randomBytes(4).toString('hex')}`
    const apps = await Promise.all(
      [0, 1].map(() =>
        trafficApp(
          express,
          { servers: mc.address },
          { timeout: DEADLINE_MS / 1000, prefix },
          origin,
          routes,
        ),
      ),
    )
    t.after(() => Promise.all(apps.map((a) => a.close())))
    const watch = await watchEvictions(mc.port)
    t.after(() => watch.stop())
    const loads = await Promise.all(
      apps.map((app) => timedTraffic(app, paths, 2500, 15, { expect })),
    )
    const load = mergeReports(...loads)
    assertClean(load, 'tiny memory under load', bound)
    await Promise.all(apps.map((a) => a.cache.settled()))
    await sleep(100)
    const ours = watch.keys.filter((k) => k.startsWith(prefix))
    const locks = ours.filter((k) => k.endsWith('~lock')).length
    assert.ok(ours.length - locks > 0, `entries were evicted (${ours.length - locks})`)
    assert.ok(locks > 0, `locks were evicted (${locks} of ${ours.length} evictions)`)
    const recovery = await untilHits(apps[0]!, ITEMS.slice(0, 5), 'tiny memory: small working set')
    const row = recordFaultRow(
      'tiny memory (-m 2): entries and locks evicted',
      mergeReports(load, recovery),
    )
    t.diagnostic(`${JSON.stringify(row)} evicted: ${ours.length - locks} entries, ${locks} locks`)
  })
})

/**
 * Values a foreign writer could leave under a path's key. With `unservable`, entries that decode
 * but carry headers Node refuses to send; otherwise garbage that must decode to nothing.
 */
function garbageFor(unservable: boolean): (path: string) => Buffer {
  const entry = (
    path: string,
    headers: [string, string][] = [['content-type', 'text/plain']],
  ): Entry => responseEntry({ headers, body: Buffer.from(bodyFor(path)) })
  const patch = (b: Buffer, at: number, value: number): Buffer => {
    const c = Buffer.from(b)
    c[at] = value
    return c
  }
  const makers: ((path: string) => Buffer)[] = unservable
    ? [
        (p) =>
          encodeEntry(
            entry(p, [
              ['set-cookie', 'planted=1'],
              ['x-bad', 'a\r\nx-planted: 1'],
            ]),
          ),
        (p) =>
          encodeEntry(
            entry(p, [
              ['x-planted', '1'],
              ['bad name', 'v'],
            ]),
          ),
        (p) =>
          encodeEntry(
            entry(p, [
              ['x-planted', '1'],
              ['content-type', 'nul\u0000'],
            ]),
          ),
      ]
    : [
        () => randomBytes(1 + Math.floor(Math.random() * 2000)),
        () => Buffer.alloc(0),
        (p) => {
          const good = encodeEntry(entry(p))
          return good.subarray(0, Math.floor(Math.random() * good.length))
        },
        (p) => Buffer.concat([encodeEntry(entry(p)), Buffer.from('trailing')]),
        (p) => patch(encodeEntry(entry(p)), 3, 0), // another format version
        (p) => patch(encodeEntry(entry(p)), 4, 9), // unknown kind
        (p) => patch(encodeEntry(entry(p)), 0, 0x7b), // not our magic
        (p) => {
          // A plausible envelope whose body length runs past the end.
          const good = encodeEntry(entry(p))
          const c = Buffer.from(good)
          c.writeUInt32BE(0xfffffff0, good.length - Buffer.byteLength(bodyFor(p)) - 4)
          return c
        },
        (p) => {
          // Status out of range.
          const e = { ...entry(p), status: 42 }
          return encodeEntry(e)
        },
        () => Buffer.from(JSON.stringify({ body: 'json from another app' })),
        (p) => Buffer.from(createHash('sha256').update(p).digest()),
        // Foreign but well-formed records: a variants record naming odd headers, a pass marker.
        () =>
          encodeEntry({
            kind: 'variants',
            cachedAt: Date.now(),
            names: ['x-odd', 'accept-language'],
          }),
        () => encodeEntry({ kind: 'pass', cachedAt: Date.now(), reason: 'planted' }),
      ]
  return (path) => makers[Math.floor(Math.random() * makers.length)]!(path)
}
