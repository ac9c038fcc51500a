/**
 * The express-ft-cache demo app: a handful of routes that show what the cache does, with one
 * pino-http line per request carrying the cache outcome (HIT, MISS, STALE, BYPASS).
 *
 * `createDemoApp(store)` builds it on any CacheStore, so the smoke test runs it on a MemoryStore and
 * demo/server.ts on memcached when one is reachable. The dashboard at `/` is demo/control.ts.
 */
import { deflateSync } from 'node:zlib'
import express, { type Express, type Request } from 'express'
import type { Logger } from 'pino'
import { pinoHttp } from 'pino-http'
import { type CacheStore, type ResponseCache, responseCache } from '../src/index.js'
import { controlRouter, type StampedePage } from './control.js'
import { createLogger } from './log.js'
import type { PausableMemcached } from './memcached.js'

export interface DemoOptions {
  /** Logger for the request lines and the cache's store warnings. Default: demo/log.ts's logger. */
  logger?: Logger
  /** How long /slow and /stampede take to render, in ms. Default 500. */
  slowMs?: number
  /** What the dashboard says the store is. */
  storeDescription?: string
  /** A memcached the dashboard may pause and resume: only one this process started. */
  memcached?: PausableMemcached
}

export interface DemoApp {
  app: Express
  cache: ResponseCache
  logger: Logger
  /** The stampede page's render count, kept by its handler. */
  stampede: StampedePage
}

/** The tags the routes carry, offered by the dashboard's invalidate button. */
export const DEMO_TAGS = ['html', 'slow', 'news', 'api', 'images', 'stampede'] as const

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

const escapeHtml = (text: string): string =>
  text.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c,
  )

const page = (title: string, body: string): string => `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>${escapeHtml(title)} · express-ft-cache demo</title>
<style>
  body { font: 16px/1.5 system-ui, sans-serif; max-width: 50rem; margin: 2rem auto; padding: 0 1rem; }
  code, pre { font: 14px ui-monospace, monospace; background: #f4f4f4; }
  pre { padding: .6rem .8rem; overflow-x: auto; }
  td { padding: .2rem .8rem .2rem 0; vertical-align: top; }
</style>
</head>
<body>
${body}
</body>
</html>
`

export function createDemoApp(store: CacheStore, options: DemoOptions = {}): DemoApp {
  const logger = options.logger ?? createLogger()
  const slowMs = options.slowMs ?? 500

  const cache = responseCache({
    store,
    ttl: 60,
    grace: 300,
    lockTtl: 10,
    waitTimeout: 5,
    // A request with a cookie is private by default (answered only by `public` pages). Only /me
    // reads demo_visitor, and /me is never cached: the other pages may ignore it.
    ignoredCookies: ['_ga', '_ga_*', '_gid', 'demo_visitor'],
    // Its own key space, so the demo can share a memcached with other apps.
    prefix: 'eftc-demo',
    // Store failures (memcached down, timeouts) are logged here, rate-limited; requests fail open.
    logger,
  })

  const app = express()
  app.disable('x-powered-by')
  app.use(
    pinoHttp({
      logger,
      // One short line per request; the cache adds `cache: "HIT" | "MISS" | ...` to it by itself.
      serializers: {
        req: (req: { method: string; url: string }) => ({ method: req.method, url: req.url }),
        res: (res: { statusCode: number }) => ({ statusCode: res.statusCode }),
      },
      customSuccessMessage: (req, res, ms) =>
        `${req.method} ${(req as Request).originalUrl ?? req.url} ${res.statusCode} ${ms}ms`,
      customErrorMessage: (req, res, err) =>
        `${req.method} ${(req as Request).originalUrl ?? req.url} ${res.statusCode} ${err.message}`,
      // The dashboard polls its counters every second: one line each would drown the demo's lines.
      autoLogging: { ignore: (req) => req.url === '/_demo/stats' },
    }),
  )
  const stampede: StampedePage = { path: '/stampede', ttl: 2, renders: 0, lastRenderAt: 0 }
  // Before the cache: the dashboard and its endpoints are not cached and not counted.
  app.use(
    controlRouter({
      cache,
      stampede,
      storeDescription: options.storeDescription ?? 'a store given by the caller',
      memcached: options.memcached,
      tags: DEMO_TAGS,
    }),
  )
  app.use(cache)

  // The curl page varies on the Host header (its examples name it), so it keys on it: the `key` option.
  const tryRoute = cache.route({ key: (req) => req.get('host'), tags: ['html'] })
  app.get('/try', tryRoute, (req, res) => {
    const base = `${req.protocol}://${req.get('host') ?? 'localhost'}`
    res.type('html').send(indexPage(base))
  })

  app.get('/slow', cache.route({ tags: ['html', 'slow'] }), async (_req, res) => {
    const started = performance.now()
    await sleep(slowMs)
    const took = Math.round(performance.now() - started)
    res.type('html').send(
      page(
        'Slow page',
        `<h1>A slow page</h1>
<p>This page took <strong>${took} ms</strong> to render, at <time>${new Date().toISOString()}</time>.</p>
<p>Reload it: a cached copy (<code>X-Cache: HIT</code>) comes back at once, with the same render time
and timestamp, because it is the very same bytes.</p>
<p><a href="/">Back to the dashboard</a></p>`,
      ),
    )
  })

  // Tags may also be computed per request.
  app.get(
    '/api/time.json',
    cache.route({ tags: (req) => ['api', `api:${req.path}`] }),
    (_req, res) => {
      // A freshness lifetime stated by the response replaces the cache's `ttl` (responseTtl: true).
      res.set('cache-control', 'public, max-age=10')
      res.json({ renderedAt: new Date().toISOString(), epochMs: Date.now(), pid: process.pid })
    },
  )

  let edition = 0
  app.get(
    '/news',
    cache.route({ ttl: 5, grace: 30, tags: ['html', 'news'] }),
    async (_req, res) => {
      edition++
      await sleep(200)
      const headlines = [
        'Memcached keeps serving while the database naps',
        'One request renders; the others wait or get the stale copy',
        'Stampede averted at 3 a.m.',
      ]
      res.type('html').send(
        page(
          'News',
          `<h1>News, edition ${edition}</h1>
<p>Rendered at <time>${new Date().toISOString()}</time> (200 ms per render).</p>
<ul>${headlines.map((h) => `<li>${escapeHtml(h)}</li>`).join('')}</ul>
<p>Fresh for 5 s, then served stale (<code>X-Cache: STALE</code>) for up to 30 s while a single
request renders the next edition.</p>
<p><a href="/">Back to the dashboard</a></p>`,
        ),
      )
    },
  )

  let visitors = 0
  app.get('/me', cache.route({ enabled: false }), (req, res) => {
    const cookie = /(?:^|;\s*)demo_visitor=([\w-]+)/.exec(req.get('cookie') ?? '')?.[1]
    const id = cookie ?? `v${++visitors}-${Math.random().toString(36).slice(2, 8)}`
    if (cookie === undefined) res.cookie('demo_visitor', id, { httpOnly: true, sameSite: 'lax' })
    res.type('html').send(
      page(
        'Me',
        `<h1>Hello, visitor ${escapeHtml(id)}</h1>
<p>${cookie === undefined ? 'You just got a <code>demo_visitor</code> cookie.' : 'You sent your <code>demo_visitor</code> cookie.'}
This route is per-user, so it is never cached: <code>cache.route({ enabled: false })</code> gives
<code>X-Cache: BYPASS</code>.</p>
<p><a href="/">Back to the dashboard</a></p>`,
      ),
    )
  })

  const png = gradientPng(32)
  app.get('/image.png', cache.route({ tags: ['images'] }), (_req, res) => {
    res.type('png').send(png)
  })

  // The stampede target: fresh for 2 s, then served stale while one request re-renders it. The
  // dashboard's button sends 50 requests at it once expired; its handler counts the renders.
  const stampedeRoute = cache.route({ ttl: stampede.ttl, grace: 300, tags: ['stampede'] })
  app.get(stampede.path, stampedeRoute, async (_req, res) => {
    stampede.renders++
    const n = stampede.renders
    await sleep(slowMs)
    stampede.lastRenderAt = Date.now()
    res.type('html').send(
      page(
        'Stampede target',
        `<h1>Stampede target, render ${n}</h1>
<p>Rendered at <time>${new Date().toISOString()}</time> (${slowMs} ms per render), fresh for
${stampede.ttl} s, then served stale while a single request renders the next one.</p>
<p><a href="/">Back to the dashboard</a></p>`,
      ),
    )
  })

  return { app, cache, logger, stampede }
}

function indexPage(base: string): string {
  const b = escapeHtml(base)
  return page(
    'Try it with curl',
    `<h1>express-ft-cache demo: try it with curl</h1>
<p>The <a href="/">dashboard</a> does most of this with buttons. Every response here goes through <code>responseCache()</code>. The <code>X-Cache</code> header
says what happened: <code>MISS</code> (rendered by the route, then stored), <code>HIT</code>
(served from the cache), <code>STALE</code> (an expired copy served while one request re-renders),
<code>BYPASS</code> (not cached). The server prints the same outcome on each request's log line.</p>

<h2>Routes</h2>
<table>
<tr><td><a href="/slow">/slow</a></td><td>a deliberately slow render (~500 ms), cached for 60 s</td></tr>
<tr><td><a href="/api/time.json">/api/time.json</a></td><td>JSON; its own <code>Cache-Control: max-age=10</code> sets the freshness</td></tr>
<tr><td><a href="/news">/news</a></td><td><code>cache.route({ ttl: 5, grace: 30 })</code>: fresh 5 s, then stale-while-revalidate</td></tr>
<tr><td><a href="/me">/me</a></td><td><code>cache.route({ enabled: false })</code>: sets a cookie, never cached</td></tr>
<tr><td><a href="/image.png">/image.png</a></td><td>a small binary body, cached byte for byte</td></tr>
<tr><td><a href="/stampede">/stampede</a></td><td>the dashboard's stampede target: fresh 2 s, then stale while one request re-renders</td></tr>
</table>

<h2>Things to try</h2>
<p>Hit <code>/slow</code> twice and compare time and <code>X-Cache</code> (MISS, then HIT):</p>
<pre>curl -s -o /dev/null -D - -w 'time: %{time_total}s\\n' ${b}/slow | grep -i -E '^(x-cache|age|time)'
curl -s -o /dev/null -D - -w 'time: %{time_total}s\\n' ${b}/slow | grep -i -E '^(x-cache|age|time)'</pre>
<p><code>/news</code> is fresh for 5 s (HIT). Once expired, the first request re-renders it (MISS,
200 ms) while requests arriving meanwhile get the expired copy at once (STALE), for up to 30 s:</p>
<pre>curl -s -o /dev/null ${b}/news; sleep 6
for i in 1 2 3 4 5; do curl -s -o /dev/null -D - ${b}/news | grep -i '^x-cache' &amp; done; wait</pre>
<p>A stampede: 20 parallel requests on a cold key (a new query string is a new key) cause one
500 ms render; the others wait for it and get it (<code>Cache-Status: ...; detail=coalesced</code>):</p>
<pre>k=$RANDOM; seq 20 | xargs -P 20 -I{} curl -s -o /dev/null -w '%{http_code} %{time_total}s\\n' "${b}/slow?run=$k"</pre>
<p>Per-user pages are not cached:</p>
<pre>curl -s -i ${b}/me | grep -i -E '^(x-cache|set-cookie)'</pre>
<p>Binary bodies come back identical:</p>
<pre>curl -s ${b}/image.png | sha256sum; curl -s ${b}/image.png | sha256sum</pre>
<p>Conditional requests are answered from the cache (304):</p>
<pre>etag=$(curl -s -D - -o /dev/null ${b}/slow | awk 'tolower($1)=="etag:" {print $2}' | tr -d '\\r')
curl -s -o /dev/null -w '%{http_code}\\n' -H "If-None-Match: $etag" ${b}/slow</pre>
<p>With memcached: stop it while the demo runs. Requests keep working (uncached, the cache fails
open) and the log shows one rate-limited warning; start it again and HITs come back.</p>
<p>Invalidate by tag (the dashboard's button): the next request renders again.</p>
<pre>curl -s -X POST -H 'content-type: application/json' -d '{"tags":["slow"]}' ${b}/_demo/invalidate
curl -s -o /dev/null -D - ${b}/slow | grep -i '^x-cache'</pre>`,
  )
}

/** A size×size RGB gradient PNG, built here so the demo ships no binary file. */
function gradientPng(size: number): Buffer {
  const raw = Buffer.alloc((size * 3 + 1) * size)
  for (let y = 0; y < size; y++) {
    const row = y * (size * 3 + 1) // the first byte of each row is the filter type (0: none)
    for (let x = 0; x < size; x++) {
      raw[row + 1 + x * 3] = Math.round((x / (size - 1)) * 255)
      raw[row + 2 + x * 3] = Math.round((y / (size - 1)) * 255)
      raw[row + 3 + x * 3] = 160
    }
  }
  const header = Buffer.alloc(13)
  header.writeUInt32BE(size, 0)
  header.writeUInt32BE(size, 4)
  header.set([8, 2, 0, 0, 0], 8) // 8-bit depth, truecolour, deflate, no filter, no interlace
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', header),
    pngChunk('IDAT', deflateSync(raw)),
    pngChunk('IEND', Buffer.alloc(0)),
  ])
}

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
  return c >>> 0
})

function pngChunk(type: string, data: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data])
  let crc = 0xffffffff
  for (const byte of body) crc = (CRC_TABLE[(crc ^ byte) & 0xff] as number) ^ (crc >>> 8)
  const out = Buffer.alloc(body.length + 8)
  out.writeUInt32BE(data.length, 0)
  body.copy(out, 4)
  out.writeUInt32BE((crc ^ 0xffffffff) >>> 0, body.length + 4)
  return out
}
