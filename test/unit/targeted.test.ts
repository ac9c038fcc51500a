import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { parseTargeted, targetedDirectives } from '../../src/http/targeted.js'

const entries = (text: string) => {
  const d = parseTargeted(text)
  return d === undefined ? undefined : Object.fromEntries(d)
}

describe('parseTargeted (RFC 9213 §2.1, RFC 8941 Dictionary)', () => {
  it('integers become delta-seconds text, bare names true', () => {
    assert.deepEqual(entries('max-age=60, no-cache'), { 'max-age': '60', 'no-cache': true })
    assert.deepEqual(entries('  s-maxage=0 ,must-revalidate'), {
      's-maxage': '0',
      'must-revalidate': true,
    })
  })

  it('accepts parameters, strings, tokens, booleans and byte sequences; ?0 drops a directive', () => {
    assert.deepEqual(entries('max-age=5;x=1, foo="bar", baz=tok, no-store=?0, q=:AAE=:'), {
      'max-age': '5',
      foo: 'bar',
      baz: 'tok',
      q: ':AAE=:',
    })
  })

  it('the last of duplicate keys wins (RFC 8941 §4.2.2)', () => {
    assert.deepEqual(entries('max-age=5, max-age=9'), { 'max-age': '9' })
  })

  it('rejects invalid dictionaries', () => {
    for (const t of [
      'max-age=10000, &&&&&',
      'Max-Age=5',
      'max-age=5,',
      'max-age=5 no-store',
      'max-age="5',
      'max-age = 5',
    ])
      assert.equal(parseTargeted(t), undefined, t)
  })

  it('rejects a lifetime directive that is not a non-negative Integer', () => {
    for (const t of ['max-age="10000"', 'max-age=1.5', 'max-age=-1', 'stale-if-error=?1'])
      assert.equal(parseTargeted(t), undefined, t)
  })
})

describe('targetedDirectives (RFC 9213 §2.2)', () => {
  it('uses the first field of the list that is present; empty counts as absent', () => {
    const headers = { 'a-cc': '', 'b-cc': 'max-age=1', 'cdn-cache-control': 'max-age=2' }
    assert.equal(targetedDirectives(headers, ['a-cc', 'b-cc'])?.get('max-age'), '1')
    assert.equal(targetedDirectives(headers, ['cdn-cache-control'])?.get('max-age'), '2')
    assert.equal(targetedDirectives(headers, []), undefined)
    assert.equal(targetedDirectives({}, ['cdn-cache-control']), undefined)
  })

  it('combines repeated field lines; an invalid field gives way to the next valid one', () => {
    assert.deepEqual(
      Object.fromEntries(targetedDirectives({ x: ['max-age=1', 'no-cache'] }, ['x']) ?? []),
      { 'max-age': '1', 'no-cache': true },
    )
    assert.equal(targetedDirectives({ x: '&&', y: 'max-age=1' }, ['x', 'y'])?.get('max-age'), '1')
    assert.equal(targetedDirectives({ x: '&&' }, ['x']), undefined)
  })
})
