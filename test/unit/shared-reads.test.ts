/**
 * Shared reads: concurrent requests for one key share a store read in flight, but only one whose
 * deadline fits their own budget. A request never waits past its own deadline on another's read,
 * and never fails early (then rendering without the mint lock) on a budget another had nearly spent.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Request } from 'express'
import { Invalidations } from '../../src/engine/invalidate.js'
import { Lookup } from '../../src/engine/lookup.js'
import { joinable, SharedReads } from '../../src/engine/shared-reads.js'
import { encodeEntry } from '../../src/entry.js'
import { StoreGuard } from '../../src/guard.js'
import { RateLimitedLog, silentLogger } from '../../src/logging.js'
import { responseEntry } from '../helpers/entry.js'
import { ControlledStore, type Gate, gate } from '../helpers/store.js'

/** A promise a test settles by hand. */
function deferred<T>(): { promise: Promise<T>; resolve(v: T): void; reject(e: Error): void } {
  let resolve: (v: T) => void = () => undefined
  let reject: (e: Error) => void = () => undefined
  const promise = new Promise<T>((res, rej) => {
    resolve = res
    reject = rej
  })
  return { promise, resolve, reject }
}

/** Whether `p` is still pending after the current macrotask. */
async function pending(p: Promise<unknown>): Promise<boolean> {
  const marker = Symbol('pending')
  const first = await Promise.race([p, new Promise((r) => setImmediate(() => r(marker)))])
  return first === marker
}

describe('joinable', () => {
  const now = 1_000
  it('joins a read that gives up no later than the request, with at least half its time left', () => {
    assert.equal(joinable(1_100, 1_100, now), true, 'same deadline')
    assert.equal(joinable(1_097, 1_100, now), true, 'sent 3 ms earlier under the same timeout')
    assert.equal(joinable(1_050, 1_100, now), true, 'exactly half')
  })
  it('not a read that would keep the request past its own deadline', () => {
    assert.equal(joinable(1_130, 1_100, now), false)
  })
  it('not a read with less than half the time the request has left', () => {
    assert.equal(joinable(1_008, 1_100, now), false)
    assert.equal(joinable(999, 1_100, now), false, 'already past its deadline')
  })
})

describe('SharedReads', () => {
  it('requests with the same budget share one read; once it settled, the next sends a new one', async () => {
    const reads = new SharedReads<string>()
    const first = deferred<string>()
    let sent = 0
    const send = (): Promise<string> => {
      sent++
      return sent === 1 ? first.promise : Promise.resolve('second')
    }
    const deadline = Date.now() + 10_000
    const a = reads.read('k', deadline, send)
    const b = reads.read('k', deadline, send)
    assert.equal(sent, 1)
    assert.equal(a, b)
    first.resolve('first')
    assert.equal(await b, 'first')
    assert.equal(await reads.read('k', deadline, send), 'second')
    assert.equal(sent, 2)
  })

  it('a request with an earlier deadline sends its own read, which later requests join', async () => {
    const reads = new SharedReads<string>()
    const slow = deferred<string>()
    let sent = 0
    const send = (): Promise<string> => (++sent === 1 ? slow.promise : Promise.resolve('own'))
    const late = reads.read('k', Date.now() + 20_000, send)
    const mine = reads.read('k', Date.now() + 10_000, send)
    assert.equal(sent, 2)
    assert.equal(await mine, 'own')
    assert.ok(await pending(late))
    slow.resolve('late')
    assert.equal(await late, 'late')
  })

  it('a request does not join a read with less than half its time left', async () => {
    const reads = new SharedReads<string>()
    const spent = deferred<string>()
    let sent = 0
    const send = (): Promise<string> => (++sent === 1 ? spent.promise : Promise.resolve('own'))
    void reads.read('k', Date.now() + 100, send)
    const fresh = reads.read('k', Date.now() + 10_000, send)
    assert.equal(sent, 2)
    // A third request with a full budget joins the newer read.
    const third = reads.read('k', Date.now() + 10_000, send)
    assert.equal(sent, 2)
    assert.equal(third, fresh)
    spent.resolve('spent')
  })

  it('a read that rejects is forgotten too', async () => {
    const reads = new SharedReads<string>()
    const failing = deferred<string>()
    let sent = 0
    const send = (): Promise<string> => (++sent === 1 ? failing.promise : Promise.resolve('retry'))
    const deadline = Date.now() + 10_000
    const a = reads.read('k', deadline, send)
    failing.reject(new Error('down'))
    await assert.rejects(a, /down/)
    assert.equal(await reads.read('k', deadline, send), 'retry')
  })
})

describe('Lookup: shared entry reads and deadlines', () => {
  const primary = 'shr:2:abc'
  const req = { headers: {} } as Request

  /** A Lookup on a store holding the entry, whose first entry read hangs until `held` opens. */
  async function setup(): Promise<{ store: ControlledStore; lookup: Lookup; held: Gate }> {
    const store = new ControlledStore()
    await store.inner.set(primary, encodeEntry(responseEntry()), 60)
    const held = gate()
    store.rule('get', (call) => (call.nOfKind === 1 ? { after: held.opened } : undefined), {
      keys: 'entry',
    })
    const guard = new StoreGuard(store, new RateLimitedLog(silentLogger), 1_000)
    const invalidations = new Invalidations(guard, 'shr', 100, 20_000)
    const lookup = new Lookup(guard, invalidations, undefined, 20_000, () => undefined)
    return { store, lookup, held }
  }

  it('a request never waits on a read in flight that gives up after its own deadline', async () => {
    const { store, lookup, held } = await setup()
    // The first read, sent under a later deadline (a refresh-ahead, or a later request's second
    // stage), hangs.
    const later = lookup.read(req, primary, [], Date.now() + 20_000, undefined, true)
    const found = await lookup.read(req, primary, [], Date.now() + 10_000, undefined, true)
    assert.equal(found.failed, false)
    assert.equal(found.entry?.kind, 'response')
    assert.equal(store.count('get', 'entry'), 2, 'it sent its own read')
    assert.ok(await pending(later), 'while the other read is still in flight')
    held.open()
    assert.equal((await later).failed, false)
  })

  it('a request does not inherit a read whose budget is nearly spent (no false timeout)', async () => {
    const { lookup, held } = await setup()
    // A request with 50 ms left sends a read that will time out...
    const spent = lookup.read(req, primary, [], Date.now() + 50, undefined, true)
    // ...and one with its full budget arrives meanwhile: it reads on its own and finds the entry.
    const found = await lookup.read(req, primary, [], Date.now() + 10_000, undefined, true)
    assert.equal(found.failed, false)
    assert.equal(found.entry?.kind, 'response')
    // The guard's deadline timer does not keep the process alive: this wait does.
    await sleep(200)
    assert.equal((await spent).failed, true, 'the nearly spent read did time out')
    held.open()
  })
})
