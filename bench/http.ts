/**
 * HTTP benchmark: what the cache costs and saves per request, as ratios against a baseline measured
 * in the same run.
 *
 * One Express app on 127.0.0.1:0 (this process) serves every scenario under its own path; the load
 * comes from a child process (./lib/load-worker.ts) with a fixed number of keep-alive connections.
 * Each round runs the baseline between every two scenarios (A s1 A s2 A …), and each scenario is
 * compared with the mean of the two baselines around it, so slow drift of a shared machine cancels.
 * The scenario order rotates every round. Ratios are the median over rounds (range in brackets).
 *
 * Run: node --import tsx bench/http.ts   (BENCH_HTTP_ROUNDS, BENCH_HTTP_MS, BENCH_CONCURRENCY)
 */
import type { Server } from 'node:http'
import express, { type Request, type Response } from 'express'
import { pino } from 'pino'
import type { MemcachedStoreEvent } from '../src/store/memcached.js'
import { startMemcached } from '../test/helpers/memcached.js'
import { MemcachedStore, MemoryStore, responseCache } from './lib/library.js'
import { type JobResult, type LoadGenerator, startLoadGenerator } from './lib/load.js'
import { calibrate, renderPage } from './lib/origin.js'
import {
  envNumber,
  mean,
  median,
  ms,
  perSecond,
  progress,
  ratio,
  ratioRange,
  summarize,
  table,
} from './lib/stats.js'

/** The faults are provoked on purpose: their warnings would only bury the progress lines. */
const quiet = pino({ level: 'silent' })

const ROUNDS = envNumber('BENCH_HTTP_ROUNDS', 4)
const DURATION_MS = envNumber('BENCH_HTTP_MS', 1200)
const WARMUP_MS = 250
const CONCURRENCY = envNumber('BENCH_CONCURRENCY', 8)

interface Scenario {
  readonly id: string
  readonly label: string
  readonly method: 'GET' | 'POST'
  readonly path: string
  /** The X-Cache value every response should carry ('-': none). */
  readonly expect: readonly string[]
}

const BASELINE: Scenario = {
  id: 'baseline',
  label: 'baseline: no cache middleware',
  method: 'GET',
  path: '/base/page',
  expect: ['-'],
}

const SCENARIOS: readonly Scenario[] = [
  { id: 'mc-hit', label: 'HIT, MemcachedStore', method: 'GET', path: '/mc/page', expect: ['HIT'] },
  { id: 'mem-hit', label: 'HIT, MemoryStore', method: 'GET', path: '/mem/page', expect: ['HIT'] },
  {
    id: 'disabled',
    label: 'pass-through: `cache.route({ enabled: false })`',
    method: 'GET',
    path: '/off/page',
    expect: ['BYPASS'],
  },
  {
    id: 'base-post',
    label: 'baseline POST (no cache middleware; reference for the next row)',
    method: 'POST',
    path: '/base/page',
    expect: ['-'],
  },
  {
    id: 'post',
    label: 'pass-through: POST (BYPASS + invalidation delete)',
    method: 'POST',
    path: '/post/page',
    expect: ['BYPASS'],
  },
  {
    id: 'miss',
    label: 'MISS, unique keys (get + add lock + render + set + unlock)',
    method: 'GET',
    path: '/mc/page?u={n}',
    expect: ['MISS'],
  },
  {
    id: 'fault',
    label: 'fault: memcached SIGSTOPped, unique keys (breaker open)',
    method: 'GET',
    path: '/fault/page?u={n}',
    expect: ['MISS'],
  },
]

interface Measured {
  readonly rps: number
  readonly p50: number
  readonly p99: number
  readonly max: number
  readonly errors: number
  readonly cache: Record<string, number>
  readonly statuses: Record<string, number>
  readonly firstError: string | undefined
}

function measure(r: JobResult): Measured {
  const s = summarize(r.latencies)
  return {
    rps: r.completed / (r.windowMs / 1000),
    p50: s.p50,
    p99: s.p99,
    max: s.max,
    errors: r.errors,
    cache: r.cache,
    statuses: r.statuses,
    firstError: r.firstError,
  }
}

function mix(counts: Record<string, number>): string {
  const total = Object.values(counts).reduce((a, b) => a + b, 0)
  return Object.entries(counts)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k} ${((100 * v) / total).toFixed(v === total ? 0 : 1)}%`)
    .join(', ')
}

function addCounts(into: Record<string, number>, from: Record<string, number>): void {
  for (const [k, v] of Object.entries(from)) into[k] = (into[k] ?? 0) + v
}

async function main(): Promise<void> {
  const started = performance.now()
  const origin = calibrate(2)
  const bodyBytes = Buffer.byteLength(renderPage('bench'))
  progress(
    `http: origin work ${origin.ms.toFixed(2)} ms (${origin.iterations} iterations), body ${bodyBytes} B`,
  )

  const mc = await startMemcached({ memoryMb: 256 })
  const mcDown = await startMemcached()
  const events: { at: number; event: MemcachedStoreEvent['type'] }[] = []
  const mcCache = responseCache({
    store: new MemcachedStore({ servers: mc.address }),
    prefix: 'bench',
    ttl: '1h',
    logger: quiet,
  })
  const memCache = responseCache({
    store: new MemoryStore(),
    prefix: 'bench',
    ttl: '1h',
    logger: quiet,
  })
  const faultCache = responseCache({
    store: new MemcachedStore({
      servers: mcDown.address,
      onEvent: (e) => events.push({ at: performance.now(), event: e.type }),
    }),
    prefix: 'bench',
    ttl: '1h',
    logger: quiet,
  })

  const render = (_req: Request, res: Response): void => {
    res.type('html').send(renderPage('bench'))
  }
  const app = express()
  app.get('/base/page', render)
  app.post('/base/page', render)
  app.get('/mc/page', mcCache.route(), render)
  app.post('/post/page', mcCache.route(), render)
  app.get('/mem/page', memCache.route(), render)
  app.get('/off/page', mcCache.route({ enabled: false }), render)
  app.get('/fault/page', faultCache.route(), render)

  const server: Server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s))
  })
  const address = server.address()
  const port = typeof address === 'object' && address ? address.port : 0
  const load: LoadGenerator = await startLoadGenerator()

  const run = async (
    s: Scenario,
    durationMs = DURATION_MS,
    warmupMs = WARMUP_MS,
  ): Promise<Measured> => {
    const r = await load.run({
      kind: 'load',
      port,
      method: s.method,
      path: s.path,
      concurrency: CONCURRENCY,
      warmupMs,
      durationMs,
    })
    // Write-backs of a MISS-heavy run finish before the next segment starts.
    await Promise.all([mcCache.settled(), memCache.settled()])
    return measure(r)
  }

  try {
    // Prime the HIT entries, and check they are hits.
    for (const path of ['/mc/page', '/mem/page']) {
      await fetch(`http://127.0.0.1:${port}${path}`).then((r) => r.arrayBuffer())
    }
    await Promise.all([mcCache.settled(), memCache.settled()])

    progress('http: warm-up round')
    await run(BASELINE, 600, 200)
    for (const s of SCENARIOS.filter((x) => !x.id.startsWith('fault'))) await run(s, 300, 100)

    // The fault store's memcached is paused for the rest of the run. Its first seconds (breaker
    // still closed: every request waits for the deadline) are measured on their own.
    progress('http: fault onset (memcached paused)')
    const onsetBase = await run(BASELINE, 1000, 200)
    await mcDown.pause()
    const onsetStart = performance.now()
    const onsetRaw = await load.run({
      kind: 'load',
      port,
      method: 'GET',
      path: '/fault/page?u={n}',
      concurrency: CONCURRENCY,
      warmupMs: 0,
      durationMs: 1500,
    })
    const onset = measure(onsetRaw)
    const opened = events.find((e) => e.event === 'breaker-open')
    const slow = onsetRaw.latencies.filter((x) => x >= 50).length
    // 1-based completion index of the last request that paid the deadline.
    let slowUntil = 0
    onsetRaw.latencies.forEach((l, i) => {
      if (l >= 50) slowUntil = i + 1
    })

    const rows = new Map<
      string,
      { ratiosRps: number[]; ratiosP99: number[]; ratiosP50: number[]; runs: Measured[] }
    >()
    for (const s of SCENARIOS)
      rows.set(s.id, { ratiosRps: [], ratiosP99: [], ratiosP50: [], runs: [] })
    const baselines: Measured[] = []

    for (let round = 0; round < ROUNDS; round++) {
      const order = SCENARIOS.map((_, i) => SCENARIOS[(i + round) % SCENARIOS.length] as Scenario)
      progress(`http: round ${round + 1}/${ROUNDS} (${order.map((s) => s.id).join(' ')})`)
      let before = await run(BASELINE)
      baselines.push(before)
      for (const s of order) {
        const m = await run(s)
        const after = await run(BASELINE)
        baselines.push(after)
        const row = rows.get(s.id)!
        row.runs.push(m)
        row.ratiosRps.push(m.rps / mean([before.rps, after.rps]))
        row.ratiosP99.push(m.p99 / mean([before.p99, after.p99]))
        row.ratiosP50.push(m.p50 / mean([before.p50, after.p50]))
        before = after
      }
    }

    // ---- report ----
    const out: string[] = []
    out.push('## HTTP: cost and gain per request (bench/http.ts)')
    out.push('')
    out.push(
      `Closed loop, ${CONCURRENCY} keep-alive connections from a separate load process; ${ROUNDS} rounds of ` +
        `A s A s … (A = baseline), ${DURATION_MS} ms measured per segment after ${WARMUP_MS} ms warm-up. ` +
        `Origin: ${(bodyBytes / 1000).toFixed(1)} KB HTML after ${origin.ms.toFixed(2)} ms of CPU work. ` +
        'Each ratio compares a segment with the mean of the two baseline segments around it; shown as ' +
        'the median over rounds (min–max). Throughput ratio > 1 is faster; latency ratio < 1 is faster. ' +
        'MemcachedStore defaults: timeout 100 ms, failureThreshold 5, cooldown 2 s.',
    )
    out.push('')
    const b = {
      rps: median(baselines.map((x) => x.rps)),
      p50: median(baselines.map((x) => x.p50)),
      p99: median(baselines.map((x) => x.p99)),
      max: median(baselines.map((x) => x.max)),
    }
    const baseCache: Record<string, number> = {}
    for (const x of baselines) addCounts(baseCache, x.cache)
    const resultRows: string[][] = [
      [
        BASELINE.label,
        '1.00×',
        '1.00×',
        '1.00×',
        perSecond(b.rps),
        ms(b.p50),
        ms(b.p99),
        ms(b.max),
        mix(baseCache),
      ],
    ]
    let errors = baselines.reduce((a, x) => a + x.errors, 0)
    const problems: string[] = []
    for (const s of SCENARIOS) {
      const row = rows.get(s.id)!
      const cache: Record<string, number> = {}
      for (const x of row.runs) addCounts(cache, x.cache)
      errors += row.runs.reduce((a, x) => a + x.errors, 0)
      const unexpected = Object.keys(cache).filter((k) => !s.expect.includes(k))
      if (unexpected.length > 0)
        problems.push(`${s.id}: unexpected X-Cache ${unexpected.join(', ')}`)
      for (const x of row.runs) {
        const bad = Object.keys(x.statuses).filter((k) => k !== '200')
        if (bad.length > 0) problems.push(`${s.id}: statuses ${JSON.stringify(x.statuses)}`)
        if (x.firstError) problems.push(`${s.id}: ${x.firstError}`)
      }
      resultRows.push([
        s.label,
        ratioRange(row.ratiosRps),
        ratioRange(row.ratiosP50),
        ratioRange(row.ratiosP99),
        perSecond(median(row.runs.map((x) => x.rps))),
        ms(median(row.runs.map((x) => x.p50))),
        ms(median(row.runs.map((x) => x.p99))),
        ms(median(row.runs.map((x) => x.max))),
        mix(cache),
      ])
    }
    out.push(
      table(
        [
          'scenario',
          'req/s ratio',
          'p50 ratio',
          'p99 ratio',
          'req/s',
          'p50',
          'p99',
          'max',
          'X-Cache',
        ],
        resultRows,
      ),
    )
    const post = rows.get('post')!
    const basePost = rows.get('base-post')!
    const vsPost = (f: (m: Measured) => number): number[] =>
      post.runs.map((m, i) => f(m) / f(basePost.runs[i]!))
    out.push('')
    out.push(
      `POST through the cache (BYPASS, then an invalidation delete after the response) vs baseline POST, ` +
        `same round: req/s ${ratioRange(vsPost((m) => m.rps))}, p50 ${ratioRange(vsPost((m) => m.p50))}, ` +
        `p99 ${ratioRange(vsPost((m) => m.p99))}.`,
    )
    out.push('')
    out.push(
      `Fault onset (memcached SIGSTOPped, first ${(onsetRaw.windowMs / 1000).toFixed(1)} s, unique keys, ` +
        `no warm-up): breaker opened ${opened ? `${Math.round(opened.at - onsetStart)} ms` : 'never'} after ` +
        `the pause; ${slow} of ${onsetRaw.completed} requests took >= 50 ms (the last of them was ` +
        `completion #${slowUntil}); ${perSecond(onset.rps)} req/s (${ratio(onset.rps / onsetBase.rps)} of ` +
        `the baseline just before), p50 ${ms(onset.p50)} (${ratio(onset.p50 / onsetBase.p50)}), ` +
        `p99 ${ms(onset.p99)} (${ratio(onset.p99 / onsetBase.p99)}), max ${ms(onset.max)}. ` +
        `Breaker events over the run: ${summarizeEvents(events)}.`,
    )
    out.push('')
    out.push(
      `Load errors: ${errors}.${problems.length ? ` Problems: ${[...new Set(problems)].join('; ')}.` : ''}`,
    )
    out.push(`Run time: ${((performance.now() - started) / 1000).toFixed(0)} s.`)
    process.stdout.write(`${out.join('\n')}\n`)
  } finally {
    await load.close()
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
    await Promise.all([mcCache.close(), memCache.close()])
    await mcDown.resume()
    await faultCache.close()
    await Promise.all([mc.stop(), mcDown.stop()])
  }
}

function summarizeEvents(events: readonly { event: string }[]): string {
  const counts: Record<string, number> = {}
  for (const e of events) counts[e.event] = (counts[e.event] ?? 0) + 1
  return Object.entries(counts)
    .map(([k, v]) => `${k} ×${v}`)
    .join(', ')
}

main().catch((error: unknown) => {
  console.error(error)
  process.exitCode = 1
})
