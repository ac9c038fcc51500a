import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  getStored,
  getStoredJoined,
  normalizeForVary,
  parseHttpDate,
  parseVary,
  requestHeader,
  toStoredHeaders,
} from '../../src/http/headers.js'

const NONE: ReadonlySet<string> = new Set()

describe('toStoredHeaders', () => {
  it('keeps ordinary fields, lower-cased, values as strings', () => {
    assert.deepEqual(
      toStoredHeaders(
        { 'Content-Type': 'text/html', 'content-length': 12, ETag: '"v1"', 'x-custom': 'Yes' },
        NONE,
      ),
      [
        ['content-type', 'text/html'],
        ['content-length', '12'],
        ['etag', '"v1"'],
        ['x-custom', 'Yes'],
      ],
    )
  })

  it('drops hop-by-hop fields (RFC 9110 §7.6.1) and proxy-specific ones (RFC 9111 §3.1)', () => {
    const out = toStoredHeaders(
      {
        connection: 'keep-alive',
        'keep-alive': 'timeout=5',
        'proxy-connection': 'close',
        'proxy-authenticate': 'Basic',
        'proxy-authentication-info': 'nextnonce="x"',
        'proxy-authorization': 'Basic x',
        te: 'trailers',
        trailer: 'x-checksum',
        'transfer-encoding': 'chunked',
        upgrade: 'h2c',
        'x-kept': '1',
      },
      NONE,
    )
    assert.deepEqual(out, [['x-kept', '1']])
  })

  it("drops Age and the cache's own X-Cache and Cache-Status", () => {
    const out = toStoredHeaders(
      { age: '10', 'x-cache': 'MISS', 'cache-status': 'x; fwd=miss', vary: 'accept' },
      NONE,
    )
    assert.deepEqual(out, [['vary', 'accept']])
  })

  it('drops fields named in Connection, whatever their case or list layout', () => {
    const out = toStoredHeaders(
      {
        connection: ['X-Hop, x-other', ' X-THIRD '],
        'x-hop': 'a',
        'X-Other': 'b',
        'x-third': 'c',
        'x-kept': 'd',
      },
      NONE,
    )
    assert.deepEqual(out, [['x-kept', 'd']])
  })

  it('drops the fields of the drop set, matched case-insensitively against the header name', () => {
    const out = toStoredHeaders(
      { 'Set-Cookie': ['a=1', 'b=2'], 'X-User': 'ann', 'x-kept': '1' },
      new Set(['set-cookie', 'x-user']),
    )
    assert.deepEqual(out, [['x-kept', '1']])
  })

  it('turns arrays into repeated pairs, in order', () => {
    assert.deepEqual(
      toStoredHeaders(
        { link: ['<a>; rel=x', '<b>; rel=y'], 'x-n': [1, 2] as unknown as string[] },
        NONE,
      ),
      [
        ['link', '<a>; rel=x'],
        ['link', '<b>; rel=y'],
        ['x-n', '1'],
        ['x-n', '2'],
      ],
    )
  })

  it('skips undefined values and keeps empty strings', () => {
    assert.deepEqual(toStoredHeaders({ 'x-a': undefined, 'x-b': '' }, NONE), [['x-b', '']])
  })
})

describe('stored header lookups', () => {
  const list: [string, string][] = [
    ['link', '<a>'],
    ['etag', '"v"'],
    ['link', '<b>'],
  ]
  it('getStored returns the first value', () => {
    assert.equal(getStored(list, 'link'), '<a>')
    assert.equal(getStored(list, 'etag'), '"v"')
    assert.equal(getStored(list, 'nope'), undefined)
  })
  it('getStoredJoined joins repeated values with ", "', () => {
    assert.equal(getStoredJoined(list, 'link'), '<a>, <b>')
    assert.equal(getStoredJoined(list, 'nope'), undefined)
  })
  it('requestHeader joins repeated request fields', () => {
    assert.equal(requestHeader({ 'x-a': ['1', '2'] }, 'x-a'), '1, 2')
    assert.equal(requestHeader({ accept: 'text/html' }, 'accept'), 'text/html')
    assert.equal(requestHeader({}, 'accept'), undefined)
  })
})

describe('normalizeForVary (RFC 9111 §4.1)', () => {
  it('null for an absent header, distinct from an empty one', () => {
    assert.equal(normalizeForVary('accept-encoding', undefined), null)
    assert.equal(normalizeForVary('x-a', undefined), null)
    assert.notEqual(normalizeForVary('x-a', ''), null)
  })

  it('Accept-Encoding ignores member order, token case and whitespace', () => {
    const same = ['gzip, br', 'br,gzip', 'BR , GZip', ' gzip,br ', 'br, ,gzip']
    const values = same.map((v) => normalizeForVary('accept-encoding', v))
    for (const v of values) assert.equal(v, values[0])
  })

  it('Accept-Encoding keeps parameters, normalising the space around ";"', () => {
    assert.equal(
      normalizeForVary('accept-encoding', 'gzip ; q=0.5, br'),
      normalizeForVary('accept-encoding', 'br,gzip;q=0.5'),
    )
    assert.notEqual(
      normalizeForVary('accept-encoding', 'gzip;q=0.5, br'),
      normalizeForVary('accept-encoding', 'gzip, br'),
    )
    assert.notEqual(
      normalizeForVary('accept-encoding', 'gzip'),
      normalizeForVary('accept-encoding', 'gzip, br'),
    )
    assert.notEqual(
      normalizeForVary('accept-encoding', 'identity;q=0'),
      normalizeForVary('accept-encoding', 'identity'),
    )
  })

  it('Accept-Language / Accept-Charset: ordered by qvalue, ties keep their order, tags case-insensitive', () => {
    const al = (v: string) => normalizeForVary('accept-language', v)
    assert.equal(al('en, fr;q=0.5'), al('FR;q=0.5 ,EN'))
    assert.equal(al('en ,  fr ; q=0.5'), 'en,fr;q=0.5')
    assert.equal(al('de;q=0.1, fr;q=0.9, en'), 'en,fr;q=0.9,de;q=0.1')
    assert.equal(al('en-US, en;Q=0.8'), al('EN-us, en;q=0.8'))
    // Equal qvalues: the order is a preference (RFC 9110 §12.5.4).
    assert.notEqual(al('en, fr'), al('fr, en'))
    assert.notEqual(al('en;q=0.5, fr;q=0.5'), al('fr;q=0.5, en;q=0.5'))
    assert.notEqual(al('en, fr;q=0.5'), al('en;q=0.5, fr'))
    // A malformed qvalue: nothing is reordered.
    assert.notEqual(al('en;q=high, fr;q=0.5'), al('fr;q=0.5, en;q=high'))
    assert.notEqual(al('en;q=2, fr'), al('fr, en;q=2'))
    const ac = (v: string) => normalizeForVary('accept-charset', v)
    assert.equal(ac('UTF-8, iso-8859-1;q=0.5'), ac('iso-8859-1;q=0.5, utf-8'))
  })

  it('Accept: ordered by qvalue, ties keep their order, case kept', () => {
    const a = (v: string) => normalizeForVary('accept', v)
    assert.equal(a('text/html;q=0.9, application/json'), a('application/json, text/html ;q=0.9'))
    assert.notEqual(a('text/html, application/json'), a('application/json, text/html'))
    assert.notEqual(a('text/plain;format=A'), a('text/plain;format=a'))
  })

  it('other headers only lose insignificant whitespace: order and case still select a variant', () => {
    assert.notEqual(normalizeForVary('x-tenant', 'Acme'), normalizeForVary('x-tenant', 'acme'))
    assert.notEqual(normalizeForVary('x-list', 'a, b'), normalizeForVary('x-list', 'b, a'))
    assert.equal(normalizeForVary('x-list', 'a ,b'), normalizeForVary('x-list', 'a, b'))
    assert.equal(normalizeForVary('x-tenant', '  acme  '), 'acme')
    assert.equal(normalizeForVary('user-agent', 'Mozilla/5.0  (X11)'), 'Mozilla/5.0 (X11)')
  })

  it('different values never normalise to the same string', () => {
    const values = ['a', 'b', 'a,b', 'b,a', 'a;b', 'a b', 'a;q=0.5', '']
    for (const name of ['x-v', 'accept', 'accept-language']) {
      const out = new Set(values.map((v) => normalizeForVary(name, v)))
      assert.equal(out.size, values.length, name)
    }
    assert.notEqual(normalizeForVary('accept', 'A'), normalizeForVary('accept', 'a'))
  })
})

describe('parseVary', () => {
  it('lower-cases, de-duplicates and sorts the names', () => {
    assert.deepEqual(parseVary('Accept-Language, accept-encoding ,ACCEPT-LANGUAGE'), [
      'accept-encoding',
      'accept-language',
    ])
  })
  it('keeps "*"', () => {
    assert.deepEqual(parseVary('accept, *'), ['*', 'accept'])
  })
  it('is empty for absent, empty or comma-only values', () => {
    assert.deepEqual(parseVary(undefined), [])
    assert.deepEqual(parseVary(''), [])
    assert.deepEqual(parseVary(' , ,'), [])
  })
})

describe('parseHttpDate (RFC 9110 §5.6.7)', () => {
  const T = Date.UTC(1994, 10, 6, 8, 49, 37)

  it('parses the three formats to the same instant', () => {
    assert.equal(parseHttpDate('Sun, 06 Nov 1994 08:49:37 GMT'), T)
    assert.equal(parseHttpDate('Sunday, 06-Nov-94 08:49:37 GMT', Date.UTC(2026, 0, 1)), T)
    assert.equal(parseHttpDate('Sun Nov  6 08:49:37 1994'), T)
    assert.equal(parseHttpDate('  Sun, 06 Nov 1994 08:49:37 GMT  '), T)
  })

  it('round-trips Date#toUTCString', () => {
    for (const ms of [
      0,
      T,
      Date.UTC(2026, 1, 28, 23, 59, 59),
      Date.UTC(2024, 1, 29, 0, 0, 0),
      Date.UTC(9999, 11, 31, 23, 59, 59),
    ]) {
      assert.equal(parseHttpDate(new Date(ms).toUTCString()), ms)
    }
  })

  it('reads a two-digit year more than 50 years ahead as the previous century', () => {
    const now = Date.UTC(2026, 5, 1)
    assert.equal(
      new Date(parseHttpDate('Monday, 01-Jan-70 00:00:00 GMT', now) ?? 0).getUTCFullYear(),
      2070,
    )
    assert.equal(
      new Date(parseHttpDate('Monday, 01-Jan-80 00:00:00 GMT', now) ?? 0).getUTCFullYear(),
      1980,
    )
    assert.equal(
      new Date(parseHttpDate('Monday, 01-Jan-26 00:00:00 GMT', now) ?? 0).getUTCFullYear(),
      2026,
    )
  })

  it('accepts a leap second', () => {
    assert.equal(parseHttpDate('Sat, 31 Dec 2016 23:59:60 GMT'), Date.UTC(2017, 0, 1, 0, 0, 0))
  })

  it('rejects everything else, including what Date.parse accepts', () => {
    const invalid = [
      '',
      '0',
      '-1',
      '3000',
      '12/25/2030',
      '2030-01-01T00:00:00Z',
      'tomorrow',
      'Sun, 06 Nov 1994 08:49:37 PST',
      'Sun, 06 Nov 1994 08:49:37 UTC',
      'Sun, 06 Nov 1994 08:49:37',
      'sun, 06 nov 1994 08:49:37 gmt',
      'Sun, 6 Nov 1994 08:49:37 GMT',
      'Sun, 06 Nov 94 08:49:37 GMT',
      'Sun, 31 Nov 1994 08:49:37 GMT',
      'Sun, 29 Feb 2023 08:49:37 GMT',
      'Sun, 06 Nov 1994 24:00:00 GMT',
      'Sun, 06 Nov 1994 08:60:00 GMT',
      'Sun, 06 Nov 1994 08:49:61 GMT',
      'Sun, 00 Nov 1994 08:49:37 GMT',
      'Sun, 06 Nov 1994 08:49:37 GMT, Sun, 06 Nov 1994 08:49:37 GMT',
      'Sun, 06-Nov-94 08:49:37 GMT',
      'Sun Nov 06 08:49:37 1994 GMT',
    ]
    for (const v of invalid) assert.equal(parseHttpDate(v), undefined, v)
    assert.equal(parseHttpDate(undefined), undefined)
  })
})
