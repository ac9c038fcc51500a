/**
 * The demo's logger: pino, printed one readable line per record by default
 *
 *   12:00:01.234 INFO  GET /slow 200 503ms  cache=MISS
 *
 * or as plain pino JSON with LOG_FORMAT=json. Either way `cache=...` is the field express-ft-cache
 * adds to pino-http's completion line by itself; the demo does not compute it.
 */
import pino, { type Logger } from 'pino'

const LEVELS: Record<number, string> = {
  10: 'TRACE',
  20: 'DEBUG',
  30: 'INFO ',
  40: 'WARN ',
  50: 'ERROR',
  60: 'FATAL',
}
/** Fields already shown in the message (see `customSuccessMessage` in app.ts). */
const SHOWN = new Set(['level', 'time', 'msg', 'req', 'res', 'responseTime', 'reqId'])

const useColor = (): boolean =>
  process.stdout.isTTY === true && process.env.NO_COLOR === undefined && process.env.TERM !== 'dumb'

function paint(text: string, code: number, color: boolean): string {
  return color && code !== 0 ? `\x1b[${code}m${text}\x1b[0m` : text
}

const OUTCOME_COLORS: Record<string, number> = { HIT: 32, STALE: 36, MISS: 33, BYPASS: 90 }

/** Formats one pino JSON record as a single line. */
export function formatRecord(line: string, color = false): string {
  let record: Record<string, unknown>
  try {
    record = JSON.parse(line) as Record<string, unknown>
  } catch {
    return line.endsWith('\n') ? line : `${line}\n`
  }
  const time = new Date(Number(record.time)).toISOString().slice(11, 23)
  const levelNumber = Number(record.level)
  const level = LEVELS[levelNumber] ?? String(record.level)
  const parts = [
    paint(time, 90, color),
    paint(level, levelNumber >= 50 ? 31 : levelNumber >= 40 ? 33 : 0, color),
    String(record.msg ?? ''),
  ]
  const extras: string[] = []
  for (const [name, value] of Object.entries(record)) {
    if (SHOWN.has(name)) continue
    if (name === 'cache') {
      extras.unshift(paint(`cache=${String(value)}`, OUTCOME_COLORS[String(value)] ?? 0, color))
    } else if (name === 'err' && value !== null && typeof value === 'object') {
      extras.push(`err=${JSON.stringify((value as { message?: unknown }).message ?? value)}`)
    } else {
      extras.push(`${name}=${typeof value === 'string' ? value : JSON.stringify(value)}`)
    }
  }
  return `${parts.join(' ')}${extras.length > 0 ? `  ${extras.join(' ')}` : ''}\n`
}

/** A pino logger writing to stdout: readable lines, or JSON when LOG_FORMAT=json. */
export function createLogger(level = process.env.LOG_LEVEL ?? 'info'): Logger {
  const options = { level, base: undefined }
  if (process.env.LOG_FORMAT === 'json') return pino(options)
  const color = useColor()
  return pino(options, {
    write(line: string): void {
      process.stdout.write(formatRecord(line, color))
    },
  })
}
