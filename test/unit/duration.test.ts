import assert from 'node:assert/strict'
import { beforeEach, describe, it } from 'node:test'
import { ConfigError } from '../../src/config-error.js'
import {
  type Duration,
  parseDuration,
  resetDurationWarnings,
  warnIfMilliseconds,
} from '../../src/duration.js'
import { parseOptions, parseRouteOptions, type ResponseCacheOptions } from '../../src/options.js'
import { MemoryStore } from '../../src/store/memory.js'
import { capture } from '../helpers/log-capture.js'

describe('parseDuration', () => {
  it('reads apicache-style words, singular and plural, with or without a space', () => {
    const cases: [string, number][] = [
      ['5 minutes', 300],
      ['1 minute', 60],
      ['5 mins', 300],
      ['5 min', 300],
      ['5min', 300],
      ['5m', 300],
      ['1 hour', 3600],
      ['1.5 hours', 5400],
      ['2 hr', 7200],
      ['2 hrs', 7200],
      ['1h', 3600],
      ['30 seconds', 30],
      ['1 second', 1],
      ['10 sec', 10],
      ['10 secs', 10],
      ['30s', 30],
      ['2 days', 172_800],
      ['1 day', 86_400],
      ['1d', 86_400],
      ['1 week', 604_800],
      ['2w', 1_209_600],
      ['250 ms', 0.25],
      ['100ms', 0.1],
      ['5 milliseconds', 0.005],
      ['30', 30],
      ['  5   minutes  ', 300],
    ]
    for (const [value, seconds] of cases) {
      assert.ok(Math.abs(parseDuration(value, 'ttl') - seconds) < 1e-9, value)
    }
  })

  it('keeps numbers as seconds', () => {
    assert.equal(parseDuration(0, 'ttl'), 0)
    assert.equal(parseDuration(1.5, 'ttl'), 1.5)
  })

  it('throws a ConfigError with code EFTC_OPTION naming the option', () => {
    for (const value of [-1, Number.NaN, 'fast', '', '-5s', '1e3', '.5s', null, {}]) {
      assert.throws(
        () => parseDuration(value, 'grace'),
        (err: unknown) =>
          err instanceof ConfigError &&
          err.code === 'EFTC_OPTION' &&
          err.option === 'grace' &&
          /`grace` must be a non-negative number of seconds or a string such as '250ms', '30s', '5m', '5 minutes'/.test(
            err.message,
          ),
        String(value),
      )
    }
  })

  it('names an unknown unit and suggests the nearest one', () => {
    const cases: [string, RegExp][] = [
      ['5 minuts', /Did you mean "5 minutes"\?/],
      ['2 hourz', /Did you mean "2 hours"\?/],
      ['3 dayz', /Did you mean "3 days"\?/],
      ['10 secnds', /Did you mean "10 seconds"\?/],
      ['5M', /unknown unit "M"/],
      ['1 fortnight', /unknown unit "fortnight"/],
    ]
    for (const [value, pattern] of cases) {
      assert.throws(
        () => parseDuration(value, 'ttl'),
        (err: unknown) => err instanceof ConfigError && pattern.test(err.message),
        value,
      )
    }
  })

  it('does not read units from the prototype', () => {
    assert.throws(() => parseDuration('5 constructor', 'ttl'), ConfigError)
    assert.throws(() => parseDuration('5 toString', 'ttl'), ConfigError)
  })
})

describe('Duration type', () => {
  it('accepts the documented forms at compile time and rejects typos', () => {
    const ok: Duration[] = [
      60,
      '250ms',
      '30s',
      '5m',
      '1h',
      '1d',
      '5 minutes',
      '1.5 hours',
      '2 days',
    ]
    assert.equal(ok.length, 9)
    // Never called: each marked line must be a type error, checked by `tsc --noEmit`.
    const typeErrors = (): Duration[] => [
      // @ts-expect-error misspelt unit
      '5 minuts',
      // @ts-expect-error upper-case unit
      '5M',
      // @ts-expect-error a unit without a number
      'minutes',
      // @ts-expect-error a boolean is not a duration
      true,
    ]
    assert.equal(typeof typeErrors, 'function')
  })
})

describe('numbers above one day', () => {
  beforeEach(() => resetDurationWarnings())

  it('warn once per option name that numbers are seconds', () => {
    const { logger, lines } = capture()
    warnIfMilliseconds(60_000, 'ttl', logger)
    warnIfMilliseconds(90_000, 'ttl', logger)
    warnIfMilliseconds(60_000, 'grace', logger)
    assert.equal(lines.length, 2)
    const [first, second] = lines
    assert.equal(first?.code, 'EFTC_DURATION_SECONDS')
    assert.equal(first?.option, 'ttl')
    assert.equal(first?.value, 60_000)
    assert.equal(first?.level, 40)
    assert.match(String(first?.msg), /`ttl: 60000` means 16\.7 hours/)
    assert.match(String(first?.msg), /seconds, not milliseconds/)
    assert.match(String(first?.msg), /'60000ms'/)
    assert.equal(second?.option, 'grace')
  })

  it('warn for round thousands, the usual millisecond values', () => {
    const { logger, lines } = capture()
    warnIfMilliseconds(1000, 'ttl', logger)
    warnIfMilliseconds(30_000, 'grace', logger)
    assert.deepEqual(
      lines.map((l) => l.msg),
      [
        "express-ft-cache: `ttl: 1000` means 16.7 minutes: plain numbers are seconds, not milliseconds. Write '1000ms' if you meant milliseconds, or a string with a unit (e.g. '2 days') to say what you mean.",
        "express-ft-cache: `grace: 30000` means 8.3 hours: plain numbers are seconds, not milliseconds. Write '30000ms' if you meant milliseconds, or a string with a unit (e.g. '2 days') to say what you mean.",
      ],
    )
  })

  it('do not warn for usual second values, nor for strings with a unit', () => {
    const { logger, lines } = capture()
    for (const n of [0, 1, 30, 60, 300, 600, 900, 1800, 3600, 7200, 43_200, 86_400, 1500, 999]) {
      warnIfMilliseconds(n, 'ttl', logger)
    }
    warnIfMilliseconds(3600, 'grace', logger)
    warnIfMilliseconds('2 days', 'ttl', logger)
    warnIfMilliseconds('172800s', 'ttl', logger)
    assert.equal(lines.length, 0)
    warnIfMilliseconds('172800', 'ttl', logger)
    assert.equal(lines.length, 1, 'a unit-less string is a plain number too')
    assert.match(String(lines[0]?.msg), /means 2 days/)
  })

  it('warn through the configured logger when options are parsed, app and route', () => {
    const { logger, lines } = capture()
    const options: ResponseCacheOptions = { store: new MemoryStore(), logger, ttl: 90_000 }
    const config = parseOptions(options, () => new MemoryStore())
    assert.equal(config.ttlMs, 90_000_000, 'the number is still taken as seconds')
    parseOptions(options, () => new MemoryStore())
    assert.deepEqual(
      lines.map((l) => l.option),
      ['ttl'],
      'once per process, however many caches',
    )
    parseRouteOptions({ grace: 100_000, ttl: 100_000 }, config)
    assert.deepEqual(
      lines.map((l) => l.option),
      ['ttl', 'grace'],
    )
  })
})
