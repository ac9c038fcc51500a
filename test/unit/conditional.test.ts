import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { isNotModified, NOT_MODIFIED_FIELDS } from '../../src/http/conditional.js'
import type { HeaderList } from '../../src/http/headers.js'

const T = Date.UTC(2026, 0, 15, 12, 0, 0)
const httpDate = (ms: number): string => new Date(ms).toUTCString()

const withEtag = (etag: string): HeaderList => [
  ['content-type', 'text/html'],
  ['etag', etag],
  ['date', httpDate(T)],
]

describe('isNotModified: If-None-Match (RFC 9110 §13.1.2, weak comparison §8.8.3.2)', () => {
  it('matches an identical strong tag', () => {
    assert.equal(isNotModified({ 'if-none-match': '"v1"' }, withEtag('"v1"')), true)
  })

  it('does not match a different tag, or a tag differing only in case', () => {
    assert.equal(isNotModified({ 'if-none-match': '"v2"' }, withEtag('"v1"')), false)
    assert.equal(isNotModified({ 'if-none-match': '"V1"' }, withEtag('"v1"')), false)
  })

  it('ignores W/ on either side', () => {
    assert.equal(isNotModified({ 'if-none-match': 'W/"v1"' }, withEtag('"v1"')), true)
    assert.equal(isNotModified({ 'if-none-match': '"v1"' }, withEtag('W/"v1"')), true)
    assert.equal(isNotModified({ 'if-none-match': 'W/"v1"' }, withEtag('W/"v1"')), true)
  })

  it('never treats W/ as part of the opaque tag', () => {
    assert.equal(isNotModified({ 'if-none-match': '"W/v1"' }, withEtag('"v1"')), false)
    // A lower-case w/ is not the weak indicator (it is case-sensitive).
    assert.equal(isNotModified({ 'if-none-match': 'w/"v1"' }, withEtag('"v1"')), false)
  })

  it('matches any member of a list, with any whitespace', () => {
    assert.equal(isNotModified({ 'if-none-match': '"a", "b",W/"v1"' }, withEtag('"v1"')), true)
    assert.equal(isNotModified({ 'if-none-match': '  "a" ,\t"v1"  ' }, withEtag('"v1"')), true)
    assert.equal(isNotModified({ 'if-none-match': '"a", "b"' }, withEtag('"v1"')), false)
    assert.equal(isNotModified({ 'if-none-match': ', ,"v1",' }, withEtag('"v1"')), true)
  })

  it('keeps commas that are part of a quoted entity-tag', () => {
    assert.equal(isNotModified({ 'if-none-match': '"a,b"' }, withEtag('"a,b"')), true)
    assert.equal(isNotModified({ 'if-none-match': '"x", W/"a,b"' }, withEtag('"a,b"')), true)
    // Splitting "a,b" on the comma must not match a stored "a" or "b".
    assert.equal(isNotModified({ 'if-none-match': '"a,b"' }, withEtag('"a"')), false)
    assert.equal(isNotModified({ 'if-none-match': '"x,"a"' }, withEtag('"a"')), false)
  })

  it('"*" matches the stored representation, with or without an ETag', () => {
    assert.equal(isNotModified({ 'if-none-match': '*' }, withEtag('"v1"')), true)
    assert.equal(isNotModified({ 'if-none-match': ' * ' }, [['date', httpDate(T)]]), true)
  })

  it('a tag never matches a stored response without ETag', () => {
    assert.equal(isNotModified({ 'if-none-match': '"v1"' }, [['date', httpDate(T)]]), false)
  })

  it('takes precedence over If-Modified-Since, even when If-Modified-Since would match (§13.2.2)', () => {
    const headers: HeaderList = [
      ['etag', '"v1"'],
      ['last-modified', httpDate(T - 60_000)],
    ]
    assert.equal(
      isNotModified({ 'if-none-match': '"v0"', 'if-modified-since': httpDate(T) }, headers),
      false,
    )
    assert.equal(
      isNotModified(
        { 'if-none-match': '"v1"', 'if-modified-since': httpDate(T - 3_600_000) },
        headers,
      ),
      true,
    )
  })
})

describe('isNotModified: If-Modified-Since (RFC 9110 §13.1.3, RFC 9111 §4.3.2)', () => {
  const lm = (ms: number): HeaderList => [
    ['last-modified', httpDate(ms)],
    ['date', httpDate(T + 3_600_000)],
  ]

  it('is not modified when Last-Modified is at or before the date', () => {
    assert.equal(isNotModified({ 'if-modified-since': httpDate(T) }, lm(T)), true)
    assert.equal(isNotModified({ 'if-modified-since': httpDate(T) }, lm(T - 1000)), true)
    assert.equal(isNotModified({ 'if-modified-since': httpDate(T) }, lm(T + 1000)), false)
  })

  it('uses Last-Modified rather than Date when both are stored', () => {
    // Date is an hour later than the condition, Last-Modified earlier: not modified.
    assert.equal(isNotModified({ 'if-modified-since': httpDate(T) }, lm(T - 60_000)), true)
  })

  it('falls back to the stored Date without Last-Modified', () => {
    const dated: HeaderList = [['date', httpDate(T)]]
    assert.equal(isNotModified({ 'if-modified-since': httpDate(T) }, dated), true)
    assert.equal(isNotModified({ 'if-modified-since': httpDate(T - 1000) }, dated), false)
  })

  it('is false with neither Last-Modified nor Date, or with an invalid Last-Modified', () => {
    assert.equal(isNotModified({ 'if-modified-since': httpDate(T) }, [['etag', '"x"']]), false)
    const bad: HeaderList = [
      ['last-modified', 'yesterday'],
      ['date', httpDate(T - 60_000)],
    ]
    assert.equal(isNotModified({ 'if-modified-since': httpDate(T) }, bad), false)
  })

  it('accepts the obsolete date formats in the condition', () => {
    const stored = lm(T - 60_000)
    assert.equal(
      isNotModified({ 'if-modified-since': 'Thursday, 15-Jan-26 12:00:00 GMT' }, stored),
      true,
    )
    assert.equal(isNotModified({ 'if-modified-since': 'Thu Jan 15 12:00:00 2026' }, stored), true)
  })

  it('ignores an invalid HTTP-date, even one Date.parse accepts', () => {
    const stored = lm(T - 60_000)
    for (const ims of [
      '3000',
      '0',
      '2030-01-01',
      '12/25/2030',
      'Thu, 01 Jan 2099 00:00:00 PST',
      'garbage',
      '',
    ]) {
      assert.equal(isNotModified({ 'if-modified-since': ims }, stored), false, ims)
    }
  })

  it('ignores a list of dates', () => {
    assert.equal(
      isNotModified({ 'if-modified-since': `${httpDate(T)}, ${httpDate(T)}` }, lm(T - 60_000)),
      false,
    )
  })

  it('is false without any condition', () => {
    assert.equal(isNotModified({}, lm(T - 60_000)), false)
    assert.equal(isNotModified({}, withEtag('"v1"')), false)
  })
})

describe('NOT_MODIFIED_FIELDS (RFC 9110 §15.4.5)', () => {
  it('lists the fields a 304 carries and nothing that describes a body', () => {
    for (const f of ['cache-control', 'content-location', 'date', 'etag', 'expires', 'vary']) {
      assert.ok(NOT_MODIFIED_FIELDS.has(f), f)
    }
    for (const f of ['content-length', 'content-type', 'content-encoding', 'set-cookie']) {
      assert.ok(!NOT_MODIFIED_FIELDS.has(f), f)
    }
  })
})
