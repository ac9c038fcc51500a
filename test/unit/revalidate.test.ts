import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { conditionalHeadersFor, freshen, validates } from '../../src/http/conditional.js'
import { type HeaderList, headersFromList } from '../../src/http/headers.js'

const T = Date.UTC(2026, 0, 15, 12, 0, 0)
const httpDate = (ms: number): string => new Date(ms).toUTCString()

const STORED: HeaderList = [
  ['content-type', 'text/plain'],
  ['content-length', '36'],
  ['cache-control', 'max-age=1'],
  ['etag', '"v1"'],
  ['last-modified', httpDate(T - 3_600_000)],
  ['x-a', '1'],
  ['x-a', '2'],
  ['date', httpDate(T)],
]

describe('conditionalHeadersFor (RFC 9111 §4.3.1)', () => {
  it('sends If-None-Match from ETag and If-Modified-Since from Last-Modified', () => {
    assert.deepEqual(conditionalHeadersFor(STORED), {
      'if-none-match': '"v1"',
      'if-modified-since': httpDate(T - 3_600_000),
    })
  })

  it('keeps a weak tag (If-None-Match compares weakly)', () => {
    assert.deepEqual(conditionalHeadersFor([['etag', 'W/"v1"']]), { 'if-none-match': 'W/"v1"' })
  })

  it('sends nothing without a validator; the stored Date is not one', () => {
    assert.deepEqual(conditionalHeadersFor([['date', httpDate(T)]]), {})
  })

  it('skips malformed validators', () => {
    assert.deepEqual(
      conditionalHeadersFor([
        ['etag', 'v1'],
        ['last-modified', 'yesterday'],
      ]),
      {},
    )
  })
})

describe('validates / freshen (RFC 9111 §4.3.4, §3.2)', () => {
  it('a 304 with the same ETag, or the same Last-Modified, or no validator, selects the stored response', () => {
    assert.equal(validates(STORED, { etag: '"v1"' }), true)
    assert.equal(validates(STORED, { 'last-modified': httpDate(T - 3_600_000) }), true)
    assert.equal(validates(STORED, {}), true)
  })

  it('a 304 naming another representation does not', () => {
    assert.equal(validates(STORED, { etag: '"v2"' }), false)
    assert.equal(validates(STORED, { etag: 'W/"v1"' }), false)
    assert.equal(validates(STORED, { 'last-modified': httpDate(T) }), false)
    assert.equal(validates([['date', httpDate(T)]], { etag: '"v1"' }), false)
    assert.equal(freshen(STORED, { etag: '"v2"' }), undefined)
  })

  it('replaces stored fields with the 304 ones, adds new ones, keeps the rest', () => {
    const next = freshen(STORED, {
      etag: '"v1"',
      'cache-control': 'max-age=3600',
      'x-a': '3',
      'x-new': 'n',
      date: httpDate(T + 5000),
    })
    assert.ok(next)
    const h = headersFromList(next)
    assert.equal(h['cache-control'], 'max-age=3600')
    assert.equal(h['x-a'], '3', 'all stored lines of a field are replaced')
    assert.equal(h['x-new'], 'n')
    assert.equal(h.date, httpDate(T + 5000))
    assert.equal(h['content-type'], 'text/plain')
    assert.equal(h['content-length'], '36')
  })

  it('never takes Content-Length, Content-Range, Content-Encoding, hop-by-hop fields or Age from a 304', () => {
    const next = freshen(STORED, {
      'content-length': '0',
      'content-range': 'bytes 0-1/2',
      'content-encoding': 'gzip',
      connection: 'x-hop',
      'x-hop': '1',
      'keep-alive': 'timeout=5',
      'transfer-encoding': 'chunked',
      age: '30',
      'x-cache': 'HIT',
    })
    assert.ok(next)
    const h = headersFromList(next)
    assert.equal(h['content-length'], '36')
    for (const name of [
      'content-range',
      'content-encoding',
      'connection',
      'x-hop',
      'keep-alive',
      'transfer-encoding',
      'age',
      'x-cache',
    ])
      assert.equal(h[name], undefined, name)
  })

  it('takes multi-valued fields from the 304 as lines', () => {
    const next = freshen(STORED, { 'x-a': ['7', '8'] })
    assert.ok(next)
    assert.deepEqual(headersFromList(next)['x-a'], ['7', '8'])
  })
})
