/**
 * The hot tier's own rules, without a server: what a later `set` may replace, and what a copy that
 * reuses a held body keeps.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { HotTier } from '../../src/engine/hot-tier.js'
import type { ResponseEntry } from '../../src/entry.js'
import { responseEntry } from '../helpers/entry.js'

const T = 1_000_000

/** A response stored at `cachedAt`, fresh until `staleAt`. */
const entry = (cachedAt: number, staleAt: number, body: string, shared = false): ResponseEntry =>
  responseEntry({ staleAt, body: Buffer.from(body), shared }, cachedAt)

describe('HotTier.set', () => {
  it('keeps a live copy stored after the one a slower read brings back', () => {
    const hot = new HotTier(1_000_000, 10_000)
    hot.set('k', entry(T + 100, T + 60_000, 'new'), T + 200)
    hot.set('k', entry(T, T + 60_000, 'old'), T + 300)
    assert.equal(hot.get('k', T + 400)?.entry.body.toString(), 'new')
  })

  it('lets an older copy in once the newer one has expired from the tier', () => {
    const hot = new HotTier(1_000_000, 1_000)
    hot.set('k', entry(T + 100, T + 60_000, 'new'), T + 200)
    hot.set('k', entry(T, T + 60_000, 'old'), T + 5_000)
    assert.equal(hot.get('k', T + 5_100)?.entry.body.toString(), 'old')
  })

  it('a copy with the held body takes its freshness and flags from the new entry', () => {
    const hot = new HotTier(1_000_000, 30_000)
    hot.set('k', entry(T, T + 60_000, 'x'), T)
    const held = hot.get('k', T)?.entry.body
    hot.set('k', entry(T, T + 1_000, 'x', true), T)
    const slot = hot.get('k', T + 500)
    assert.equal(slot?.entry.body, held, 'the body buffer is reused')
    assert.equal(slot?.entry.staleAt, T + 1_000)
    assert.equal(slot?.entry.shared, true)
    assert.equal(hot.get('k', T + 5_000), undefined, 'gone when the new entry goes stale')
  })

  it('copies the body, so a copy does not pin the buffer the store read it from', () => {
    const hot = new HotTier(1_000_000, 1_000)
    const read = entry(T, T + 60_000, 'body')
    hot.set('k', read, T)
    const slot = hot.get('k', T)
    assert.notEqual(slot?.entry.body, read.body)
    assert.equal(slot?.entry.body.toString(), 'body')
  })
})
