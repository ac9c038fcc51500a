/**
 * The dashboard (`/`) and its JSON endpoints under `/_demo/`. They are mounted before the cache, so
 * the dashboard's own polling never shows up in the cache's counters.
 */
import http from 'node:http'
import { fileURLToPath } from 'node:url'
import express, { type Request, type Router } from 'express'
import type { ResponseCache } from '../src/index.js'
import type { PausableMemcached } from './memcached.js'

/** The stampede target: its renders, counted by its handler (demo/app.ts). */
export interface StampedePage {
  readonly path: string
  /** Freshness lifetime of the page, in seconds. */
  readonly ttl: number
  renders: number
  /** When its last render finished (epoch ms), 0 before the first. */
  lastRenderAt: number
}

export interface StampedeResult {
  requests: number
  /** Handler runs while the burst was in flight: 1 when the cache did its job. */
  renders: number
  /** X-Cache of the responses, e.g. { MISS: 1, STALE: 49 }. */
  outcomes: Record<string, number>
  statuses: Record<string, number>
}

export interface ControlOptions {
  cache: ResponseCache
  stampede: StampedePage
  storeDescription: string
  /** The memcached the dashboard may pause: only one this demo (or a test) started. */
  memcached: PausableMemcached | undefined
  /** Tags the dashboard offers to invalidate. */
  tags: readonly string[]
}

const BURST = 50
const DASHBOARD_DIR = fileURLToPath(new URL('./dashboard/', import.meta.url))
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

interface Fetched {
  status: number
  xCache: string
  age: number | undefined
}

function get(url: string, agent: http.Agent): Promise<Fetched> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent }, (res) => {
        res.resume()
        res.once('end', () => {
          const age = Number(res.headers.age)
          resolve({
            status: res.statusCode ?? 0,
            xCache: String(res.headers['x-cache'] ?? 'none'),
            age: Number.isFinite(age) ? age : undefined,
          })
        })
        res.once('error', reject)
      })
      .once('error', reject)
  })
}

const tally = (values: readonly (string | number)[]): Record<string, number> => {
  const out: Record<string, number> = {}
  for (const v of values) out[v] = (out[v] ?? 0) + 1
  return out
}

/**
 * Primes the page, waits until its copy is past `ttl`, then sends BURST requests at once. They go
 * out from the server, not the browser: a browser opens at most 6 connections per host.
 */
async function stampede(base: string, page: StampedePage): Promise<StampedeResult> {
  // No socket limit and no keep-alive: BURST connections, all in flight together.
  const agent = new http.Agent({ keepAlive: false, maxSockets: Number.POSITIVE_INFINITY })
  try {
    const url = `${base}${page.path}`
    const prime = await get(url, agent)
    const ageMs =
      prime.xCache === 'HIT' && prime.age !== undefined && page.lastRenderAt === 0
        ? prime.age * 1000 // a copy another process rendered
        : Date.now() - page.lastRenderAt
    // Freshness is kept in ms (entry.staleAt); 300 ms of slack for the store write.
    await sleep(Math.max(0, page.ttl * 1000 - ageMs) + 300)
    const before = page.renders
    const results = await Promise.all(Array.from({ length: BURST }, () => get(url, agent)))
    return {
      requests: BURST,
      renders: page.renders - before,
      outcomes: tally(results.map((r) => r.xCache)),
      statuses: tally(results.map((r) => r.status)),
    }
  } finally {
    agent.destroy()
  }
}

/** The loopback address this request came in on: the burst targets the same server. */
function selfBase(req: Request): string {
  const port = req.socket.localPort
  return `http://127.0.0.1:${port}`
}

export function controlRouter(options: ControlOptions): Router {
  const { cache, stampede: page, memcached, tags } = options
  const router = express.Router()
  let paused = false
  let running: Promise<StampedeResult> | undefined
  let last: StampedeResult | undefined

  // The buttons' endpoints change state (SIGSTOP, invalidation): refuse another site's page posting
  // to this loopback server, which a browser would send without a CORS preflight.
  router.post('/_demo/*splat', (req, res, next) => {
    const origin = req.get('origin')
    if (origin === undefined || origin === `${req.protocol}://${req.get('host')}`) next()
    else res.status(403).json({ error: `cross-origin request from ${origin}` })
  })

  router.get(['/', '/dashboard.js'], (req, res) => {
    // The dashboard is a tool, not a demo page: never cached, by us or the browser.
    res.set('cache-control', 'no-store')
    res.sendFile(req.path === '/' ? 'index.html' : 'dashboard.js', { root: DASHBOARD_DIR })
  })

  router.get('/_demo/stats', (_req, res) => {
    res.set('cache-control', 'no-store')
    res.json({
      stats: cache.stats(),
      store: options.storeDescription,
      memcached:
        memcached === undefined ? null : { address: memcached.address, pid: memcached.pid, paused },
      stampede: { path: page.path, ttl: page.ttl, renders: page.renders, last: last ?? null },
      tags,
    })
  })

  router.post('/_demo/stampede', async (req, res) => {
    if (running !== undefined) {
      res.status(409).json({ error: 'a stampede is already running' })
      return
    }
    running = stampede(selfBase(req), page)
    try {
      last = await running
      res.json(last)
    } catch (err) {
      res.status(500).json({ error: (err as Error).message })
    } finally {
      running = undefined
    }
  })

  router.post('/_demo/memcached/:action', async (req, res) => {
    const action = req.params.action
    if (memcached === undefined) {
      res.status(409).json({ error: 'this memcached was not started by the demo: not pausing it' })
      return
    }
    if (action !== 'pause' && action !== 'resume') {
      res.status(404).json({ error: 'pause or resume' })
      return
    }
    try {
      // SIGSTOP: connections stay open and nothing answers, the worst kind of outage for a client.
      await (action === 'pause' ? memcached.pause() : memcached.resume())
      paused = action === 'pause'
      res.json({ paused })
    } catch (err) {
      res.status(500).json({ error: (err as Error).message })
    }
  })

  router.post('/_demo/invalidate', express.json(), async (req, res) => {
    const body = req.body as { tags?: unknown; soft?: unknown } | undefined
    const list = Array.isArray(body?.tags) ? body.tags.filter((t) => typeof t === 'string') : []
    if (list.length === 0) {
      res.status(400).json({ error: 'send { "tags": ["news"] }' })
      return
    }
    try {
      await cache.invalidateTags(list, { soft: body?.soft === true })
      res.json({ invalidated: list })
    } catch (err) {
      res.status(500).json({ error: (err as Error).message })
    }
  })

  return router
}
