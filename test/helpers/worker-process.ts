/**
 * What every app process of a test fleet shares (the fixtures started by helpers/fleet.ts): the
 * origin-call counter behind GET /__calls, and serving on a free 127.0.0.1 port reported to the
 * parent over IPC, closed when the parent goes.
 */
import express, { type Express } from 'express'
import type { ResponseCache } from '../../src/index.js'

/** An app whose GET /__calls, mounted before anything else, reports the origin calls counted. */
export function workerApp(): { app: Express; count: () => number; calls: () => number } {
  let calls = 0
  const app = express()
  app.get('/__calls', (_req, res) => {
    res.json({ calls })
  })
  return { app, count: () => ++calls, calls: () => calls }
}

/** Listens on a free 127.0.0.1 port, reports it to the parent, and closes when the parent goes. */
export function serve(app: Express, cache: ResponseCache): void {
  const server = app.listen(0, '127.0.0.1', () => {
    const address = server.address()
    process.send?.({ port: typeof address === 'object' && address ? address.port : 0 })
  })
  process.on('disconnect', () => {
    server.close()
    void cache.close()
  })
}
