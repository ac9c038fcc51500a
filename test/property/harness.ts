/**
 * Runs one scenario: a fresh app with the real middleware on a MemoryStore, served on an ephemeral
 * loopback port, fed the scenario's traffic over raw sockets. Returns every invariant violation.
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Readable } from 'node:stream'
import type { NextFunction, Request, RequestHandler, Response } from 'express'
import fc from 'fast-check'
import pino from 'pino'
import { decodeEntry } from '../../src/entry.js'
import { MemoryStore, responseCache } from '../../src/index.js'
import type { ExpressFactory } from '../helpers/express.js'
import { type Answer, send } from './client.js'
import { checkAnswer, checkStored, encodeRender, renderBody, type Sent } from './invariants.js'
import {
  LAST_MODIFIED,
  type RequestSpec,
  type RouteSpec,
  type Scenario,
  scenarioArb,
} from './scenario.js'

/** Every request must be answered (or its connection closed) within this many milliseconds. */
export const ANSWER_BOUND_MS = 4000

/**
 * A MemoryStore whose `set` first checks the entry the middleware writes. A proxy rather than a
 * wrapper class, so every other store method (present or added later) reaches MemoryStore as is.
 */
function checkedStore(check: (value: Buffer) => void): MemoryStore {
  const inner = new MemoryStore()
  const set: MemoryStore['set'] = (key, value, ttlSeconds) => {
    check(value)
    return inner.set(key, value, ttlSeconds)
  }
  return new Proxy(inner, {
    get(target, name) {
      if (name === 'set') return set
      const v: unknown = Reflect.get(target, name, target)
      return typeof v === 'function' ? v.bind(target) : v
    },
  })
}

/**
 * The middleware's clock. `Date.now` is moved forward between batches so entries go stale (and
 * past their grace) without waiting; MemoryStore expires on `performance.now`, so items and locks
 * stay put, as they would in memcached within their TTL.
 */
class Clock {
  private offset = 0
  private readonly real = Date.now
  install(): void {
    Date.now = () => this.real.call(Date) + this.offset
  }
  uninstall(): void {
    Date.now = this.real
  }
  reset(): void {
    this.offset = 0
  }
  advance(seconds: number): void {
    this.offset += seconds * 1000
  }
}

/** Collects uncaught exceptions and unhandled rejections while installed. */
class ProcessWatch {
  private errors: string[] = []
  private readonly onError = (err: unknown): void => {
    this.errors.push(err instanceof Error ? `${err.name}: ${err.message}` : String(err))
  }
  install(): void {
    process.on('uncaughtException', this.onError)
    process.on('unhandledRejection', this.onError)
  }
  uninstall(): void {
    process.off('uncaughtException', this.onError)
    process.off('unhandledRejection', this.onError)
  }
  take(): string[] {
    const e = this.errors
    this.errors = []
    return e
  }
}

const later = (ms: number, fn: () => void): void => {
  setTimeout(fn, ms)
}

function handler(
  index: number,
  spec: RouteSpec,
  renders: number[],
  sent: ReadonlyMap<string, Sent>,
): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    const n = (renders[index] ?? 0) + 1
    renders[index] = n
    const id = String(req.headers['x-req-id'] ?? '')
    const info = { route: index, n, id }
    const status = n > 1 && spec.later !== undefined ? spec.later : spec.status
    const body = renderBody(info, sent.get(id), spec.size)
    const headers: Record<string, string> = {
      'content-type': 'text/plain; charset=utf-8',
      'x-render': encodeRender(info),
    }
    if (spec.cacheControl !== undefined) headers['cache-control'] = spec.cacheControl
    if (spec.vary !== undefined) headers.vary = spec.vary
    if (spec.etag) headers.etag = `"e${index}"`
    if (spec.lastModified) headers['last-modified'] = LAST_MODIFIED
    if (spec.setCookie) headers['set-cookie'] = `visit=${id}; Path=/`
    const third = Math.floor(body.length / 3)
    const run = (): void => {
      if (spec.mode === 'throw') {
        res.set(headers)
        const err = new Error('handler failed')
        // Express 4 does not catch a throw after an await or a timer: hand those to next().
        if (spec.delayMs > 0) next(err)
        else throw err
        return
      }
      if (spec.mode === 'writeHead' || spec.mode === 'writeHeadRaw') {
        if (spec.mode === 'writeHead') res.writeHead(status, headers)
        else res.writeHead(status, Object.entries(headers).flat())
        res.end(body)
        return
      }
      res.status(status)
      res.set(headers)
      switch (spec.mode) {
        case 'send':
          res.send(body)
          return
        case 'chunks':
          res.write(body.slice(0, third))
          later(5, () => {
            res.write(body.slice(third, 2 * third))
            res.end(body.slice(2 * third))
          })
          return
        case 'flush':
          res.flushHeaders()
          later(10, () => res.end(body))
          return
        case 'pipe':
          Readable.from([body.slice(0, third), body.slice(third)]).pipe(res)
          return
        case 'destroy':
          res.write(body.slice(0, third))
          later(5, () => res.destroy())
          return
        case 'shortLength':
          res.setHeader('content-length', String(Buffer.byteLength(body)))
          res.write(body.slice(0, third))
          res.end()
          return
      }
    }
    if (spec.delayMs > 0) later(spec.delayMs, run)
    else run()
  }
}

function outgoing(
  req: Sent,
  id: string,
): { method: string; path: string; headers: Record<string, string> } {
  const headers: Record<string, string> = { 'x-req-id': id }
  if (req.cookie !== undefined) headers.cookie = req.cookie
  if (req.authorization !== undefined) headers.authorization = req.authorization
  if (req.accept !== undefined) headers.accept = req.accept
  if (req.ifNoneMatch !== undefined) headers['if-none-match'] = req.ifNoneMatch
  if (req.ifModifiedSince !== undefined) headers['if-modified-since'] = req.ifModifiedSince
  if (req.range !== undefined) headers.range = req.range
  if (req.cacheControl !== undefined) headers['cache-control'] = req.cacheControl
  return { method: req.method, path: `/r${req.route}`, headers }
}

/** `p`, or 'late' after `ms`; the timer never outlives the race (it would hold the test open). */
async function within<T>(p: Promise<T>, ms: number): Promise<T | 'late'> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<'late'>((r) => {
    timer = setTimeout(r, ms, 'late')
  })
  try {
    return await Promise.race([p, late])
  } finally {
    clearTimeout(timer)
  }
}

export interface Harness {
  /** Runs one scenario; resolves to its violations, each prefixed with the request concerned. */
  run(scenario: Scenario): Promise<string[]>
  install(): void
  uninstall(): void
  /** How many answers had each X-Cache value (or `closed`/`timeout`), across runs: coverage. */
  readonly outcomes: Map<string, number>
}

export function harness(express: ExpressFactory): Harness {
  const clock = new Clock()
  const watch = new ProcessWatch()
  const outcomes = new Map<string, number>()
  return {
    outcomes,
    install() {
      clock.install()
      watch.install()
    },
    uninstall() {
      clock.uninstall()
      watch.uninstall()
    },
    async run(scenario) {
      clock.reset()
      watch.take()
      const violations: string[] = []
      const sent = new Map<string, Sent>()
      const routes = scenario.routes
      const store = checkedStore((value) => {
        const entry = decodeEntry(value)
        if (entry?.kind !== 'response') return
        for (const v of checkStored(entry, routes, sent)) violations.push(`store: ${v}`)
      })
      const cache = responseCache({
        store,
        prefix: 'prop',
        logger: pino({ level: 'silent' }),
        // Waiters give up on a stuck render well inside the answer bound.
        waitTimeout: '1500ms',
        ...scenario.options,
      })
      const app = express()
      app.use(cache)
      const renders: number[] = []
      routes.forEach((spec, i) => {
        app.all(`/r${i}`, handler(i, spec, renders, sent))
      })
      const server = createServer(app)
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
      const port = (server.address() as AddressInfo).port
      let next = 0
      const ask = async (spec: RequestSpec): Promise<void> => {
        next++
        const id = `q${next}`
        const req: Sent = { ...spec, route: spec.route % routes.length, id }
        sent.set(id, req)
        const answer: Answer = await send(port, outgoing(req, id), ANSWER_BOUND_MS)
        const outcome =
          answer.kind === 'response' ? (answer.headers.get('x-cache')?.[0] ?? 'none') : answer.kind
        outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1)
        const label = `${id} ${describeRequest(req)} -> ${answer.kind === 'response' ? `${answer.status} ${answer.headers.get('x-cache')?.[0] ?? ''}` : answer.kind}`
        for (const v of checkAnswer(req, answer, routes, sent, ANSWER_BOUND_MS))
          violations.push(`${label}: ${v}`)
      }
      try {
        for (const step of scenario.steps) {
          if (step.kind === 'tick') {
            await within(cache.settled(), 2000)
            clock.advance(step.seconds)
            continue
          }
          await Promise.all(step.requests.map(ask))
          if (step.settle) await within(cache.settled(), 2000)
        }
        // Let timers the handlers left behind (destroy, chunks) fire, and their 'close' events
        // settle, before the store closes.
        await new Promise((r) => setTimeout(r, 40))
        if ((await within(cache.settled(), 2000)) === 'late')
          violations.push('writes never settled')
      } finally {
        server.closeAllConnections()
        await new Promise((r) => server.close(r))
        await within(cache.close(), 2000)
      }
      for (const e of watch.take()) violations.push(`process: ${e}`)
      return violations
    },
  }
}

export function describeRequest(req: RequestSpec): string {
  const parts = [req.method, `/r${req.route}`]
  if (req.cookie !== undefined) parts.push(`Cookie: ${req.cookie}`)
  if (req.authorization !== undefined) parts.push(`Authorization: ${req.authorization}`)
  if (req.accept !== undefined) parts.push(`Accept: ${req.accept}`)
  if (req.ifNoneMatch !== undefined) parts.push(`If-None-Match: ${req.ifNoneMatch}`)
  if (req.ifModifiedSince !== undefined) parts.push(`If-Modified-Since: ${req.ifModifiedSince}`)
  if (req.range !== undefined) parts.push(`Range: ${req.range}`)
  if (req.cacheControl !== undefined) parts.push(`Cache-Control: ${req.cacheControl}`)
  return parts.join(' | ')
}

/**
 * The property: for every scenario, no violation. The harness's clock and process listeners are
 * installed around each run (not for the whole property), so nothing outlives a failing run.
 */
export function middlewareProperty(h: Harness): fc.IAsyncPropertyWithHooks<[Scenario]> {
  return fc
    .asyncProperty(scenarioArb(), async (scenario) => {
      const violations = await h.run(scenario)
      if (violations.length > 0) throw new Error(violations.join('\n'))
    })
    .beforeEach(() => h.install())
    .afterEach(() => h.uninstall())
}
