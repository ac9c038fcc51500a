/**
 * Runs the demo: `npm run demo` (or `node --import tsx demo/server.ts`).
 *
 * Store: MEMCACHE_SERVERS when set, else memcached on 127.0.0.1:11211 if it answers, else a memcached
 * the demo starts itself on a free port when the binary is installed (the one the dashboard can
 * pause), else the embedded MemoryStore. DEMO_MEMCACHED=own skips the 11211 probe; =memory uses the
 * MemoryStore. Listens on 127.0.0.1:$PORT (default 3000), or on a free port when that one is taken.
 * SIGINT/SIGTERM close the server and the cache, and stop the demo's own memcached.
 */
import type { AddressInfo } from 'node:net'
import net from 'node:net'
import { type CacheStore, MemcachedStore, MemoryStore } from '../src/index.js'
import { createDemoApp } from './app.js'
import { findMemcached, type OwnMemcached, startOwnMemcached } from './memcached.js'

const DEFAULT_MEMCACHED = '127.0.0.1:11211'
const PROBE_TIMEOUT_MS = 300

/** Whether something accepts TCP connections at host:port within the timeout. */
function probe(address: string, timeoutMs = PROBE_TIMEOUT_MS): Promise<boolean> {
  const i = address.lastIndexOf(':')
  const host = i === -1 ? address : address.slice(0, i)
  const port = i === -1 ? 11211 : Number(address.slice(i + 1))
  return new Promise((resolve) => {
    const socket = net.createConnection({ host, port })
    const done = (ok: boolean): void => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(timeoutMs, () => done(false))
    socket.once('connect', () => done(true))
    socket.once('error', () => done(false))
  })
}

interface Choice {
  store: CacheStore
  description: string
  own?: OwnMemcached
}

/** The embedded store when no memcached is at hand. */
function embedded(why: string): Choice {
  console.log(`${why}; using the embedded MemoryStore (this process only)`)
  return { store: new MemoryStore(), description: 'embedded MemoryStore, this process only' }
}

async function chooseStore(): Promise<Choice> {
  const mode = process.env.DEMO_MEMCACHED?.trim() || 'auto'
  if (!['auto', 'own', 'memory'].includes(mode)) {
    console.error(`DEMO_MEMCACHED must be auto, own or memory (got ${JSON.stringify(mode)})`)
    process.exit(2)
  }
  if (mode === 'memory') return embedded('DEMO_MEMCACHED=memory')
  const configured = process.env.MEMCACHE_SERVERS?.trim()
  if (configured) {
    const servers = configured.split(/[\s,]+/).filter(Boolean)
    const up = await Promise.all(servers.map((s) => probe(s)))
    const down = servers.filter((_, i) => !up[i])
    if (down.length > 0) {
      console.warn(
        `warning: memcached not reachable at ${down.join(', ')} (from MEMCACHE_SERVERS); using it anyway: ` +
          'the cache fails open, so requests pass through uncached until it answers.',
      )
    }
    return {
      store: new MemcachedStore({ servers }),
      description: `memcached at ${servers.join(', ')}, from MEMCACHE_SERVERS`,
    }
  }
  if (mode === 'auto' && (await probe(DEFAULT_MEMCACHED))) {
    console.log(
      `using memcached at ${DEFAULT_MEMCACHED}; the demo did not start it, so the dashboard will ` +
        'not pause it (DEMO_MEMCACHED=own starts one of its own)',
    )
    return {
      store: new MemcachedStore({ servers: [DEFAULT_MEMCACHED] }),
      description: `memcached at ${DEFAULT_MEMCACHED}`,
    }
  }
  const bin = findMemcached()
  const missing =
    mode === 'auto' ? `memcached not reachable at ${DEFAULT_MEMCACHED}` : 'DEMO_MEMCACHED=own'
  if (bin === undefined) {
    return embedded(`${missing} and no memcached binary on PATH (or MEMCACHED_BIN)`)
  }
  try {
    const own = await startOwnMemcached(bin)
    console.log(
      `${missing}: started ${bin} on ${own.address} (pid ${own.pid}); the dashboard can pause and ` +
        'resume it, and it stops with the demo',
    )
    return {
      store: new MemcachedStore({ servers: [own.address] }),
      description: `memcached at ${own.address}, started by the demo (pid ${own.pid})`,
      own,
    }
  } catch (err) {
    return embedded(`${missing}; ${(err as Error).message}`)
  }
}

function parsePort(value: string | undefined): number {
  if (value === undefined || value === '') return 3000
  const port = Number(value)
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`PORT must be a port number (got ${JSON.stringify(value)})`)
    process.exit(2)
  }
  return port
}

const host = '127.0.0.1'
const wanted = parsePort(process.env.PORT)
const { store, description, own } = await chooseStore()
const { app, cache, logger } = createDemoApp(store, {
  storeDescription: description,
  ...(own ? { memcached: own } : {}),
})

const server = app.listen({ port: wanted, host })
await new Promise<void>((resolve, reject) => {
  const onError = (err: NodeJS.ErrnoException): void => {
    if (err.code !== 'EADDRINUSE' || wanted === 0) {
      reject(err)
      return
    }
    console.log(`port ${wanted} is in use; listening on a free port instead`)
    server.once('error', reject)
    server.listen({ port: 0, host })
  }
  server.once('error', onError)
  server.once('listening', () => {
    server.off('error', onError)
    server.off('error', reject)
    resolve()
  })
})
server.on('error', (err) => logger.error({ err }, 'server error'))

const url = `http://${host}:${(server.address() as AddressInfo).port}`
console.log(`
express-ft-cache demo on ${url}/ (cache store: ${description})

Open ${url}/ for the dashboard: live counters, each page's X-Cache and Age, a stampede button,
pause/resume of the demo's own memcached, and invalidation by tag. Or try:
  curl -s -o /dev/null -D - ${url}/slow | grep -i x-cache      # MISS, ~500 ms
  curl -s -o /dev/null -D - ${url}/slow | grep -i x-cache      # HIT, instant
  curl -s -i ${url}/me | grep -i -E '^(x-cache|set-cookie)'   # BYPASS, sets a cookie

More curl recipes on ${url}/try. Ctrl-C stops the server.
`)

let stopping = false
async function shutdown(signal: NodeJS.Signals): Promise<void> {
  // npm and the terminal may deliver the same Ctrl-C more than once: act on the first.
  if (stopping) return
  stopping = true
  console.log(`\n${signal}: closing the server and the cache`)
  setTimeout(() => {
    console.error('shutdown took over 5 s; exiting')
    process.exit(1)
  }, 5000).unref()
  const closed = new Promise<void>((resolve) => server.close(() => resolve()))
  server.closeIdleConnections()
  // A paused memcached would hold up the last writes until the 5 s cap: let it answer first.
  try {
    own?.resume()
  } catch {
    // Already gone.
  }
  await closed
  await cache.close()
  await own?.stop()
  logger.flush?.()
  process.exit(0)
}
process.on('SIGINT', () => void shutdown('SIGINT'))
process.on('SIGTERM', () => void shutdown('SIGTERM'))
