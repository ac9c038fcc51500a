import { createHash } from 'node:crypto'
import { routingKey } from './types.js'

/**
 * Consistent hashing ring, ketama-style.
 *
 * Every server gets {@link POINTS_PER_SERVER} points on a 32-bit circle: the MD5 digests of
 * `${server}-${i}` for i = 0..39, each cut into four little-endian uint32 values (the layout of
 * libketama). A key goes to the server owning the first point at or after the hash of its routing key
 * (first 4 bytes of MD5, little-endian), wrapping around.
 *
 * Why not memjs's own `hashCode(key) % servers.length`: adding a fourth server to three moves about
 * 75% of keys with modulo hashing and about 25% here, and the ring does not depend on the order in
 * which each process lists its servers (the list is sorted and deduplicated first).
 *
 * Keys are routed on {@link routingKey} (the part before the first `~`), so an entry, its lock and its
 * variants live on the same server.
 */
export const POINTS_PER_SERVER = 160
/**
 * Routing keys whose server is remembered. Hot keys repeat (an entry, its lock, its variants share
 * one routing key), and an MD5 costs more than the rest of routing; beyond this many the oldest
 * entry is forgotten.
 */
export const ROUTE_MEMO_SIZE = 4096
const DIGESTS_PER_SERVER = POINTS_PER_SERVER / 4

function md5(text: string): Buffer {
  return createHash('md5').update(text).digest()
}

export class HashRing {
  /** The servers, sorted and deduplicated: the ring's identity. */
  readonly servers: readonly string[]
  readonly #points: Uint32Array
  readonly #owners: Uint16Array
  /** routing key -> server index, in insertion order (the first is the oldest). */
  readonly #memo = new Map<string, number>()

  constructor(servers: readonly string[]) {
    const unique = [...new Set(servers)].sort()
    if (unique.length === 0) {
      throw new TypeError('express-ft-cache: a hash ring needs at least one server')
    }
    if (unique.length > 0xffff) {
      throw new RangeError('express-ft-cache: a hash ring supports at most 65535 servers')
    }
    this.servers = Object.freeze(unique)

    const entries: Array<{ point: number; owner: number }> = []
    unique.forEach((server, owner) => {
      for (let i = 0; i < DIGESTS_PER_SERVER; i++) {
        const digest = md5(`${server}-${i}`)
        for (let j = 0; j < 4; j++) entries.push({ point: digest.readUInt32LE(j * 4), owner })
      }
    })
    // Ties (two servers on the same point) are broken by server order, which is itself sorted, so
    // every process builds the same ring.
    entries.sort((a, b) => a.point - b.point || a.owner - b.owner)
    this.#points = Uint32Array.from(entries, (e) => e.point)
    this.#owners = Uint16Array.from(entries, (e) => e.owner)
  }

  /** Index into {@link servers} of the server that holds `key`. */
  indexFor(key: string): number {
    if (this.servers.length === 1) return 0
    const routing = routingKey(key)
    const known = this.#memo.get(routing)
    if (known !== undefined) return known
    const index = this.#lookup(md5(routing).readUInt32LE(0))
    if (this.#memo.size >= ROUTE_MEMO_SIZE) {
      this.#memo.delete(this.#memo.keys().next().value as string)
    }
    this.#memo.set(routing, index)
    return index
  }

  #lookup(hash: number): number {
    const points = this.#points
    // First point >= hash (binary search); past the end wraps to the first point.
    let lo = 0
    let hi = points.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (points[mid]! < hash) lo = mid + 1
      else hi = mid
    }
    return this.#owners[lo === points.length ? 0 : lo]!
  }

  /** The server that holds `key`. */
  serverFor(key: string): string {
    return this.servers[this.indexFor(key)]!
  }
}
