import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Express } from 'express'
import pino from 'pino'
import { type ResponseCache, type ResponseCacheOptions, responseCache } from '../../src/index.js'
import { MemcachedStore } from '../../src/store/memcached.js'
import type { ExpressFactory } from './express.js'
import type { MemcachedProcess } from './memcached.js'

/** A cache on a real memcached with a per-test prefix, so tests never see each other's entries. */
let counter = 0
export function cacheOn(mc: MemcachedProcess, options: ResponseCacheOptions = {}): ResponseCache {
  counter++
  return responseCache({
    store: new MemcachedStore({ servers: mc.address, timeout: '200ms' }),
    prefix: `t${process.pid}x${counter}`,
    // The default logger warns on stderr; tests that read logs pass their own.
    logger: pino({ level: 'silent' }),
    ...options,
  })
}

/** An app with the cache mounted and an origin-call counter per path. */
export function appWith(
  express: ExpressFactory,
  cache: ResponseCache,
  routes: (app: Express, count: (path: string) => number) => void,
): { app: Express; calls: Map<string, number> } {
  const app = express()
  const calls = new Map<string, number>()
  const count = (path: string): number => {
    const n = (calls.get(path) ?? 0) + 1
    calls.set(path, n)
    return n
  }
  app.use(cache)
  routes(app, count)
  return { app, calls }
}

export const delay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/** A tiny valid PNG (1×1, red), to prove binary bodies round-trip byte for byte. */
export const PNG = Buffer.from(
  '89504e470d0a1a0a0000000d4948445200000001000000010806000000' +
    '1f15c4890000000d49444154789c63f8cfc0f01f0005000201a5e0e6d30000000049454e44ae426082',
  'hex',
)

export interface Listening {
  readonly url: string
  close(): Promise<void>
}

/** Listens on a free 127.0.0.1 port: for concurrent requests that share one server, and aborts. */
export async function listen(app: Express): Promise<Listening> {
  const server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s))
  })
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    async close() {
      server.closeAllConnections()
      await new Promise((r) => server.close(r))
    },
  }
}

export interface Answer {
  readonly status: number
  readonly text: string
  readonly cache: string | null
  readonly cacheStatus: string
  readonly headers: Headers
  /** From sending the request to having the whole body. */
  readonly ms: number
}

/**
 * A GET that never hangs the test: rejects after `timeoutMs` (a request the cache never answered
 * is a failure, not a stuck run).
 */
export async function fetchAnswer(
  url: string,
  headers: Record<string, string> = {},
  timeoutMs = 10_000,
): Promise<Answer> {
  const started = performance.now()
  const r = await fetch(url, { headers, signal: AbortSignal.timeout(timeoutMs) })
  const text = await r.text()
  return {
    status: r.status,
    text,
    cache: r.headers.get('x-cache'),
    cacheStatus: r.headers.get('cache-status') ?? '',
    headers: r.headers,
    ms: performance.now() - started,
  }
}
