import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  deltaSeconds,
  fieldNames,
  MAX_DELTA_SECONDS,
  parseCacheControl,
  parseDeltaSeconds,
} from '../../src/http/cache-control.js'

const entries = (value: Parameters<typeof parseCacheControl>[0]) => [...parseCacheControl(value)]

describe('parseCacheControl', () => {
  it('returns an empty map for absent or empty fields', () => {
    assert.equal(parseCacheControl(undefined).size, 0)
    assert.equal(parseCacheControl('').size, 0)
    assert.equal(parseCacheControl([]).size, 0)
    assert.equal(parseCacheControl(' , ,, ').size, 0)
  })

  it('parses bare directives as true and arguments as strings', () => {
    assert.deepEqual(entries('public, max-age=60, must-revalidate'), [
      ['public', true],
      ['max-age', '60'],
      ['must-revalidate', true],
    ])
  })

  it('lower-cases directive names but keeps argument case', () => {
    assert.deepEqual(entries('Max-Age=60, NO-CACHE="Set-Cookie", X-Ext=AbC'), [
      ['max-age', '60'],
      ['no-cache', 'Set-Cookie'],
      ['x-ext', 'AbC'],
    ])
  })

  it('tolerates whitespace around members and around "="', () => {
    assert.deepEqual(entries('  max-age = 60 ,\tpublic  '), [
      ['max-age', '60'],
      ['public', true],
    ])
  })

  it('keeps commas inside quoted values', () => {
    const d = parseCacheControl('no-cache="set-cookie, x-a", max-age=5, private="x-b,x-c"')
    assert.equal(d.get('no-cache'), 'set-cookie, x-a')
    assert.equal(d.get('max-age'), '5')
    assert.equal(d.get('private'), 'x-b,x-c')
    assert.equal(d.size, 3)
  })

  it('unescapes quoted-pair escapes, including escaped quotes and commas', () => {
    const d = parseCacheControl('x-a="say \\"hi\\", ok", x-b="back\\\\slash", max-age=1')
    assert.equal(d.get('x-a'), 'say "hi", ok')
    assert.equal(d.get('x-b'), 'back\\slash')
    assert.equal(d.get('max-age'), '1')
  })

  it('accepts the quoted form of a token argument (RFC 9111 §5.2)', () => {
    assert.equal(deltaSeconds(parseCacheControl('max-age="60"'), 'max-age'), 60)
  })

  it('an empty argument is an empty string, not true', () => {
    assert.equal(parseCacheControl('private=""').get('private'), '')
    assert.equal(parseCacheControl('max-age=').get('max-age'), '')
  })

  it('combines repeated field lines given as an array', () => {
    assert.deepEqual(entries(['public', 'max-age=60', 'no-cache="a, b"']), [
      ['public', true],
      ['max-age', '60'],
      ['no-cache', 'a, b'],
    ])
  })

  it('accepts a number (a header set with res.setHeader(name, 60))', () => {
    assert.deepEqual(entries(60), [['60', true]])
  })

  it('skips members whose name is not a token, keeping the others', () => {
    assert.deepEqual(entries('=5, "junk", max-age=60, a b=1, (x), no-store, @=2'), [
      ['max-age', '60'],
      ['no-store', true],
    ])
  })

  it('uses the first occurrence of a repeated directive (RFC 9111 §4.2.1)', () => {
    assert.equal(parseCacheControl('max-age=10, max-age=99').get('max-age'), '10')
    assert.equal(parseCacheControl(['max-age=10', 'MAX-AGE=99']).get('max-age'), '10')
    assert.equal(parseCacheControl('private="a", private').get('private'), 'a')
    assert.equal(parseCacheControl('private, private="a"').get('private'), true)
  })

  it('an unterminated quoted value keeps the name without a value and swallows the rest', () => {
    // The stricter reading: unqualified no-cache, not `no-cache="a, max-age=60"`.
    const d = parseCacheControl('no-cache="a, max-age=60')
    assert.equal(d.get('no-cache'), true)
    assert.equal(d.has('max-age'), false)
    assert.equal(parseCacheControl('private="x\\').get('private'), true)
  })

  it('text after a closing quote makes the value malformed (name kept, value dropped)', () => {
    const d = parseCacheControl('private="x" junk, max-age=5')
    assert.equal(d.get('private'), true)
    assert.equal(d.get('max-age'), '5')
  })

  it('a token argument is kept verbatim, even when not delta-seconds', () => {
    assert.equal(parseCacheControl('max-age=60 junk').get('max-age'), '60 junk')
    assert.equal(parseCacheControl('x=a=b').get('x'), 'a=b')
  })
})

describe('parseDeltaSeconds / deltaSeconds', () => {
  it('reads non-negative decimal integers', () => {
    assert.equal(parseDeltaSeconds('0'), 0)
    assert.equal(parseDeltaSeconds('60'), 60)
    assert.equal(parseDeltaSeconds('0060'), 60)
  })

  it('rejects anything else', () => {
    for (const v of ['', '-1', '+1', '1.5', '1e3', ' 60', '60 ', '0x10', 'sixty', '６０', '١']) {
      assert.equal(parseDeltaSeconds(v), undefined, JSON.stringify(v))
    }
    assert.equal(parseDeltaSeconds(undefined), undefined)
  })

  it('caps huge values at 2^31 (RFC 9111 §1.2.2)', () => {
    assert.equal(MAX_DELTA_SECONDS, 2 ** 31)
    assert.equal(parseDeltaSeconds('2147483647'), 2147483647)
    assert.equal(parseDeltaSeconds('2147483648'), 2 ** 31)
    assert.equal(parseDeltaSeconds('2147483649'), 2 ** 31)
    assert.equal(parseDeltaSeconds('99999999999999999999999999'), 2 ** 31)
    assert.equal(parseDeltaSeconds('9'.repeat(400)), 2 ** 31)
  })

  it('deltaSeconds reads a directive, undefined when absent, bare or invalid', () => {
    const d = parseCacheControl(
      'max-age=60, s-maxage=-1, no-cache, stale-if-error=1.5, x=99999999999',
    )
    assert.equal(deltaSeconds(d, 'max-age'), 60)
    assert.equal(deltaSeconds(d, 's-maxage'), undefined)
    assert.equal(deltaSeconds(d, 'no-cache'), undefined)
    assert.equal(deltaSeconds(d, 'stale-if-error'), undefined)
    assert.equal(deltaSeconds(d, 'stale-while-revalidate'), undefined)
    assert.equal(deltaSeconds(d, 'x'), 2 ** 31)
  })
})

describe('fieldNames', () => {
  it('lists the lower-cased, trimmed field names of a qualified directive', () => {
    const d = parseCacheControl('private="Set-Cookie, X-User ,x-a", no-cache="x-b"')
    assert.deepEqual(fieldNames(d, 'private'), ['set-cookie', 'x-user', 'x-a'])
    assert.deepEqual(fieldNames(d, 'no-cache'), ['x-b'])
  })

  it('accepts the token form (private=set-cookie)', () => {
    assert.deepEqual(fieldNames(parseCacheControl('private=set-cookie'), 'private'), ['set-cookie'])
  })

  it('is empty for an unqualified, absent or empty directive, and skips empty members', () => {
    const d = parseCacheControl('private, no-cache=""')
    assert.deepEqual(fieldNames(d, 'private'), [])
    assert.deepEqual(fieldNames(d, 'no-cache'), [])
    assert.deepEqual(fieldNames(d, 'absent'), [])
    assert.deepEqual(fieldNames(parseCacheControl('private=", a,,b ,"'), 'private'), ['a', 'b'])
  })
})
