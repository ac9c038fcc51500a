/**
 * OpenTelemetry metrics. Counters are observable (read from `cache.stats()` when a reader collects),
 * so the request path pays nothing for them; only store latency is recorded per call. Without an
 * SDK the API's no-op meter makes all of it free. Attributes are bounded: an outcome, an operation,
 * an error kind, a server — never a URL or a key.
 */
import { type Attributes, type MeterProvider, metrics } from '@opentelemetry/api'
import type { StoreOp } from '../guard.js'
import type { CacheStats } from './stats.js'

export interface StoreTimer {
  duration(op: StoreOp, ms: number): void
}

export function instrument(
  provider: MeterProvider | undefined,
  read: () => CacheStats,
  version: string,
): StoreTimer {
  const meter = (provider ?? metrics).getMeter('express-ft-cache', version)
  const requests = meter.createObservableCounter('eftc.requests', {
    description: 'Requests by cache outcome (X-Cache)',
  })
  const renders = meter.createObservableCounter('eftc.renders', {
    description: 'Handler runs whose result the cache meant to store',
  })
  const coalesced = meter.createObservableCounter('eftc.coalesced', {
    description: "Requests answered with another request's render",
  })
  const locks = meter.createObservableCounter('eftc.locks', { description: 'Mint locks by result' })
  const storeErrors = meter.createObservableCounter('eftc.store.errors', {
    description: 'Store failures by kind',
  })
  const invalidations = meter.createObservableCounter('eftc.invalidations', {
    description: 'Invalidations made by this process',
  })
  const hotHits = meter.createObservableCounter('eftc.hot.hits', {
    description: 'Requests answered from the in-process hot tier',
  })
  const hotBytes = meter.createObservableGauge('eftc.hot.bytes', {
    description: 'Bytes held by the hot tier',
    unit: 'By',
  })
  const hotEntries = meter.createObservableGauge('eftc.hot.entries', {
    description: 'Entries held by the hot tier',
  })
  const breakerOpen = meter.createObservableGauge('eftc.breaker.open', {
    description: '1 while the circuit breaker of a server is open or half-open',
  })
  meter.addBatchObservableCallback(
    (r) => {
      const s = read()
      for (const [outcome, n] of Object.entries(s.requests)) r.observe(requests, n, { outcome })
      r.observe(renders, s.renders)
      r.observe(coalesced, s.coalesced)
      r.observe(locks, s.locks.won, { result: 'won' })
      r.observe(locks, s.locks.lost, { result: 'lost' })
      for (const [kind, n] of Object.entries(s.storeErrors)) r.observe(storeErrors, n, { kind })
      r.observe(invalidations, s.invalidations)
      r.observe(hotHits, s.hot.hits)
      r.observe(hotBytes, s.hot.bytes)
      r.observe(hotEntries, s.hot.entries)
      for (const [server, state] of Object.entries(s.breakers))
        r.observe(breakerOpen, state === 'closed' ? 0 : 1, { server })
    },
    [
      requests,
      renders,
      coalesced,
      locks,
      storeErrors,
      invalidations,
      hotHits,
      hotBytes,
      hotEntries,
      breakerOpen,
    ],
  )
  const latency = meter.createHistogram('eftc.store.duration', {
    description: 'Store call latency',
    unit: 'ms',
  })
  const attributes = new Map<StoreOp, Attributes>()
  return {
    duration(op, ms) {
      let a = attributes.get(op)
      if (a === undefined) {
        a = { op }
        attributes.set(op, a)
      }
      latency.record(ms, a)
    },
  }
}
