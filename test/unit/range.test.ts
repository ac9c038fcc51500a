import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { HeaderList } from '../../src/http/headers.js'
import { answerRange, ifRangeHolds, parseByteRange } from '../../src/http/range.js'

const T = Date.UTC(2026, 0, 15, 12, 0, 0)
const httpDate = (ms: number): string => new Date(ms).toUTCString()
const LM = httpDate(T - 3_600_000)
const STORED: HeaderList = [
  ['etag', '"v1"'],
  ['last-modified', LM],
  ['date', httpDate(T)],
]

describe('parseByteRange (RFC 9110 §14.1.2)', () => {
  it('first-last, first-, and suffix ranges', () => {
    assert.deepEqual(parseByteRange('bytes=0-4', 10), [0, 4])
    assert.deepEqual(parseByteRange('bytes=5-', 10), [5, 9])
    assert.deepEqual(parseByteRange('bytes=-3', 10), [7, 9])
    assert.deepEqual(parseByteRange('bytes=9-9', 10), [9, 9])
  })

  it('clamps last-pos and suffix-length to the representation', () => {
    assert.deepEqual(parseByteRange('bytes=5-100', 10), [5, 9])
    assert.deepEqual(parseByteRange('bytes=-100', 10), [0, 9])
  })

  it('is case-insensitive in the unit and tolerates whitespace around the range', () => {
    assert.deepEqual(parseByteRange('Bytes= 2-3 ', 10), [2, 3])
    assert.deepEqual(parseByteRange('bytes=2-3,', 10), [2, 3])
  })

  it('is unsatisfiable past the end, or for a zero-length suffix (§14.1.1)', () => {
    assert.equal(parseByteRange('bytes=10-', 10), 'unsatisfiable')
    assert.equal(parseByteRange('bytes=10-20', 10), 'unsatisfiable')
    assert.equal(parseByteRange('bytes=-0', 10), 'unsatisfiable')
  })

  it('ignores other units, several ranges, malformed values and empty bodies', () => {
    for (const v of [
      'items=0-1',
      'bytes=0-1,3-4',
      'bytes=4-1',
      'bytes=a-b',
      'bytes=',
      'bytes 0-1',
      'bytes=--1',
      'bytes=1-2-3',
    ])
      assert.equal(parseByteRange(v, 10), undefined, v)
    assert.equal(parseByteRange('bytes=0-1', 0), undefined)
  })
})

describe('answerRange', () => {
  it('206 with Content-Range for one satisfiable range', () => {
    assert.deepEqual(answerRange('GET', { range: 'bytes=0-4' }, STORED, 36), {
      status: 206,
      start: 0,
      end: 4,
      contentRange: 'bytes 0-4/36',
    })
  })

  it('416 with Content-Range bytes */n when unsatisfiable (§15.5.17)', () => {
    assert.deepEqual(answerRange('GET', { range: 'bytes=40-' }, STORED, 36), {
      status: 416,
      contentRange: 'bytes */36',
    })
  })

  it('the full 200 without Range, for HEAD and other methods, or for ignored ranges', () => {
    assert.deepEqual(answerRange('GET', {}, STORED, 36), { status: 200 })
    assert.deepEqual(answerRange('HEAD', { range: 'bytes=0-4' }, STORED, 36), { status: 200 })
    assert.deepEqual(answerRange('GET', { range: 'bytes=0-1,5-6' }, STORED, 36), {
      status: 200,
    })
  })

  it('the full 200 when If-Range fails', () => {
    const r = answerRange('GET', { range: 'bytes=0-4', 'if-range': '"v2"' }, STORED, 36)
    assert.deepEqual(r, { status: 200 })
    const ok = answerRange('GET', { range: 'bytes=0-4', 'if-range': '"v1"' }, STORED, 36)
    assert.equal(ok.status, 206)
  })
})

describe('ifRangeHolds (RFC 9110 §13.1.5)', () => {
  it('holds without the field', () => {
    assert.equal(ifRangeHolds(undefined, STORED), true)
  })

  it('an entity-tag needs a strong match', () => {
    assert.equal(ifRangeHolds('"v1"', STORED), true)
    assert.equal(ifRangeHolds('"v2"', STORED), false)
    assert.equal(ifRangeHolds('W/"v1"', STORED), false)
    assert.equal(ifRangeHolds('"v1"', [['etag', 'W/"v1"']]), false)
    assert.equal(ifRangeHolds('"v1"', []), false)
  })

  it('a date must equal Last-Modified, itself at least 60 s older than Date (§8.8.2.2)', () => {
    assert.equal(ifRangeHolds(LM, STORED), true)
    assert.equal(ifRangeHolds(httpDate(T - 3_599_000), STORED), false)
    const recent: HeaderList = [
      ['last-modified', httpDate(T - 30_000)],
      ['date', httpDate(T)],
    ]
    assert.equal(ifRangeHolds(httpDate(T - 30_000), recent), false)
    assert.equal(ifRangeHolds(LM, [['last-modified', LM]]), false, 'no Date: not known strong')
    assert.equal(ifRangeHolds('yesterday', STORED), false)
  })
})
