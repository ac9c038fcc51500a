// The cache under test: an Express app with express-ft-cache (ttl 0, grace 0: only the origin's own
// headers give freshness, as RFC 9111 wants) in front of a reverse proxy to ORIGIN, on PORT, storing
// in memcached (MC=host:port[,host:port], else one started here).
//   PORT=8080 ORIGIN=http://127.0.0.1:8000 node scripts/conformance/server.mjs [--dist]
// From src through tsx by default; --dist (or EFTC_FROM=dist) loads the built package in dist/.
// CT_LOG=file appends one line per request (test id, request number, status, Cache-Status).
import { appendFileSync } from 'node:fs'
import { pathToFileURL } from 'node:url'
import { startMemcached } from './memcached.mjs'
import { reverseProxy } from './proxy.mjs'

const fromDist = process.argv.includes('--dist') || process.env.EFTC_FROM === 'dist'

async function loadCache() {
  if (fromDist) return import(new URL('../../dist/index.js', import.meta.url).href)
  const { tsImport } = await import('tsx/esm/api')
  return tsImport(new URL('../../src/index.ts', import.meta.url).href, import.meta.url)
}

/** One line per request, when CT_LOG names a file: enough to see why a test missed the cache. */
function requestLog(file) {
  return (req, res, next) => {
    const start = Date.now()
    res.once('finish', () => {
      const test = `${req.headers['test-id'] ?? '-'}#${req.headers['req-num'] ?? '-'}`
      const line = `${start} +${Date.now() - start}ms ${req.method} ${req.url} ${test} ${res.statusCode} ${res.getHeader('cache-status') ?? ''}`
      appendFileSync(file, `${line}\n`)
    })
    next()
  }
}

/**
 * `originError`: 'next' (default) or 'drop' (see reverseProxy). `staleIfError`: seconds, when set;
 * otherwise the option's own default applies.
 */
export async function serve({ port, origin, mc, originError = 'next', staleIfError }) {
  const [{ default: express }, { MemcachedStore, responseCache }] = await Promise.all([
    import('express'),
    loadCache(),
  ])
  const memcached = mc ? undefined : await startMemcached()
  const servers = (mc || memcached.address).split(',')
  const options = { ttl: 0, grace: 0, store: new MemcachedStore({ servers }) }
  if (staleIfError !== undefined) options.staleIfError = staleIfError
  const cache = responseCache(options)
  const app = express()
  app.disable('x-powered-by')
  app.disable('etag')
  // No body parser: the suite's PUT /config requests must reach the origin as they are.
  if (process.env.CT_LOG) app.use(requestLog(process.env.CT_LOG))
  app.use(cache)
  app.use(reverseProxy(origin, { onError: originError }))
  // The upstream failed: answer 502, as http-proxy-middleware does, without Express's stack trace.
  app.use((err, _req, res, _next) => {
    res
      .status(err.status ?? 500)
      .type('text/plain')
      .send('origin connection failed')
  })
  const server = app.listen(port, '127.0.0.1')
  server.keepAliveTimeout = 65_000
  await new Promise((resolve, reject) => {
    server.once('listening', resolve)
    server.once('error', reject)
  })
  const stop = async () => {
    const closed = new Promise((resolve) => server.close(resolve))
    server.closeAllConnections()
    await closed
    await cache.close()
    await memcached?.stop()
  }
  return { server, stop }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { PORT, ORIGIN, MC } = process.env
  if (!PORT || !ORIGIN) {
    console.error('set PORT (where to listen) and ORIGIN (the origin base URL)')
    process.exit(2)
  }
  const { stop } = await serve({ port: Number(PORT), origin: ORIGIN, mc: MC })
  const quit = () => stop().finally(() => process.exit(0))
  process.once('SIGTERM', quit)
  process.once('SIGINT', quit)
  console.log(`express-ft-cache on http://127.0.0.1:${PORT} -> ${ORIGIN}`)
}
