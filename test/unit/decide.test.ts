import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { type Decision, decide, type Facts } from '../../src/engine/decide.js'
import type { Entry, ResponseEntry } from '../../src/entry.js'

const T = 1_000_000
const entry = (over: Partial<ResponseEntry> = {}): ResponseEntry => ({
  kind: 'response',
  cachedAt: T - 10_000,
  staleAt: T + 10_000,
  graceUntil: T + 20_000,
  errorUntil: T + 30_000,
  initialAge: 0,
  status: 200,
  headers: [],
  body: Buffer.alloc(0),
  startedAt: T - 10_100,
  tags: [],
  shared: false,
  ...over,
})
const facts = (over: Partial<Facts> = {}): Facts => ({
  now: T,
  isGet: true,
  onlyIfCached: false,
  credentialed: false,
  regenerating: false,
  lockLost: false,
  ...over,
})
const kind = (d: Decision): string => d.kind

describe('decide (pure)', () => {
  it('fresh entries are hits; gone ones are misses whatever their times say', () => {
    assert.equal(kind(decide(entry(), 'valid', facts())), 'hit')
    assert.equal(kind(decide(entry(), 'gone', facts())), 'cold')
  })

  it('within grace one request regenerates; past graceUntil nothing stale is served', () => {
    const stale = entry({ staleAt: T - 1 })
    assert.equal(kind(decide(stale, 'valid', facts())), 'regenerate')
    const pastGrace = entry({ staleAt: T - 2, graceUntil: T - 1, errorUntil: T + 5 })
    const d = decide(pastGrace, 'valid', facts())
    assert.equal(d.kind, 'cold')
    // Past grace but inside stale-if-error: kept only as the fallback for a failed render.
    assert.equal(d.kind === 'cold' ? d.fallback : undefined, pastGrace)
    assert.equal(
      kind(
        decide(entry({ staleAt: T - 2, graceUntil: T - 1, errorUntil: T - 1 }), 'valid', facts()),
      ),
      'cold',
    )
  })

  it('serves stale without competing when this process regenerates, lost the lock a moment ago, or the request is HEAD / only-if-cached', () => {
    const stale = entry({ staleAt: T - 1 })
    for (const f of [
      facts({ regenerating: true }),
      facts({ lockLost: true }),
      facts({ isGet: false }),
      facts({ onlyIfCached: true }),
    ]) {
      assert.equal(kind(decide(stale, 'valid', f)), 'stale')
    }
  })

  it('a soft invalidation ends freshness now but keeps the grace window', () => {
    assert.equal(kind(decide(entry(), 'stale', facts())), 'regenerate')
    assert.equal(kind(decide(entry({ graceUntil: T }), 'stale', facts())), 'cold')
  })

  it('credentialed requests are answered only by shared entries, and never coalesce', () => {
    assert.equal(kind(decide(entry(), 'valid', facts({ credentialed: true }))), 'private')
    assert.equal(
      kind(decide(entry({ shared: true }), 'valid', facts({ credentialed: true }))),
      'hit',
    )
    assert.equal(kind(decide(undefined, 'valid', facts({ credentialed: true }))), 'private')
    const stale = entry({ staleAt: T - 1, shared: true })
    assert.equal(kind(decide(stale, 'valid', facts({ credentialed: true }))), 'private')
  })

  it('misses: only-if-cached gets 504, HEAD goes to the handler, pass markers skip coalescing', () => {
    assert.equal(kind(decide(undefined, 'valid', facts({ onlyIfCached: true }))), 'unavailable')
    assert.equal(kind(decide(undefined, 'valid', facts({ isGet: false }))), 'head')
    const pass: Entry = { kind: 'pass', cachedAt: T, reason: 'private' }
    assert.equal(kind(decide(pass, 'valid', facts())), 'pass')
    assert.equal(kind(decide(undefined, 'valid', facts())), 'cold')
  })
})
