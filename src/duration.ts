import type { Logger } from 'pino'
import { ConfigError } from './config-error.js'
import { nearest } from './did-you-mean.js'

/** Seconds per unit. Lower-case only: 'M' reads as months in some tools, so it is refused, not guessed. */
const SECONDS_PER_UNIT = {
  ms: 0.001,
  millisecond: 0.001,
  milliseconds: 0.001,
  s: 1,
  sec: 1,
  secs: 1,
  second: 1,
  seconds: 1,
  m: 60,
  min: 60,
  mins: 60,
  minute: 60,
  minutes: 60,
  h: 3_600,
  hr: 3_600,
  hrs: 3_600,
  hour: 3_600,
  hours: 3_600,
  d: 86_400,
  day: 86_400,
  days: 86_400,
  w: 604_800,
  week: 604_800,
  weeks: 604_800,
} as const

/** A unit a duration string may carry: '250ms', '30 seconds', '5 min', '1.5 hours', '2 days'... */
export type DurationUnit = keyof typeof SECONDS_PER_UNIT

/**
 * A duration option: seconds as a number, or a number with a unit, with or without one space
 * ('250ms', '30s', '5m', '5 minutes', '1.5 hours', '2 days'). The template types make a typo such as
 * '5 minuts' a compile error; at run time the same forms are accepted, plus a unit-less '30' (seconds).
 */
export type Duration = number | `${number}${DurationUnit}` | `${number} ${DurationUnit}`

const PATTERN = /^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]+)?\s*$/
const UNITS: readonly string[] = Object.keys(SECONDS_PER_UNIT)
const FORMS = "'250ms', '30s', '5m', '5 minutes', '1.5 hours', '2 days'"

/**
 * Parses a duration option into seconds. Throws a {@link ConfigError} naming the option and showing
 * the accepted forms, so a typo fails at startup rather than silently caching for the wrong time.
 */
export function parseDuration(value: unknown, name: string): number {
  if (typeof value === 'number') {
    if (Number.isFinite(value) && value >= 0) return value
  } else if (typeof value === 'string') {
    const match = PATTERN.exec(value)
    if (match) {
      const unit = match[2] ?? 's'
      if (Object.hasOwn(SECONDS_PER_UNIT, unit))
        return Number(match[1]) * SECONDS_PER_UNIT[unit as DurationUnit]
      const hint = nearest(unit, UNITS, 2)
      throw new ConfigError(
        `\`${name}\` has an unknown unit "${unit}" (got ${JSON.stringify(value)}).${hint === undefined ? '' : ` Did you mean "${match[1]} ${hint}"?`} Units: ms, s/sec/second(s), m/min/minute(s), h/hr/hour(s), d/day(s), w/week(s), lower-case.`,
        name,
      )
    }
  }
  throw new ConfigError(
    `\`${name}\` must be a non-negative number of seconds or a string such as ${FORMS} (got ${JSON.stringify(value) ?? String(value)}).`,
    name,
  )
}

/**
 * A plain number is suspicious above one day, or when it is a round number of thousands (1000,
 * 30000, 60000): the usual millisecond values, while second values tend to be multiples of 60.
 */
const isSuspicious = (n: number): boolean => n > 86_400 || (n >= 1000 && n % 1000 === 0)
const warned = new Set<string>()

function readable(seconds: number): string {
  const hours = seconds / 3_600
  if (hours < 1) return `${Number((seconds / 60).toFixed(1))} minutes`
  return hours < 48
    ? `${Number(hours.toFixed(1))} hours`
    : `${Number((hours / 24).toFixed(1))} days`
}

/**
 * Warns, once per process per option name, when a duration is a suspicious bare number: numbers are
 * seconds here, while Express's maxAge, apicache's numbers and setTimeout use milliseconds.
 */
export function warnIfMilliseconds(value: unknown, name: string, logger: Logger): void {
  const bare =
    typeof value === 'number' ||
    (typeof value === 'string' && PATTERN.exec(value)?.[2] === undefined)
  if (!bare || warned.has(name)) return
  const seconds = Number(value)
  if (!Number.isFinite(seconds) || !isSuspicious(seconds)) return
  warned.add(name)
  logger.warn(
    { code: 'EFTC_DURATION_SECONDS', option: name, value },
    `express-ft-cache: \`${name}: ${String(value)}\` means ${readable(seconds)}: plain numbers are seconds, not milliseconds. Write '${String(value).trim()}ms' if you meant milliseconds, or a string with a unit (e.g. '2 days') to say what you mean.`,
  )
}

/** Forgets which options were warned about (tests only). */
export function resetDurationWarnings(): void {
  warned.clear()
}
