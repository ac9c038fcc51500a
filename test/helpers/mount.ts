import assert from 'node:assert/strict'
import type { Express } from 'express'
import request from 'supertest'
import type { ResponseCache } from '../../src/index.js'
import type { ExpressFactory } from './express.js'

/** An app with the cache mounted and one origin-call counter for all its routes. */
export function mount(
  express: ExpressFactory,
  cache: ResponseCache,
  routes: (app: Express, count: () => number) => void,
): { app: Express; calls: () => number } {
  const app = express()
  let calls = 0
  app.use(cache)
  routes(app, () => ++calls)
  return { app, calls: () => calls }
}

/**
 * Requests a URL until it is stored: MISS, then HIT (proves the entry exists; with a hot tier, the
 * write-back fills it too). Returns the HIT.
 */
export async function warm(
  app: Express,
  cache: ResponseCache,
  path: string,
  headers: Record<string, string> = {},
): Promise<request.Response> {
  await request(app).get(path).set(headers)
  await cache.settled()
  const hit = await request(app).get(path).set(headers)
  assert.equal(hit.headers['x-cache'], 'HIT', `${path} ${JSON.stringify(headers)} is stored`)
  return hit
}
