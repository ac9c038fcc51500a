import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { invalidatesStored, isSafeMethod } from '../../src/http/method.js'

describe('isSafeMethod (RFC 9110 §9.2.1)', () => {
  it('GET, HEAD, OPTIONS and TRACE are safe', () => {
    for (const m of ['GET', 'HEAD', 'OPTIONS', 'TRACE']) assert.equal(isSafeMethod(m), true, m)
  })

  it('everything else is not, unknown and lower-case methods included (§9.1)', () => {
    for (const m of ['POST', 'PUT', 'PATCH', 'DELETE', 'M-SEARCH', 'PROPFIND', 'FOO', 'get'])
      assert.equal(isSafeMethod(m), false, m)
  })
})

describe('invalidatesStored (RFC 9111 §4.4)', () => {
  it('an unsafe method with a 2xx or 3xx invalidates', () => {
    for (const status of [200, 201, 204, 301, 303, 399])
      assert.equal(invalidatesStored('M-SEARCH', status), true, String(status))
  })

  it('errors and safe methods do not', () => {
    for (const status of [100, 400, 404, 500])
      assert.equal(invalidatesStored('POST', status), false)
    assert.equal(invalidatesStored('GET', 200), false)
    assert.equal(invalidatesStored('OPTIONS', 200), false)
  })
})
