/**
 * Respond: replays a stored entry (or a 304 for it) with `Age`, `X-Cache` and `Cache-Status`, and
 * marks the outcome of every request (headers, pino-http binding, counters, debug log).
 */
import type { IncomingHttpHeaders, ServerResponse } from 'node:http'
import type { Request } from 'express'
import type { Logger } from 'pino'
import type { HeaderPairs } from '../capture.js'
import type { ResponseEntry } from '../entry.js'
import { isNotModified, NOT_MODIFIED_FIELDS } from '../http/conditional.js'
import { answerRange } from '../http/range.js'
import { bindOutcome } from '../logging.js'
import type { CacheConfig } from '../options.js'
import type { Counters, Outcome } from './stats.js'

/** Writes a whole response: status, its header fields, and the body if any. */
export type Writer = (status: number, headers: HeaderPairs, body: Buffer | undefined) => void

const kOutcome = Symbol('express-ft-cache.outcome')
type Marked = ServerResponse & { [kOutcome]?: Outcome }

/**
 * The entry's stored fields as pairs, repeated lines grouped into one array (one setHeader each:
 * on Node 20 `writeHead(status, list)` keeps only the last line of a name once any header is set),
 * built once per decoded entry (hot entries reuse it). Content-Length is computed on every answer
 * (a 304, a range or HEAD differs from the stored body).
 */
const groupedHeaders = new WeakMap<ResponseEntry, HeaderPairs>()
function grouped(entry: ResponseEntry): HeaderPairs {
  let pairs = groupedHeaders.get(entry)
  if (pairs === undefined && distinctNames(entry.headers)) {
    // The common case (every entry read from memcached is a new object): no repeated names.
    pairs = entry.headers.filter(([name]) => name !== 'content-length')
    groupedHeaders.set(entry, pairs)
  } else if (pairs === undefined) {
    const byName = new Map<string, string[]>()
    for (const [name, value] of entry.headers) {
      if (name === 'content-length') continue
      const values = byName.get(name)
      if (values === undefined) byName.set(name, [value])
      else values.push(value)
    }
    pairs = [...byName].map(([name, values]) =>
      values.length === 1 ? ([name, values[0] as string] as const) : ([name, values] as const),
    )
    groupedHeaders.set(entry, pairs)
  }
  return pairs
}

/** Whether no field name repeats (lists are short: a quadratic scan beats building a Set). */
function distinctNames(headers: ResponseEntry['headers']): boolean {
  for (let i = 1; i < headers.length; i++) {
    const name = (headers[i] as readonly [string, string])[0]
    for (let j = 0; j < i; j++)
      if ((headers[j] as readonly [string, string])[0] === name) return false
  }
  return true
}

export class Responder {
  constructor(
    private readonly cfg: CacheConfig,
    private readonly counters: Counters,
    private readonly logger: Logger,
  ) {}

  /**
   * Records the outcome once per request (a re-mark replaces it: a route took over, a render
   * failed). `final`: nothing can re-mark this response (the cache answered it), so the outcome is
   * not stored on it: adding a property to every ServerResponse costs a hidden-class transition.
   */
  outcome(req: Request, res: ServerResponse, outcome: Outcome, final = false): void {
    const r = res as Marked
    const before = r[kOutcome]
    if (before !== undefined) this.counters.uncount(before)
    if (!final) r[kOutcome] = outcome
    this.counters.outcome(outcome)
    bindOutcome(res, outcome)
    if (this.logger.isLevelEnabled('debug'))
      this.logger.debug({ cache: outcome, url: req.originalUrl }, 'express-ft-cache')
  }

  /** Marks a request the handler will answer: X-Cache / Cache-Status now, before its head goes out. */
  mark(req: Request, res: ServerResponse, outcome: Outcome, detail: string): void {
    if (this.cfg.debugHeaders && !res.headersSent) {
      res.setHeader('x-cache', outcome)
      res.setHeader('cache-status', `${this.cfg.cacheName}; ${detail}`)
    }
    this.outcome(req, res, outcome)
  }

  /**
   * Answers from an entry: a 304 when the request's conditions (or `conditions`, set aside from a
   * request the handler rendered in full) match a stored 200, else the stored response. `write`
   * replaces the response's own methods (a diverted render answers through its capture).
   */
  serve(
    req: Request,
    res: ServerResponse,
    entry: ResponseEntry,
    outcome: Outcome,
    detail: string | undefined,
    write?: Writer,
    conditions: IncomingHttpHeaders = req.headers,
  ): void {
    if (res.headersSent) return
    const now = Date.now()
    this.outcome(req, res, outcome, true)
    // RFC 9111 §5.1: Age is the time since the response was generated, in seconds.
    const age = String(entry.initialAge + Math.max(0, Math.floor((now - entry.cachedAt) / 1000)))
    const status = this.cfg.debugHeaders ? this.cacheStatus(entry, now, detail) : undefined
    const stored = grouped(entry)
    const conditional =
      conditions['if-none-match'] !== undefined || conditions['if-modified-since'] !== undefined
    const ranged = conditions.range !== undefined
    const hasBody = entry.status !== 204 && entry.status !== 304 && entry.status >= 200
    if (write === undefined && !conditional && !ranged) {
      // The hit path: no intermediate lists, one setHeader per field.
      for (const [name, value] of stored) res.setHeader(name, value)
      res.setHeader('age', age)
      if (status !== undefined) {
        res.setHeader('x-cache', outcome)
        res.setHeader('cache-status', status)
      }
      if (hasBody) res.setHeader('content-length', String(entry.body.length))
      res.writeHead(entry.status)
      res.end(req.method === 'HEAD' || !hasBody ? undefined : entry.body)
      return
    }
    const reply = write ?? ((code, headers, body) => writeTo(res, code, headers, body))
    const extra: [string, string][] = [['age', age]]
    if (status !== undefined) extra.push(['x-cache', outcome], ['cache-status', status])
    if (entry.status === 200 && conditional && isNotModified(conditions, entry.headers)) {
      // RFC 9110 §15.4.5: a 304 carries only the fields that would guide a cache update.
      reply(304, [...stored.filter(([name]) => NOT_MODIFIED_FIELDS.has(name)), ...extra], undefined)
      return
    }
    if (entry.status === 200 && ranged) {
      // RFC 9110 §14: one satisfiable byte range of a stored 200 is answered from the cache.
      const range = answerRange(req.method, conditions, entry.headers, entry.body.length)
      if (range.status === 206) {
        const part = entry.body.subarray(range.start, range.end + 1)
        extra.push(['content-range', range.contentRange], ['content-length', String(part.length)])
        reply(206, [...stored, ...extra], part)
        return
      }
      if (range.status === 416) {
        extra.push(['content-range', range.contentRange], ['content-length', '0'])
        reply(416, [...stored, ...extra], undefined)
        return
      }
    }
    if (hasBody) extra.push(['content-length', String(entry.body.length)])
    reply(
      entry.status,
      [...stored, ...extra],
      req.method === 'HEAD' || !hasBody ? undefined : entry.body,
    )
  }

  /**
   * RFC 9211 §2.1: `hit` only when the origin was not asked; a stale copy replacing a failed render
   * was forwarded (`fwd=stale`), so it carries the ttl but not `hit`.
   */
  private cacheStatus(entry: ResponseEntry, now: number, detail: string | undefined): string {
    const ttl = Math.round((entry.staleAt - now) / 1000)
    if (!detail) return `${this.cfg.cacheName}; hit; ttl=${ttl}`
    const hit = detail.startsWith('fwd=') ? '' : 'hit; '
    return `${this.cfg.cacheName}; ${hit}ttl=${ttl}; ${detail}`
  }
}

/** The default Writer: the response's own methods. */
function writeTo(
  res: ServerResponse,
  status: number,
  headers: HeaderPairs,
  body: Buffer | undefined,
): void {
  for (const [name, value] of headers) res.setHeader(name, value)
  res.writeHead(status)
  res.end(body)
}
