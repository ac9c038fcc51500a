/**
 * Property-based test of the middleware: random handlers (how they write, status, caching headers,
 * cookies, truncation, errors, delays) under random concurrent traffic, on Express 5 and 4. The CI
 * run is short; `npm run test:property` runs long (PROPERTY_RUNS, PROPERTY_SEED).
 */
import { it } from 'node:test'
import fc from 'fast-check'
import { forEachExpress } from '../helpers/express.js'
import { EXAMPLES } from './examples.js'
import { harness, middlewareProperty } from './harness.js'

const runs = Number(process.env.PROPERTY_RUNS ?? 40)
const seed = process.env.PROPERTY_SEED === undefined ? undefined : Number(process.env.PROPERTY_SEED)

forEachExpress('property: cache invariants', (express) => {
  it('hold for random handlers and concurrent requests', async () => {
    await fc.assert(middlewareProperty(harness(express)), {
      numRuns: runs,
      examples: EXAMPLES.map((e) => [e]),
      ...(seed === undefined ? {} : { seed }),
      // A failure is shrunk, but never for longer than this: the suite must finish.
      interruptAfterTimeLimit: 90_000,
    })
  })
})
