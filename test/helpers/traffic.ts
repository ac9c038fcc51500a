import { createHash } from 'node:crypto'
import { appendFileSync } from 'node:fs'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Express } from 'express'
import { type ResponseCache, type ResponseCacheOptions, responseCache } from '../../src/index.js'
import { MemcachedStore, type MemcachedStoreOptions } from '../../src/store/memcached.js'
import type { ExpressFactory } from './express.js'

/** The body the origin renders for a path, so the client can verify every response it gets. */
export const bodyFor = (path: string): string =>
  `body of ${path} ${createHash('sha256').update(path).digest('hex')}`

export interface TrafficApp {
  readonly url: string
  readonly cache: ResponseCache
  readonly store: MemcachedStore
  /** The key prefix in use, to compute the app's memcached keys (`primaryKey(prefix, ...)`). */
  readonly prefix: string
  originCalls(): number
  close(): Promise<void>
}

/** A listening app whose origin takes `originMs` and renders {@link bodyFor} the path. */
export async function trafficApp(
  express: ExpressFactory,
  storeOptions: MemcachedStoreOptions,
  options: ResponseCacheOptions = {},
  originMs = 20,
  /** Further routes, mounted after the cache and `/item/:id`. */
  routes?: (app: Express) => void,
): Promise<TrafficApp> {
  const store = new MemcachedStore({ timeout: '100ms', ...storeOptions })
  const prefix = options.prefix ?? `traffic${process.pid}x${Math.random().toString(36).slice(2)}`
  const cache = responseCache({ store, ...options, prefix })
  let calls = 0
  const app = express()
  app.use(cache)
  app.get('/item/:id', async (req, res) => {
    calls++
    await new Promise((r) => setTimeout(r, originMs))
    res.type('text').send(bodyFor(req.path))
  })
  routes?.(app)
  const server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s))
  })
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    cache,
    store,
    prefix,
    originCalls: () => calls,
    async close() {
      server.closeAllConnections()
      await new Promise((r) => server.close(r))
      await cache.close()
    },
  }
}

export interface TrafficReport {
  requests: number
  wrong: number
  errors5xx: number
  failed: number
  maxMs: number
  hits: number
  /** Responses by `X-Cache` value ('none' when absent). */
  outcomes: Record<string, number>
  /** The first few wrong, 5xx or failed requests, described, for assertion messages. */
  problems: string[]
}

export interface TrafficOptions {
  /** The path of request `i`. Default `/item/${i % keys}`. */
  path?: (i: number) => string
  /** The body a path must answer with. Default {@link bodyFor}. */
  expect?: (path: string) => string
  /** Checked before each request: once true, no further request is started. */
  stop?: () => boolean
  /** Called after each response (not after a failed request). */
  observe?: (path: string, outcome: string | null, ms: number, ok: boolean) => void
}

/**
 * `total` GETs over `keys` paths, `concurrency` at a time; counts wrong bodies, 5xx, failures
 * (network error or no answer within 10 s), latency and outcomes.
 */
export async function runTraffic(
  url: string,
  total: number,
  keys: number,
  concurrency = 10,
  options: TrafficOptions = {},
): Promise<TrafficReport> {
  const report = emptyReport()
  const pathOf = options.path ?? ((i: number) => `/item/${i % keys}`)
  const expect = options.expect ?? bodyFor
  let next = 0
  const lane = async (): Promise<void> => {
    while (next < total && !options.stop?.()) {
      const i = next++
      const path = pathOf(i)
      const started = performance.now()
      try {
        const r = await fetch(url + path, { signal: AbortSignal.timeout(10_000) })
        const body = await r.text()
        const ms = performance.now() - started
        report.requests++
        let ok = true
        if (r.status >= 500) {
          report.errors5xx++
          ok = false
        } else if (r.status !== 200 || body !== expect(path)) {
          report.wrong++
          ok = false
        }
        const outcome = r.headers.get('x-cache')
        if (!ok && report.problems.length < 5) {
          report.problems.push(
            `${path}: ${r.status} ${r.headers.get('cache-status') ?? outcome} ${JSON.stringify(body.slice(0, 80))}`,
          )
        }
        if (outcome === 'HIT') report.hits++
        const name = outcome ?? 'none'
        report.outcomes[name] = (report.outcomes[name] ?? 0) + 1
        options.observe?.(path, outcome, ms, ok)
      } catch (error) {
        report.failed++
        if (report.problems.length < 5) report.problems.push(`${path}: ${String(error)}`)
      }
      report.maxMs = Math.max(report.maxMs, performance.now() - started)
    }
  }
  await Promise.all(Array.from({ length: concurrency }, lane))
  return report
}

function emptyReport(): TrafficReport {
  return {
    requests: 0,
    wrong: 0,
    errors5xx: 0,
    failed: 0,
    maxMs: 0,
    hits: 0,
    outcomes: {},
    problems: [],
  }
}

/** Sums reports (max of the latencies). */
export function mergeReports(...reports: TrafficReport[]): TrafficReport {
  const out = emptyReport()
  for (const r of reports) {
    out.requests += r.requests
    out.wrong += r.wrong
    out.errors5xx += r.errors5xx
    out.failed += r.failed
    out.maxMs = Math.max(out.maxMs, r.maxMs)
    out.hits += r.hits
    for (const [k, v] of Object.entries(r.outcomes)) out.outcomes[k] = (out.outcomes[k] ?? 0) + v
    out.problems.push(...r.problems.slice(0, Math.max(0, 5 - out.problems.length)))
  }
  return out
}

/** One row of the fault report (`scripts/fault-report.mjs`). */
export interface FaultRow {
  scenario: string
  requests: number
  /** Wrong bodies or statuses, plus requests that failed outright (no answer within 10 s). */
  wrong: number
  '5xx': number
  maxLatencyMs: number
  hits: number
}

/**
 * Appends a scenario's row as a JSON line to the file named by FAULT_REPORT (no-op when unset).
 * Returns the row.
 */
export function recordFaultRow(scenario: string, report: TrafficReport): FaultRow {
  const row: FaultRow = {
    scenario,
    requests: report.requests + report.failed,
    wrong: report.wrong + report.failed,
    '5xx': report.errors5xx,
    maxLatencyMs: Math.round(report.maxMs),
    hits: report.hits,
  }
  const file = process.env.FAULT_REPORT
  if (file) appendFileSync(file, `${JSON.stringify(row)}\n`)
  return row
}
