/**
 * Metrics: OpenTelemetry through `meterProvider` (sdk-metrics, collected on demand), and the
 * Prometheus recipe (prom-client collectors reading `cache.stats()`).
 */
import assert from 'node:assert/strict'
import { describe, it, type TestContext } from 'node:test'
import type { Attributes } from '@opentelemetry/api'
import {
  DataPointType,
  MeterProvider,
  MetricReader,
  type ResourceMetrics,
} from '@opentelemetry/sdk-metrics'
import express from 'express'
import pino from 'pino'
import { Counter, Gauge, Registry } from 'prom-client'
import request from 'supertest'
import {
  MemcachedStore,
  MemoryStore,
  type ResponseCache,
  type ResponseCacheOptions,
  responseCache,
} from '../../src/index.js'
import { freePort } from '../helpers/memcached.js'

/** A reader the test collects from when it wants (no export interval, no exporter). */
class OnDemandReader extends MetricReader {
  protected override async onForceFlush(): Promise<void> {}
  protected override async onShutdown(): Promise<void> {}
}

interface Point {
  readonly name: string
  readonly type: DataPointType
  readonly attributes: Attributes
  readonly value: unknown
}

function points(rm: ResourceMetrics): Point[] {
  const out: Point[] = []
  for (const scope of rm.scopeMetrics) {
    assert.equal(scope.scope.name, 'express-ft-cache')
    for (const m of scope.metrics) {
      for (const p of m.dataPoints as { attributes: Attributes; value: unknown }[])
        out.push({
          name: m.descriptor.name,
          type: m.dataPointType,
          attributes: p.attributes,
          value: p.value,
        })
    }
  }
  return out
}

/** A cache (MemoryStore unless `options` say) with its own meter provider, both closed after `t`. */
function instrumented(t: TestContext, options: ResponseCacheOptions = {}) {
  const reader = new OnDemandReader()
  const provider = new MeterProvider({ readers: [reader] })
  const cache = responseCache({
    store: new MemoryStore(),
    logger: pino({ level: 'silent' }),
    meterProvider: provider,
    ...options,
  })
  t.after(async () => {
    await cache.close()
    await provider.shutdown()
  })
  const collect = async (): Promise<Point[]> => {
    const { resourceMetrics, errors } = await reader.collect()
    assert.deepEqual(errors, [])
    return points(resourceMetrics)
  }
  return { cache, reader, collect }
}

const value = (ps: Point[], name: string, attributes: Attributes = {}): unknown =>
  ps.find(
    (p) =>
      p.name === name &&
      Object.keys(attributes).length === Object.keys(p.attributes).length &&
      Object.entries(attributes).every(([k, v]) => p.attributes[k] === v),
  )?.value

function appFor(cache: ResponseCache) {
  const app = express()
  app.use(cache)
  app.get('/secret-path/:id', (req, res) => {
    res.send(`page ${req.params.id}`)
  })
  app.post('/secret-path/:id', (_req, res) => {
    res.send('saved')
  })
  return app
}

describe('OpenTelemetry metrics (meterProvider)', () => {
  it('reports requests by outcome, renders, invalidations and the store latency histogram', async (t) => {
    const { cache, collect } = instrumented(t, { prefix: 'secretprefix' })
    const app = appFor(cache)
    await request(app).get('/secret-path/1?q=secret-query')
    await cache.settled()
    await request(app).get('/secret-path/1?q=secret-query')
    await request(app).get('/secret-path/1?q=secret-query')
    await request(app).post('/secret-path/1')
    await cache.settled()
    await cache.invalidateTags('secret-tag')

    const ps = await collect()
    assert.equal(value(ps, 'eftc.requests', { outcome: 'hit' }), 2)
    assert.equal(value(ps, 'eftc.requests', { outcome: 'miss' }), 1)
    assert.equal(value(ps, 'eftc.requests', { outcome: 'bypass' }), 1)
    assert.equal(value(ps, 'eftc.requests', { outcome: 'stale' }), 0)
    assert.equal(value(ps, 'eftc.renders'), 1)
    assert.equal(value(ps, 'eftc.coalesced'), 0)
    assert.equal(value(ps, 'eftc.locks', { result: 'won' }), 1)
    assert.equal(value(ps, 'eftc.locks', { result: 'lost' }), 0)
    assert.equal(value(ps, 'eftc.invalidations'), 2)
    assert.equal(value(ps, 'eftc.hot.hits'), 0)
    assert.equal(value(ps, 'eftc.hot.entries'), 0)
    assert.equal(value(ps, 'eftc.hot.bytes'), 0)
    const requests = ps.filter((p) => p.name === 'eftc.requests')
    assert.ok(requests.every((p) => p.type === DataPointType.SUM))

    const durations = ps.filter((p) => p.name === 'eftc.store.duration')
    assert.ok(durations.length > 0, 'store latency recorded')
    assert.ok(durations.every((p) => p.type === DataPointType.HISTOGRAM))
    const ops = new Set(durations.map((p) => p.attributes.op))
    for (const op of ['get', 'set', 'add']) assert.ok(ops.has(op), `${op} timed`)
    for (const p of durations) {
      const h = p.value as { count: number; sum?: number }
      assert.ok(h.count > 0)
      assert.ok((h.sum ?? 0) >= 0)
    }

    // Bounded attributes only: never a URL, path, query, key, prefix or tag.
    const allowed = new Set(['outcome', 'result', 'kind', 'server', 'op'])
    for (const p of ps) {
      for (const [k, v] of Object.entries(p.attributes)) {
        assert.ok(allowed.has(k), `${p.name} attribute ${k}`)
        assert.doesNotMatch(String(v), /secret|\//, `${p.name} ${k}=${String(v)}`)
      }
    }
  })

  it('counters are cumulative and follow stats() between collections', async (t) => {
    const { cache, collect } = instrumented(t, { hotCache: true })
    const app = appFor(cache)
    await request(app).get('/secret-path/2')
    await cache.settled()
    const first = await collect()
    assert.equal(value(first, 'eftc.requests', { outcome: 'miss' }), 1)
    for (let i = 0; i < 3; i++) await request(app).get('/secret-path/2')
    const second = await collect()
    const s = cache.stats()
    assert.equal(value(second, 'eftc.requests', { outcome: 'hit' }), s.requests.hit)
    assert.equal(value(second, 'eftc.requests', { outcome: 'miss' }), 1)
    assert.equal(value(second, 'eftc.hot.hits'), s.hot.hits)
    assert.ok(s.hot.hits >= 2, 'the hot tier answered')
    assert.equal(value(second, 'eftc.hot.entries'), 1)
    assert.equal(value(second, 'eftc.hot.bytes'), s.hot.bytes)
  })

  it('reports store errors by kind and a breaker gauge per server', async (t) => {
    const port = await freePort()
    const store = new MemcachedStore({ servers: `127.0.0.1:${port}`, timeout: '1s' })
    const { cache, reader } = instrumented(t, { store, timeout: '1s' })
    const app = appFor(cache)
    // Nothing listens on the port: every call is refused.
    for (let i = 0; i < 6; i++) assert.equal((await request(app).get('/secret-path/3')).status, 200)
    await cache.settled()
    const ps = points((await reader.collect()).resourceMetrics)
    const errors = ps.filter((p) => p.name === 'eftc.store.errors')
    assert.ok(errors.length > 0)
    for (const p of errors) {
      assert.deepEqual(Object.keys(p.attributes), ['kind'])
      assert.equal(p.value, cache.stats().storeErrors[String(p.attributes.kind)])
    }
    assert.equal(value(ps, 'eftc.breaker.open', { server: `127.0.0.1:${port}` }), 1)
  })

  it('costs nothing without an SDK: the global no-op provider is used', async (t) => {
    const cache = responseCache({ store: new MemoryStore(), logger: pino({ level: 'silent' }) })
    t.after(() => cache.close())
    const app = appFor(cache)
    await request(app).get('/secret-path/4')
    await cache.settled()
    assert.equal((await request(app).get('/secret-path/4')).headers['x-cache'], 'HIT')
  })
})

describe('Prometheus recipe (prom-client)', () => {
  /** The recipe: collectors that read cache.stats() when Prometheus scrapes. */
  function prometheus(cache: ResponseCache): Registry {
    const registry = new Registry()
    new Counter({
      name: 'eftc_requests_total',
      help: 'Requests by cache outcome (X-Cache)',
      labelNames: ['outcome'],
      registers: [registry],
      collect() {
        this.reset()
        for (const [outcome, n] of Object.entries(cache.stats().requests)) this.inc({ outcome }, n)
      },
    })
    new Counter({
      name: 'eftc_renders_total',
      help: 'Handler runs whose result the cache meant to store',
      registers: [registry],
      collect() {
        this.reset()
        this.inc(cache.stats().renders)
      },
    })
    new Counter({
      name: 'eftc_store_errors_total',
      help: 'Store failures by kind',
      labelNames: ['kind'],
      registers: [registry],
      collect() {
        this.reset()
        for (const [kind, n] of Object.entries(cache.stats().storeErrors)) this.inc({ kind }, n)
      },
    })
    new Gauge({
      name: 'eftc_hot_bytes',
      help: 'Bytes held by the hot tier',
      registers: [registry],
      collect() {
        this.set(cache.stats().hot.bytes)
      },
    })
    return registry
  }

  it('produces the expected exposition text', async (t) => {
    const cache = responseCache({
      store: new MemoryStore(),
      logger: pino({ level: 'silent' }),
      hotCache: true,
    })
    t.after(() => cache.close())
    const registry = prometheus(cache)
    const app = appFor(cache)
    await request(app).get('/secret-path/5')
    await cache.settled()
    await request(app).get('/secret-path/5')
    await request(app).post('/secret-path/6')
    const text = await registry.metrics()
    assert.match(text, /# HELP eftc_requests_total Requests by cache outcome \(X-Cache\)\n/)
    assert.match(text, /# TYPE eftc_requests_total counter\n/)
    assert.match(text, /^eftc_requests_total\{outcome="hit"\} 1$/m)
    assert.match(text, /^eftc_requests_total\{outcome="miss"\} 1$/m)
    assert.match(text, /^eftc_requests_total\{outcome="bypass"\} 1$/m)
    assert.match(text, /^eftc_requests_total\{outcome="stale"\} 0$/m)
    assert.match(text, /^eftc_renders_total 1$/m)
    assert.match(text, /# TYPE eftc_hot_bytes gauge\n/)
    const bytes = /^eftc_hot_bytes (\d+)$/m.exec(text)?.[1]
    assert.equal(Number(bytes), cache.stats().hot.bytes)
    assert.ok(Number(bytes) > 0)
    assert.doesNotMatch(text, /secret/)
    // A second scrape reports the totals again, not increments on top of the first.
    await request(app).get('/secret-path/5')
    const again = await registry.metrics()
    assert.match(again, /^eftc_requests_total\{outcome="hit"\} 2$/m)
    assert.match(again, /^eftc_renders_total 1$/m)
  })
})
