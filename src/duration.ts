const UNITS: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86_400 }
const PATTERN = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/

/** A duration option: seconds as a number, or a string with a unit ('250ms', '30s', '5m', '1h', '1d'). */
export type Duration = number | string

/**
 * Parses a duration option into seconds. Throws a TypeError naming the option and showing the
 * accepted forms, so a typo such as '5 mins' fails at startup rather than silently caching forever.
 */
export function parseDuration(value: Duration, name: string): number {
  if (typeof value === 'number') {
    if (Number.isFinite(value) && value >= 0) return value
  } else if (typeof value === 'string') {
    const match = PATTERN.exec(value)
    if (match) return Number(match[1]) * (UNITS[match[2] ?? 's'] ?? 1)
  }
  throw new TypeError(
    `express-ft-cache: \`${name}\` must be a non-negative number of seconds or a string such as '250ms', '30s', '5m' (got ${JSON.stringify(value)}).`,
  )
}
