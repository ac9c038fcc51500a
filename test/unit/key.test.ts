import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { Request } from 'express'
import {
  canonicalQuery,
  FORMAT_VERSION,
  lockKey,
  primaryKey,
  type ResourceId,
  resourceId,
  variantKey,
  varyValues,
} from '../../src/key.js'
import { MAX_KEY_BYTES, routingKey } from '../../src/store/types.js'

const id = (over: Partial<ResourceId> = {}): ResourceId => ({
  host: 'example.com',
  path: '/p',
  query: '',
  custom: undefined,
  ...over,
})
const key = (over: Partial<ResourceId> = {}, prefix = 'eftc'): string =>
  primaryKey(prefix, id(over))
const fakeReq = (over: Record<string, unknown>): Request => over as unknown as Request

/** Printable ASCII without spaces: what memcached accepts as a key. */
const MEMCACHED_KEY = /^[\x21-\x7e]+$/

describe('canonicalQuery', () => {
  it('is empty for no query', () => {
    assert.equal(canonicalQuery(''), '')
    assert.equal(canonicalQuery('?'), '')
    assert.equal(canonicalQuery('?&&'), '')
  })

  it('sorts by name, with or without the leading "?"', () => {
    assert.equal(canonicalQuery('?b=2&a=1&c=3'), 'a=1&b=2&c=3')
    assert.equal(canonicalQuery('b=2&a=1'), canonicalQuery('?a=1&b=2'))
  })

  it('keeps the order of values of a repeated name', () => {
    assert.equal(canonicalQuery('?a=2&b=x&a=1&a=3'), 'a=2&a=1&a=3&b=x')
    assert.notEqual(canonicalQuery('?a=1&a=2'), canonicalQuery('?a=2&a=1'))
  })

  it('reads "+" as a space, like req.query, so "+" and "%20" are the same', () => {
    assert.equal(canonicalQuery('?q=a+b'), canonicalQuery('?q=a%20b'))
    assert.equal(canonicalQuery('?q=a%20b'), 'q=a+b')
  })

  it('keeps an encoded plus apart from a space', () => {
    assert.notEqual(canonicalQuery('?q=a%2Bb'), canonicalQuery('?q=a+b'))
    assert.equal(canonicalQuery('?q=c%2B%2B'), 'q=c%2B%2B')
  })

  it('treats equivalent percent-encodings alike (RFC 3986 §6.2.2)', () => {
    assert.equal(canonicalQuery('?q=%41'), canonicalQuery('?q=A'))
    assert.equal(canonicalQuery('?q=%c3%a9'), canonicalQuery('?q=%C3%A9'))
    assert.equal(canonicalQuery('?q=é'), canonicalQuery('?q=%C3%A9'))
    assert.equal(canonicalQuery('?%61=1'), canonicalQuery('?a=1'))
  })

  it('keeps "&" and "=" inside names and values apart from separators', () => {
    assert.notEqual(canonicalQuery('?a=1%262'), canonicalQuery('?a=1&2'))
    assert.notEqual(canonicalQuery('?a%3D1=2'), canonicalQuery('?a=1=2'))
    assert.equal(canonicalQuery('?a=b=c'), 'a=b%3Dc')
  })

  it('a bare name equals an empty value, as req.query reads them', () => {
    assert.equal(canonicalQuery('?a'), canonicalQuery('?a='))
    assert.notEqual(canonicalQuery('?a'), canonicalQuery('?a=0'))
  })

  it('never merges different bytes: invalid UTF-8 stays distinct', () => {
    const variants = ['?a=%FF', '?a=%FE', '?a=%EF%BF%BD', '?a=%C3', '?a=%C3%28', '?a=%25FF']
    assert.equal(new Set(variants.map(canonicalQuery)).size, variants.length)
  })

  it('keeps a lone "%" literal', () => {
    assert.equal(canonicalQuery('?a=%zz'), 'a=%25zz')
    assert.equal(canonicalQuery('?a=100%'), 'a=100%25')
  })

  it('serialises like URLSearchParams for valid queries', () => {
    for (const q of [
      '?b=2&a=1',
      '?q=hello+world&x=%E2%82%AC',
      "?s=*-._~!'()",
      '?a=&=b&c',
      '?k=%2F%3F%23',
      '?é=ü',
    ]) {
      const expected = new URLSearchParams(
        [...new URLSearchParams(q)].sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0)),
      )
      assert.equal(canonicalQuery(q), expected.toString(), q)
    }
  })
})

describe('resourceId', () => {
  it('takes the lower-cased hostname, the raw path and the canonical query', () => {
    const r = resourceId(
      fakeReq({ originalUrl: '/a/B?z=1&y=2', hostname: 'Example.COM', protocol: 'https' }),
      'tenant',
    )
    assert.deepEqual(r, {
      scheme: 'https',
      host: 'example.com',
      path: '/a/B',
      query: 'y=2&z=1',
      custom: 'tenant',
    })
  })

  it('falls back to req.url, then "/", and to an empty host', () => {
    assert.deepEqual(resourceId(fakeReq({ url: '/u?x' }), undefined), {
      scheme: 'http',
      host: '',
      path: '/u',
      query: 'x=',
      custom: undefined,
    })
    assert.deepEqual(resourceId(fakeReq({}), undefined), {
      scheme: 'http',
      host: '',
      path: '/',
      query: '',
      custom: undefined,
    })
  })
})

describe('primaryKey', () => {
  it('separates http from https; no scheme means http', () => {
    assert.notEqual(key({ scheme: 'http' }), key({ scheme: 'https' }))
    assert.equal(key({ scheme: 'http' }), key())
  })

  it('is prefix, format version and a base64url SHA-256', () => {
    assert.match(key(), new RegExp(`^eftc:${FORMAT_VERSION}:[A-Za-z0-9_-]{43}$`))
    assert.match(key({}, 'my.app-1'), /^my\.app-1:/)
  })

  it('is deterministic', () => {
    assert.equal(key({ path: '/x', query: 'a=1' }), key({ path: '/x', query: 'a=1' }))
  })

  it('differs by prefix, host, path, query and custom part', () => {
    const keys = [
      key(),
      key({}, 'other'),
      key({ host: 'example.org' }),
      key({ path: '/q' }),
      key({ path: '/P' }),
      key({ path: '/p/' }),
      key({ query: 'a=1' }),
      key({ query: 'a=2' }),
      key({ custom: 'tenant-a' }),
      key({ custom: 'tenant-b' }),
      key({ custom: '' }),
      key({ custom: 'null' }),
    ]
    assert.equal(new Set(keys).size, keys.length)
  })

  it('separates inputs a 32-bit string hash would collide on', () => {
    // "Aa" and "BB" share Java's String.hashCode; so do "AaAa", "BBBB", "AaBB" and "BBAa".
    assert.notEqual(key({ path: '/p/Aa' }), key({ path: '/p/BB' }))
    const paths = ['/AaAa', '/BBBB', '/AaBB', '/BBAa']
    assert.equal(new Set(paths.map((path) => key({ path }))).size, 4)
  })

  it('cannot be forged by moving text between parts (the parts are JSON-encoded)', () => {
    const forgeries: Partial<ResourceId>[][] = [
      [{ path: '/a","b' }, { path: '/a', query: 'b' }],
      [
        { path: '/a?b', query: '' },
        { path: '/a', query: 'b' },
      ],
      [
        { path: '/a', query: 'b","x' },
        { path: '/a', query: 'b', custom: 'x' },
      ],
      [{ host: 'example.com","/p' }, { host: 'example.com', path: '/p' }],
      [
        { host: 'example.com/p', path: '' },
        { host: 'example.com', path: '/p' },
      ],
      [
        { path: '/a\\', query: 'b' },
        { path: '/a', query: '\\b' },
      ],
      [
        { path: '/a', custom: undefined },
        { path: '/a', custom: 'null' },
      ],
    ]
    for (const [a, b] of forgeries) assert.notEqual(key(a), key(b), JSON.stringify([a, b]))
  })

  it('stays within memcached key rules for any URL, even 100 KB of it', () => {
    const huge = `/${'x'.repeat(100 * 1024)}`
    const prefix = 'p'.repeat(64)
    for (const k of [
      key({ path: huge }, prefix),
      key({ query: `q=${'é'.repeat(50_000)}`, custom: 'c'.repeat(10_000) }, prefix),
      key({ path: '/with space/and\nnewline', host: 'ünïcode' }),
    ]) {
      assert.ok(Buffer.byteLength(k) <= MAX_KEY_BYTES, `${Buffer.byteLength(k)} bytes`)
      assert.match(k, MEMCACHED_KEY)
      assert.ok(!k.includes('~'))
    }
  })
})

describe('variantKey and lockKey', () => {
  const primary = key()

  it('a variant key routes with its primary (the part before "~")', () => {
    const v = variantKey(primary, ['accept-encoding'], ['br,gzip'])
    assert.ok(v.startsWith(`${primary}~`))
    assert.equal(routingKey(v), primary)
  })

  it('differs by names and by values, including absent vs empty vs "null"', () => {
    const keys = [
      variantKey(primary, ['accept-encoding'], ['gzip']),
      variantKey(primary, ['accept-encoding'], ['br']),
      variantKey(primary, ['accept-language'], ['gzip']),
      variantKey(primary, ['accept-encoding'], [null]),
      variantKey(primary, ['accept-encoding'], ['']),
      variantKey(primary, ['accept-encoding'], ['null']),
      variantKey(primary, ['a', 'b'], ['x', 'y']),
      variantKey(primary, ['a', 'b'], ['x,y', null]),
      variantKey(primary, ['a,b'], ['x,y']),
      variantKey(key({ path: '/other' }), ['accept-encoding'], ['gzip']),
    ]
    assert.equal(new Set(keys).size, keys.length)
  })

  it('is deterministic', () => {
    assert.equal(variantKey(primary, ['a'], ['1']), variantKey(primary, ['a'], ['1']))
  })

  it('locks route with the primary, whether they guard the primary or a variant', () => {
    const v = variantKey(primary, ['accept-encoding'], ['gzip'])
    for (const entryKey of [primary, v]) {
      const lock = lockKey(entryKey)
      assert.notEqual(lock, entryKey)
      assert.equal(routingKey(lock), primary)
    }
    assert.notEqual(lockKey(primary), lockKey(v))
    assert.notEqual(lockKey(primary), v)
  })

  it('variant and lock keys stay within 250 bytes with the longest prefix and many headers', () => {
    const longPrimary = key({ path: `/${'x'.repeat(100 * 1024)}` }, 'p'.repeat(64))
    const names = Array.from({ length: 50 }, (_, i) => `x-header-${i}`)
    const v = variantKey(
      longPrimary,
      names,
      names.map((n) => n.repeat(100)),
    )
    for (const k of [v, lockKey(v), lockKey(longPrimary)]) {
      assert.ok(Buffer.byteLength(k) <= MAX_KEY_BYTES, `${Buffer.byteLength(k)} bytes`)
      assert.match(k, MEMCACHED_KEY)
    }
  })
})

describe('varyValues', () => {
  it('normalises the named request headers, null when absent', () => {
    const req = fakeReq({ headers: { 'accept-encoding': 'BR, gzip', 'x-a': ['1', '2'] } })
    assert.deepEqual(varyValues(req, ['accept-encoding', 'accept-language', 'x-a']), [
      'br,gzip',
      null,
      '1,2',
    ])
  })
})
