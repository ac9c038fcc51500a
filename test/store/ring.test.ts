import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { HashRing, POINTS_PER_SERVER, ROUTE_MEMO_SIZE } from '../../src/store/ring.js'

const keys = Array.from({ length: 20_000 }, (_, i) => `page:/products/${i}?lang=en`)
const three = ['10.0.0.1:11211', '10.0.0.2:11211', '10.0.0.3:11211']
const four = [...three, '10.0.0.4:11211']

function shares(ring: HashRing): Map<string, number> {
  const counts = new Map<string, number>()
  for (const key of keys) {
    const server = ring.serverFor(key)
    counts.set(server, (counts.get(server) ?? 0) + 1)
  }
  return counts
}

describe('HashRing', () => {
  it('does not depend on the order (or repetition) of the server list', () => {
    const a = new HashRing(three)
    const b = new HashRing([three[2]!, three[0]!, three[1]!, three[0]!])
    assert.deepEqual(a.servers, [...three].sort())
    assert.deepEqual(b.servers, a.servers)
    for (const key of keys.slice(0, 2000)) assert.equal(a.serverFor(key), b.serverFor(key))
  })

  it('is deterministic across instances (every process computes the same ring)', () => {
    const a = new HashRing(four)
    const b = new HashRing(four)
    for (const key of keys.slice(0, 2000)) assert.equal(a.indexFor(key), b.indexFor(key))
  })

  it(`spreads keys roughly evenly (${POINTS_PER_SERVER} points per server)`, () => {
    const counts = shares(new HashRing(three))
    assert.equal(counts.size, 3)
    for (const [server, count] of counts) {
      const share = count / keys.length
      assert.ok(share > 0.2 && share < 0.47, `${server} holds ${(share * 100).toFixed(1)}%`)
    }
  })

  it('moves about a quarter of the keys when a fourth server joins three', () => {
    const before = new HashRing(three)
    const after = new HashRing(four)
    let moved = 0
    for (const key of keys) {
      const from = before.serverFor(key)
      const to = after.serverFor(key)
      if (from !== to) {
        moved++
        assert.equal(to, '10.0.0.4:11211', 'keys only ever move to the new server')
      }
    }
    const share = moved / keys.length
    assert.ok(share > 0.15 && share < 0.35, `moved ${(share * 100).toFixed(1)}%`)
  })

  it('routes on the part before the first ~ (entry, lock and variants share a server)', () => {
    const ring = new HashRing(four)
    let differentBases = 0
    for (const key of keys.slice(0, 2000)) {
      const server = ring.serverFor(key)
      assert.equal(ring.serverFor(`${key}~lock`), server)
      assert.equal(ring.serverFor(`${key}~v~gzip~1`), server)
      if (ring.serverFor(`${key}x`) !== server) differentBases++
    }
    assert.ok(differentBases > 0, 'the base key itself is what is hashed')
  })

  it('handles a single server and rejects an empty list', () => {
    const ring = new HashRing(['cache:11211'])
    assert.equal(ring.serverFor('anything'), 'cache:11211')
    assert.throws(() => new HashRing([]), TypeError)
  })
})

describe('HashRing memo of hot routing keys', () => {
  it('answers as an unmemoised ring does, before and after the memo overflows', () => {
    const servers = ['a:11211', 'b:11211', 'c:11211', 'd:11211']
    const ring = new HashRing(servers)
    const keys = Array.from({ length: ROUTE_MEMO_SIZE * 2 + 7 }, (_, i) => `k${i}`)
    // Twice over more keys than the memo holds: first lookups, evictions, then hits and re-lookups.
    for (let round = 0; round < 2; round++) {
      const fresh = new HashRing(servers)
      for (const key of keys) {
        assert.equal(ring.indexFor(key), fresh.indexFor(key), key)
        assert.equal(ring.indexFor(`${key}~lock`), fresh.indexFor(key), 'a lock follows its entry')
      }
    }
  })
})
