import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { CircuitBreaker, CircuitOpenError } from '../../src/store/breaker.js'

function fakeClock() {
  let now = 1000
  return {
    now: () => now,
    advance: (ms: number) => {
      now += ms
    },
  }
}

describe('CircuitBreaker', () => {
  it('opens after failureThreshold consecutive failures; a success resets the count', () => {
    const opened: Array<[unknown, boolean]> = []
    const breaker = new CircuitBreaker({
      failureThreshold: 3,
      now: fakeClock().now,
      onOpen: (error, reopened) => opened.push([error, reopened]),
    })
    for (let i = 0; i < 2; i++) breaker.failure(breaker.acquire()!, 'e')
    breaker.success(breaker.acquire()!)
    for (let i = 0; i < 2; i++) breaker.failure(breaker.acquire()!, 'e')
    assert.equal(breaker.state, 'closed')
    breaker.failure(breaker.acquire()!, 'third')
    assert.equal(breaker.state, 'open')
    assert.deepEqual(opened, [['third', false]])
    assert.equal(breaker.acquire(), undefined)
  })

  it('after the cooldown lets exactly one probe through; success closes', () => {
    const clock = fakeClock()
    let closed = 0
    const breaker = new CircuitBreaker({
      failureThreshold: 1,
      cooldownMs: 2000,
      now: clock.now,
      onClose: () => closed++,
    })
    breaker.failure(breaker.acquire()!)
    clock.advance(1999)
    assert.equal(breaker.acquire(), undefined)
    clock.advance(1)
    const probe = breaker.acquire()
    assert.notEqual(probe, undefined)
    assert.equal(breaker.state, 'half-open')
    for (let i = 0; i < 5; i++) assert.equal(breaker.acquire(), undefined, 'one probe only')
    breaker.success(probe!)
    assert.equal(breaker.state, 'closed')
    assert.equal(closed, 1)
    assert.notEqual(breaker.acquire(), undefined)
  })

  it('a failed probe re-opens for another cooldown', () => {
    const clock = fakeClock()
    const opened: boolean[] = []
    const breaker = new CircuitBreaker({
      failureThreshold: 1,
      cooldownMs: 500,
      now: clock.now,
      onOpen: (_e, reopened) => opened.push(reopened),
    })
    breaker.failure(breaker.acquire()!)
    clock.advance(500)
    breaker.failure(breaker.acquire()!)
    assert.equal(breaker.state, 'open')
    assert.deepEqual(opened, [false, true])
    clock.advance(499)
    assert.equal(breaker.acquire(), undefined)
    clock.advance(1)
    assert.notEqual(breaker.acquire(), undefined)
  })

  it('ignores outcomes of calls started before a state change', () => {
    const clock = fakeClock()
    const breaker = new CircuitBreaker({ failureThreshold: 2, cooldownMs: 100, now: clock.now })
    const early = [breaker.acquire()!, breaker.acquire()!, breaker.acquire()!]
    breaker.failure(early[0]!)
    breaker.failure(early[1]!)
    assert.equal(breaker.state, 'open')
    clock.advance(100)
    const probe = breaker.acquire()!
    // A late result of a call from the closed period cannot decide the probe.
    breaker.success(early[2]!)
    assert.equal(breaker.state, 'half-open')
    breaker.success(probe)
    assert.equal(breaker.state, 'closed')
    // Nor can a late failure from before re-open it.
    breaker.failure(early[2]!)
    breaker.failure(early[2]!)
    assert.equal(breaker.state, 'closed')
  })

  it('a probe that never reports is replaced after another cooldown', () => {
    const clock = fakeClock()
    const breaker = new CircuitBreaker({ failureThreshold: 1, cooldownMs: 100, now: clock.now })
    breaker.failure(breaker.acquire()!)
    clock.advance(100)
    const lost = breaker.acquire()!
    clock.advance(99)
    assert.equal(breaker.acquire(), undefined)
    clock.advance(1)
    const second = breaker.acquire()
    assert.notEqual(second, undefined)
    breaker.success(lost)
    assert.equal(breaker.state, 'half-open', 'the lost probe is stale')
    breaker.success(second!)
    assert.equal(breaker.state, 'closed')
  })

  it('msUntilProbe tells when acquire() will let the next probe through', () => {
    const clock = fakeClock()
    const breaker = new CircuitBreaker({ failureThreshold: 1, cooldownMs: 500, now: clock.now })
    assert.equal(breaker.msUntilProbe(), 0, 'closed')
    breaker.failure(breaker.acquire()!, 'down')
    assert.equal(breaker.msUntilProbe(), 500)
    clock.advance(499)
    assert.equal(breaker.msUntilProbe(), 1)
    assert.equal(breaker.acquire(), undefined, 'consistent with acquire()')
    clock.advance(1)
    assert.equal(breaker.msUntilProbe(), 0)
    const probe = breaker.acquire()
    assert.notEqual(probe, undefined)
    // Half-open with the probe out: the next one only if this one is lost for a whole cooldown.
    assert.equal(breaker.msUntilProbe(), 500)
    clock.advance(200)
    assert.equal(breaker.msUntilProbe(), 300)
    breaker.failure(probe!, 'still down')
    assert.equal(breaker.msUntilProbe(), 500, 'a failed probe starts a new cooldown')
    clock.advance(500)
    breaker.success(breaker.acquire()!)
    assert.equal(breaker.state, 'closed')
    assert.equal(breaker.msUntilProbe(), 0)
  })

  it('run() wraps a call and refuses with CircuitOpenError while open', async () => {
    const breaker = new CircuitBreaker({ failureThreshold: 1, now: fakeClock().now })
    assert.equal(await breaker.run(async () => 42), 42)
    await assert.rejects(
      breaker.run(async () => {
        throw new Error('boom')
      }),
      /boom/,
    )
    let called = false
    await assert.rejects(
      breaker.run(async () => {
        called = true
      }),
      (error: unknown) => error instanceof CircuitOpenError && error.code === 'ECIRCUIT_OPEN',
    )
    assert.equal(called, false)
  })

  it('callbacks that throw do not break the accounting', () => {
    const clock = fakeClock()
    const breaker = new CircuitBreaker({
      failureThreshold: 1,
      cooldownMs: 10,
      now: clock.now,
      onOpen: () => {
        throw new Error('hook')
      },
      onClose: () => {
        throw new Error('hook')
      },
    })
    breaker.failure(breaker.acquire()!)
    assert.equal(breaker.state, 'open')
    clock.advance(10)
    breaker.success(breaker.acquire()!)
    assert.equal(breaker.state, 'closed')
  })

  it('validates its options', () => {
    assert.throws(() => new CircuitBreaker({ failureThreshold: 0 }), TypeError)
    assert.throws(() => new CircuitBreaker({ failureThreshold: 1.5 }), TypeError)
    assert.throws(() => new CircuitBreaker({ cooldownMs: -1 }), TypeError)
    const defaults = new CircuitBreaker()
    assert.equal(defaults.failureThreshold, 5)
    assert.equal(defaults.cooldownMs, 2000)
  })
})
