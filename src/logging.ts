import type { ServerResponse } from 'node:http'
import pino, { type Logger } from 'pino'

/** The cache's own logger when none is given: silent, so the library prints nothing by default. */
export const silentLogger: Logger = pino({ level: 'silent' })

/**
 * Logs each kind of failure at most once per interval, with the number suppressed since, so a
 * memcached outage under load costs one line every few seconds instead of one per request.
 */
export class RateLimitedLog {
  private readonly last = new Map<string, { at: number; suppressed: number }>()
  constructor(
    private readonly logger: Logger,
    private readonly intervalMs = 10_000,
  ) {}

  warn(kind: string, err: unknown, msg: string, logger: Logger = this.logger): void {
    const now = Date.now()
    const seen = this.last.get(kind)
    if (seen !== undefined && now - seen.at < this.intervalMs) {
      seen.suppressed++
      return
    }
    this.last.set(kind, { at: now, suppressed: 0 })
    // pino's (object, message) order; never the value or body, only what identifies the failure.
    logger.warn({ err, kind, suppressed: seen?.suppressed ?? 0 }, msg)
  }
}

const { chindingsSym } = pino.symbols
const kBase = Symbol('express-ft-cache.bindings')
type Bound = { [chindingsSym]: string; [kBase]?: string }

/**
 * Adds `cache: <outcome>` to pino-http's completion line. pino-http logs through the child logger it
 * made for this response (the last of `res.allLogs`); adding a binding to it is cheap and needs no
 * configuration from the user. pino appends bindings, so a request whose outcome changes (a route
 * taking over, a failed render answered stale) would log the key twice: the bindings as they were
 * before ours are kept and restored first, so the line has one `cache` key, the last outcome.
 */
export function bindOutcome(res: ServerResponse, outcome: string): void {
  const logs = (res as { allLogs?: Logger[] }).allLogs
  const log = logs?.[logs.length - 1] as (Logger & Bound) | undefined
  if (log === undefined || typeof log.setBindings !== 'function') return
  const base = log[kBase]
  if (base === undefined) log[kBase] = log[chindingsSym]
  else log[chindingsSym] = base
  log.setBindings({ cache: outcome })
}
