import { createHash } from 'node:crypto'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
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
  originCalls(): number
  close(): Promise<void>
}

/** A listening app whose origin takes `originMs` and renders {@link bodyFor} the path. */
export async function trafficApp(
  express: ExpressFactory,
  storeOptions: MemcachedStoreOptions,
  options: ResponseCacheOptions = {},
  originMs = 20,
): Promise<TrafficApp> {
  const store = new MemcachedStore({ timeout: '100ms', ...storeOptions })
  const cache = responseCache({
    store,
    prefix: `traffic${process.pid}x${Math.random().toString(36).slice(2)}`,
    ...options,
  })
  let calls = 0
  const app = express()
  app.use(cache)
  app.get('/item/:id', async (req, res) => {
    calls++
    await new Promise((r) => setTimeout(r, originMs))
    res.type('text').send(bodyFor(req.path))
  })
  const server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s))
  })
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    cache,
    store,
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
}

/** `total` GETs over `keys` paths, `concurrency` at a time; counts wrong bodies, 5xx, latency. */
export async function runTraffic(
  url: string,
  total: number,
  keys: number,
  concurrency = 10,
): Promise<TrafficReport> {
  const report: TrafficReport = {
    requests: 0,
    wrong: 0,
    errors5xx: 0,
    failed: 0,
    maxMs: 0,
    hits: 0,
  }
  let next = 0
  const lane = async (): Promise<void> => {
    while (next < total) {
      const i = next++
      const path = `/item/${i % keys}`
      const started = performance.now()
      try {
        const r = await fetch(url + path, { signal: AbortSignal.timeout(10_000) })
        const body = await r.text()
        report.requests++
        if (r.status >= 500) report.errors5xx++
        else if (r.status !== 200 || body !== bodyFor(path)) report.wrong++
        if (r.headers.get('x-cache') === 'HIT') report.hits++
      } catch {
        report.failed++
      }
      report.maxMs = Math.max(report.maxMs, performance.now() - started)
    }
  }
  await Promise.all(Array.from({ length: concurrency }, lane))
  return report
}
