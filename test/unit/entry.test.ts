import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { decodeEntry, type Entry, encodeEntry, type ResponseEntry } from '../../src/entry.js'
import { FORMAT_VERSION } from '../../src/key.js'

const T = Date.UTC(2026, 0, 15, 12, 0, 0)
const ALL_BYTES = Buffer.from(Array.from({ length: 256 }, (_, i) => i))

const response = (over: Partial<ResponseEntry> = {}): ResponseEntry => ({
  kind: 'response',
  cachedAt: T,
  staleAt: T + 60_000,
  graceUntil: T + 360_000,
  errorUntil: T + 300_000,
  initialAge: 7,
  status: 200,
  headers: [
    ['content-type', 'text/html; charset=utf-8'],
    ['link', '<a>; rel=preload'],
    ['link', '<b>; rel=preload'],
  ],
  body: Buffer.from('<h1>hello</h1>'),
  startedAt: T - 250,
  tags: ['path:/hello', 'news'],
  shared: true,
  ...over,
})

const SMALL: Entry[] = [
  response({ headers: [['x', 'y']], body: Buffer.from('ab') }),
  { kind: 'variants', cachedAt: T, names: ['accept-encoding', 'accept-language'] },
  { kind: 'pass', cachedAt: T, reason: 'set-cookie' },
]

const roundTrip = (entry: Entry): Entry | undefined => decodeEntry(encodeEntry(entry))

/** mulberry32: a small seeded PRNG, so the fuzzing below is the same on every run. */
function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

describe('encodeEntry / decodeEntry round trip', () => {
  it('response entries, with repeated headers kept in order', () => {
    const e = response()
    assert.deepEqual(roundTrip(e), e)
  })

  it('a binary body with all 256 byte values, many times over', () => {
    const body = Buffer.concat(Array.from({ length: 40 }, () => ALL_BYTES))
    const decoded = roundTrip(response({ body })) as ResponseEntry
    assert.ok(Buffer.isBuffer(decoded.body))
    assert.ok(decoded.body.equals(body))
  })

  it('latin1 header values (obs-text bytes, RFC 9110 §5.5) and every latin1 character', () => {
    const every = String.fromCharCode(...Array.from({ length: 256 }, (_, i) => i))
    const headers: [string, string][] = [
      ['content-disposition', 'attachment; filename="caf\u00e9.txt"'],
      ['x-all', every],
      ['x-empty', ''],
    ]
    assert.deepEqual((roundTrip(response({ headers })) as ResponseEntry).headers, headers)
  })

  it('an empty body and no headers', () => {
    const e = response({ headers: [], body: Buffer.alloc(0), status: 204 })
    const decoded = roundTrip(e) as ResponseEntry
    assert.deepEqual(decoded, e)
    assert.equal(decoded.body.length, 0)
  })

  it('statuses at both ends of the range and large ages', () => {
    for (const status of [100, 200, 404, 599])
      assert.equal((roundTrip(response({ status })) as ResponseEntry).status, status)
    assert.equal(
      (roundTrip(response({ initialAge: 2 ** 31 })) as ResponseEntry).initialAge,
      2 ** 31,
    )
  })

  it('fractional and far-future times', () => {
    const e = response({ cachedAt: T + 0.5, staleAt: 8.64e15, graceUntil: 8.64e15, errorUntil: 0 })
    assert.deepEqual(roundTrip(e), e)
  })

  it('many headers', () => {
    const headers = Array.from({ length: 2000 }, (_, i): [string, string] => [`x-h${i}`, `v${i}`])
    assert.deepEqual((roundTrip(response({ headers })) as ResponseEntry).headers, headers)
  })

  it('variants and pass entries, including empty name lists and reasons', () => {
    for (const e of [
      { kind: 'variants', cachedAt: T, names: ['accept-encoding', 'accept-language', 'x-tenant'] },
      { kind: 'variants', cachedAt: T, names: [] },
      { kind: 'pass', cachedAt: T, reason: 'set-cookie' },
      { kind: 'pass', cachedAt: T, reason: '' },
    ] satisfies Entry[]) {
      assert.deepEqual(roundTrip(e), e)
    }
  })

  it('the decoded body is a view of the stored value, not a copy (a hit copies nothing)', () => {
    const value = encodeEntry(response({ body: Buffer.from('original') }))
    const decoded = decodeEntry(value) as ResponseEntry
    assert.equal(decoded.body.buffer, value.buffer)
    assert.equal(decoded.body.toString(), 'original')
  })

  it('starts with the "EFC" magic and the format version', () => {
    for (const e of SMALL) {
      const value = encodeEntry(e)
      assert.equal(value.subarray(0, 3).toString('latin1'), 'EFC')
      assert.equal(value[3], FORMAT_VERSION)
    }
  })

  it('refuses to encode a string longer than 65535 bytes', () => {
    assert.throws(
      () => encodeEntry({ kind: 'pass', cachedAt: T, reason: 'x'.repeat(70_000) }),
      RangeError,
    )
  })
})

describe('decodeEntry rejects anything but a complete entry of this version', () => {
  it('undefined and short values', () => {
    assert.equal(decodeEntry(undefined), undefined)
    assert.equal(decodeEntry(Buffer.alloc(0)), undefined)
    assert.equal(decodeEntry(Buffer.from('EFC')), undefined)
  })

  it('every truncation of a valid value', () => {
    for (const e of [...SMALL, response()]) {
      const value = encodeEntry(e)
      assert.notEqual(decodeEntry(value), undefined)
      for (let n = 0; n < value.length; n++) {
        assert.equal(
          decodeEntry(value.subarray(0, n)),
          undefined,
          `${e.kind} cut to ${n} of ${value.length} bytes`,
        )
      }
    }
  })

  it('a wrong magic', () => {
    for (const e of SMALL) {
      for (let i = 0; i < 3; i++) {
        const value = Buffer.from(encodeEntry(e))
        value[i] = (value[i] ?? 0) ^ 0x20
        assert.equal(decodeEntry(value), undefined, `${e.kind}, byte ${i}`)
      }
    }
  })

  it('another format version', () => {
    for (const e of SMALL) {
      for (const version of [0, FORMAT_VERSION + 1, 255]) {
        const value = Buffer.from(encodeEntry(e))
        value[3] = version
        assert.equal(decodeEntry(value), undefined, `${e.kind}, version ${version}`)
      }
    }
  })

  it('trailing bytes', () => {
    for (const e of SMALL) {
      const value = encodeEntry(e)
      assert.equal(decodeEntry(Buffer.concat([value, Buffer.of(0)])), undefined)
      assert.equal(decodeEntry(Buffer.concat([value, value])), undefined)
    }
  })

  it('an unknown kind', () => {
    for (const kind of [0, 4, 9, 255]) {
      const value = Buffer.from(encodeEntry({ kind: 'pass', cachedAt: T, reason: 'x' }))
      value[4] = kind
      assert.equal(decodeEntry(value), undefined, `kind ${kind}`)
    }
  })

  it('a non-finite time', () => {
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
      assert.equal(roundTrip({ kind: 'pass', cachedAt: bad, reason: 'x' }), undefined)
      assert.equal(roundTrip(response({ staleAt: bad })), undefined)
    }
  })

  it('a status outside 100..599', () => {
    for (const status of [0, 99, 600, 65535])
      assert.equal(roundTrip(response({ status })), undefined, `status ${status}`)
  })

  it('a length field pointing past the end', () => {
    // The pass reason's u16 length sits right after the 8-byte time.
    const value = Buffer.from(encodeEntry({ kind: 'pass', cachedAt: T, reason: 'abc' }))
    value.writeUInt16BE(4, 13)
    assert.equal(decodeEntry(value), undefined)
    value.writeUInt16BE(2, 13)
    assert.equal(decodeEntry(value), undefined, 'too short a length leaves trailing bytes')
  })

  it('2000 random buffers never throw, and decode to undefined or a well-formed entry', () => {
    const random = prng(0x5eed)
    const header = Buffer.of(0x45, 0x46, 0x43, FORMAT_VERSION)
    for (let n = 0; n < 2000; n++) {
      const length = Math.floor(random() * 96)
      const bytes = Buffer.from(Array.from({ length }, () => Math.floor(random() * 256)))
      // Half of them get a valid header and kind, so decoding reaches the kind-specific fields.
      const value = n % 2 === 0 ? Buffer.concat([header, Buffer.of(1 + (n % 3)), bytes]) : bytes
      let decoded: Entry | undefined
      assert.doesNotThrow(
        () => {
          decoded = decodeEntry(value)
        },
        `buffer ${n}: ${value.toString('hex')}`,
      )
      if (decoded !== undefined) assert.ok(['response', 'variants', 'pass'].includes(decoded.kind))
    }
  })

  it('2000 random corruptions of valid values never throw', () => {
    const random = prng(42)
    const values = [...SMALL, response()].map(encodeEntry)
    for (let n = 0; n < 2000; n++) {
      const value = Buffer.from(values[n % values.length] as Buffer)
      const flips = 1 + Math.floor(random() * 4)
      for (let f = 0; f < flips; f++) {
        const at = Math.floor(random() * value.length)
        value[at] = Math.floor(random() * 256)
      }
      assert.doesNotThrow(() => decodeEntry(value), `corruption ${n}: ${value.toString('hex')}`)
    }
  })
})
