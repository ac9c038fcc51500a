/**
 * One app process of the soak fleet: the cache on the memcached servers in EFTC_SERVERS, an origin
 * whose bodies derive from the URL (test/soak/body.ts), listening on a free port reported to the
 * parent over IPC. GET /__stats (before the cache) reports memory after a GC when exposed.
 */
import express from 'express'
import { type Duration, MemcachedStore, responseCache } from '../../src/index.js'
import { etagOf, maxAgeOf, sha256, soakBody } from './body.js'

const env = process.env
const cache = responseCache({
  store: new MemcachedStore({
    servers: (env.EFTC_SERVERS ?? '').split(','),
    timeout: (env.EFTC_TIMEOUT ?? '100ms') as Duration,
    cooldown: '1s',
  }),
  prefix: env.EFTC_PREFIX ?? 'soak',
  timeout: (env.EFTC_TIMEOUT ?? '100ms') as Duration,
  ttl: '2s',
  grace: '3s',
  lockTtl: '3s',
  waitTimeout: '2s',
  pollInterval: '50ms',
  hitForMiss: '2s',
})

let calls = 0
const app = express()
app.get('/__stats', (_req, res) => {
  const gc = (globalThis as { gc?: () => void }).gc
  gc?.()
  const m = process.memoryUsage()
  res.json({ calls, rss: m.rss, heapUsed: m.heapUsed })
})
app.use(cache)

/** Renders `name`'s body after a small delay that also derives from it. */
async function render(res: express.Response, name: string, cacheControl: string): Promise<void> {
  calls++
  const body = soakBody(name)
  await new Promise((r) => setTimeout(r, 5 + (body.length % 25)))
  res
    .set('cache-control', cacheControl)
    .set('etag', etagOf(body))
    .set('x-body-sum', sha256(body))
    .type('text')
    .send(body)
}

const swr = (name: string): string => `public, max-age=${maxAgeOf(name)}, stale-while-revalidate=3`
app.get('/r/:id', (req, res) => render(res, req.path, swr(req.path)))
app.get('/v/:id', (req, res) => {
  const name = `${req.path}|${req.get('accept-language') ?? ''}`
  res.vary('accept-language')
  return render(res, name, swr(name))
})
app.get('/p/:id', (req, res) => render(res, req.path, 'private'))
app.post('/r/:id', (req, res) => {
  calls++
  res.type('text').send(`posted ${req.path}`)
})

const server = app.listen(0, '127.0.0.1', () => {
  const address = server.address()
  process.send?.({ port: typeof address === 'object' && address ? address.port : 0 })
})
process.on('disconnect', () => {
  server.close()
  void cache.close()
})
