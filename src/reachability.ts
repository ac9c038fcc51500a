import type { Logger } from 'pino'
import { MemcachedStore } from './store/memcached.js'

/** Server lists already reported unreachable in this process: one warning, however many caches. */
const reported = new Set<string>()

export interface ReachabilityProbe {
  /** Stops the probe (no warning after this) and closes its connections. */
  cancel(): Promise<void>
  /** Settles once the probe has finished (or was cancelled); never rejects. */
  readonly done: Promise<void>
}

const reason = (err: unknown): string =>
  err instanceof Error ? ((err as { code?: string }).code ?? err.message) : String(err)

/**
 * Checks once, off the request path, that the memcached servers a cache built for itself answer a
 * `get`, and logs one warning if some do not: without it, a mistyped or missing memcached shows up
 * only as a cache that never hits. It uses its own short-lived stores, closed right after, so it
 * leaves no socket open that would keep the process alive.
 */
export function probeMemcached(
  servers: readonly string[],
  prefix: string,
  timeoutMs: number,
  logger: Logger,
): ReachabilityProbe {
  let cancelled = false
  const timeout = Math.min(Math.max(timeoutMs, 1), 60_000) / 1000
  // A first call also pays the TCP (and DNS) setup: a slow handshake is not an outage.
  const connectTimeout = Math.min(Math.max(timeoutMs, 1000), 60_000) / 1000
  const stores = servers.map(
    (server) =>
      new MemcachedStore({ servers: [server], timeout, connectTimeout, failureThreshold: 1 }),
  )
  const closeAll = (): Promise<unknown> => Promise.allSettled(stores.map((s) => s.close()))
  const check = async (store: MemcachedStore): Promise<string | undefined> => {
    let timer: NodeJS.Timeout | undefined
    // The store bounds each call itself; this timer only guards against a call that never settles.
    const guard = new Promise<string>((resolve) => {
      timer = setTimeout(() => resolve('no answer'), (timeout + connectTimeout) * 1000 + 1000)
      timer.unref()
    })
    try {
      return await Promise.race([
        store.get(`${prefix}:probe`).then(
          () => undefined,
          (err: unknown) => reason(err),
        ),
        guard,
      ])
    } finally {
      clearTimeout(timer)
    }
  }
  const done = (async () => {
    try {
      const results = await Promise.all(stores.map(check))
      await closeAll()
      const down = servers.filter((_, i) => results[i] !== undefined)
      const key = [...servers].sort().join(',')
      if (cancelled || down.length === 0 || reported.has(key)) return
      reported.add(key)
      logger.warn(
        {
          code: 'EFTC_MEMCACHED_UNREACHABLE',
          servers: down,
          reasons: down.map((s) => `${s}: ${results[servers.indexOf(s)]}`),
        },
        `express-ft-cache: memcached is unreachable at ${down.join(', ')}; requests pass through uncached until it answers`,
      )
    } catch {
      // A probe must never fail the app: an unexpected error here only loses the warning.
    }
  })()
  return {
    done,
    async cancel() {
      cancelled = true
      await closeAll()
      await done
    },
  }
}
