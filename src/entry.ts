import { validateHeaderName, validateHeaderValue } from 'node:http'
import type { HeaderList } from './http/headers.js'
import { FORMAT_VERSION } from './key.js'

/**
 * What the cache stores. Times are epoch milliseconds. Freshness is kept apart from retention, which
 * is what stale-while-revalidate and stale-if-error need (RFC 5861): an entry is fresh until
 * `staleAt`, may be served stale while one request regenerates until `graceUntil`, may replace an
 * error until `errorUntil`, and is gone after the later of the two.
 */
export interface ResponseEntry {
  readonly kind: 'response'
  readonly cachedAt: number
  readonly staleAt: number
  readonly graceUntil: number
  readonly errorUntil: number
  /** Age the response already had when stored (its own `Age` header), in seconds (RFC 9111 §4.2.3). */
  readonly initialAge: number
  readonly status: number
  readonly headers: HeaderList
  readonly body: Buffer
  /** When the render that produced it started: invalidations recorded later make it stale or gone. */
  readonly startedAt: number
  /** Invalidation tags: the path tag, route tags and the response's Surrogate-Key. */
  readonly tags: readonly string[]
  /**
   * The response said `public` or `s-maxage`: it may answer requests that carry credentials
   * (Authorization, or a session Cookie), RFC 9111 §3.5.
   */
  readonly shared: boolean
}

/** Stored at a primary key whose responses vary: the request headers that select the variant. */
export interface VariantsEntry {
  readonly kind: 'variants'
  readonly cachedAt: number
  readonly names: readonly string[]
}

/** Hit-for-miss marker: the last render was uncacheable, so skip coalescing for a while. */
export interface PassEntry {
  readonly kind: 'pass'
  readonly cachedAt: number
  readonly reason: string
}

export type Entry = ResponseEntry | VariantsEntry | PassEntry

// Layout: "EFC" magic, format version, kind, then the kind's fields; all integers big-endian.
// Every length is checked on decode, and trailing bytes are rejected, so a truncated, foreign or
// old-format value decodes to undefined (a miss), never to a wrong response.
const MAGIC = [0x45, 0x46, 0x43] as const
const KIND = { response: 1, variants: 2, pass: 3 } as const

class Writer {
  private readonly parts: Buffer[] = []
  private size = 0
  private push(b: Buffer): void {
    this.parts.push(b)
    this.size += b.length
  }
  u8(n: number): void {
    this.push(Buffer.of(n))
  }
  u16(n: number): void {
    const b = Buffer.allocUnsafe(2)
    b.writeUInt16BE(n)
    this.push(b)
  }
  u32(n: number): void {
    const b = Buffer.allocUnsafe(4)
    b.writeUInt32BE(n)
    this.push(b)
  }
  f64(n: number): void {
    const b = Buffer.allocUnsafe(8)
    b.writeDoubleBE(n)
    this.push(b)
  }
  str16(s: string): void {
    const b = Buffer.from(s, 'latin1')
    if (b.length > 0xffff) throw new RangeError('string too long for entry')
    this.u16(b.length)
    this.push(b)
  }
  bytes32(b: Buffer): void {
    this.u32(b.length)
    this.push(b)
  }
  finish(): Buffer {
    return Buffer.concat(this.parts, this.size)
  }
}

class Reader {
  private at = 0
  constructor(private readonly buf: Buffer) {}
  private need(n: number): number {
    const start = this.at
    if (start + n > this.buf.length) throw new RangeError('truncated')
    this.at += n
    return start
  }
  u8(): number {
    return this.buf.readUInt8(this.need(1))
  }
  u16(): number {
    return this.buf.readUInt16BE(this.need(2))
  }
  u32(): number {
    return this.buf.readUInt32BE(this.need(4))
  }
  f64(): number {
    const n = this.buf.readDoubleBE(this.need(8))
    if (!Number.isFinite(n)) throw new RangeError('bad number')
    return n
  }
  str16(): string {
    const n = this.u16()
    const start = this.need(n)
    return this.buf.toString('latin1', start, start + n)
  }
  /** A view, not a copy: a hit writes the body straight from the buffer the store handed over. */
  bytes32(): Buffer {
    const n = this.u32()
    const start = this.need(n)
    return this.buf.subarray(start, start + n)
  }
  done(): boolean {
    return this.at === this.buf.length
  }
}

/** Encodes an entry. Header values are latin1, as Node sends them (RFC 9110 §5.5: octets). */
export function encodeEntry(entry: Entry): Buffer {
  const w = new Writer()
  for (const m of MAGIC) w.u8(m)
  w.u8(FORMAT_VERSION)
  w.u8(KIND[entry.kind])
  w.f64(entry.cachedAt)
  switch (entry.kind) {
    case 'response':
      w.f64(entry.staleAt)
      w.f64(entry.graceUntil)
      w.f64(entry.errorUntil)
      w.u32(entry.initialAge)
      w.u16(entry.status)
      w.u16(entry.headers.length)
      for (const [name, value] of entry.headers) {
        w.str16(name)
        w.bytes32(Buffer.from(value, 'latin1'))
      }
      w.f64(entry.startedAt)
      w.u8(entry.shared ? 1 : 0)
      w.u16(entry.tags.length)
      for (const tag of entry.tags) w.str16(tag)
      // The body last: a reader can check its length against what remains.
      w.bytes32(entry.body)
      break
    case 'variants':
      w.u16(entry.names.length)
      for (const name of entry.names) w.str16(name)
      break
    case 'pass':
      w.str16(entry.reason)
      break
    default:
      entry satisfies never
  }
  return w.finish()
}

/** Decodes a stored value; anything that is not a complete entry of this version is undefined. */
export function decodeEntry(value: Buffer | undefined): Entry | undefined {
  if (value === undefined || value.length < 13) return undefined
  if (value[0] !== MAGIC[0] || value[1] !== MAGIC[1] || value[2] !== MAGIC[2]) return undefined
  if (value[3] !== FORMAT_VERSION) return undefined
  try {
    const r = new Reader(value.subarray(5))
    const kind = value[4]
    const cachedAt = r.f64()
    let entry: Entry
    if (kind === KIND.response) {
      const staleAt = r.f64()
      const graceUntil = r.f64()
      const errorUntil = r.f64()
      const initialAge = r.u32()
      const status = r.u16()
      const count = r.u16()
      const headers: HeaderList = []
      for (let i = 0; i < count; i++) headers.push([r.str16(), r.bytes32().toString('latin1')])
      const startedAt = r.f64()
      const shared = r.u8() === 1
      const tagCount = r.u16()
      const tags: string[] = []
      for (let i = 0; i < tagCount; i++) tags.push(r.str16())
      const body = r.bytes32()
      if (status < 100 || status > 599) return undefined
      entry = {
        kind: 'response',
        cachedAt,
        staleAt,
        graceUntil,
        errorUntil,
        initialAge,
        status,
        headers,
        body,
        startedAt,
        tags,
        shared,
      }
    } else if (kind === KIND.variants) {
      const count = r.u16()
      const names: string[] = []
      for (let i = 0; i < count; i++) names.push(r.str16())
      entry = { kind: 'variants', cachedAt, names }
    } else if (kind === KIND.pass) {
      entry = { kind: 'pass', cachedAt, reason: r.str16() }
    } else {
      return undefined
    }
    return r.done() ? entry : undefined
  } catch {
    return undefined
  }
}

/**
 * Whether Node will accept every stored header when serving the entry. A value planted in memcached
 * (or written by a buggy store) with `\r\n` or a space in a name would make `res.setHeader` throw
 * half-way, leaking the headers set before it onto the origin's response: treat it as a miss.
 */
export function isServable(entry: Entry): boolean {
  if (entry.kind !== 'response') return true
  try {
    for (const [name, value] of entry.headers) {
      validateHeaderName(name)
      validateHeaderValue(name, value)
    }
    return true
  } catch {
    return false
  }
}
