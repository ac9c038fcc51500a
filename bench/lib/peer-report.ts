/**
 * Results of the peer benchmark (../peers.ts): what is collected per cell, and how it is written
 * out (JSON for tooling, Markdown for the README).
 */
import type { ChartSource } from './chart.js'
import { CONTENDERS, type ContenderId, LABELS } from './contenders.js'
import type { JobResult } from './load.js'
import { type Machine, machineLine } from './machine.js'
import { median, ms, perSecond, summarize, table } from './stats.js'

export interface Scenario {
  readonly id: string
  readonly label: string
  readonly path: string
  /** Keep-alive connections for this scenario, when not the run's default. */
  readonly connections?: number
  /** The path holds `{k<urls>}`: each request takes the next of that many URLs, in a cycle. */
  readonly urls?: number
}

/** Every URL a scenario requests. */
export function urlsOf(sc: Scenario): string[] {
  if (sc.urls === undefined) return [sc.path]
  return Array.from({ length: sc.urls }, (_, k) => sc.path.replace(/\{k\d+\}/, String(k)))
}

/** Two contenders side by side on one scenario: a's completed requests over b's, per round. */
export interface Duel {
  readonly scenario: string
  readonly a: ContenderId
  readonly b: ContenderId
  readonly ratio: number[]
}

/** One contender on one throughput scenario, over all rounds. */
export interface Cell {
  readonly rps: number[]
  /** req/s divided by plain Express's in the same round. */
  readonly ratio: number[]
  readonly p50: number[]
  readonly p99: number[]
  errors: number
  firstError: string | undefined
  readonly statuses: Record<string, number>
  readonly xCache: Record<string, number>
  /** Origin calls during the segments (warm-up included) and the requests answered in them. */
  originCalls: number
  requests: number
  /** Server CPU time per request (µs), per round, warm-up included. */
  readonly cpuUs: number[]
  /** memcached's CPU time over all segments (µs) and the requests served meanwhile. */
  storeCpuUs: number
  storeRequests: number
}

/** CPU cost of one segment: the server's, and memcached's when it could be read. */
export interface SegmentCpu {
  readonly serverUs: number
  readonly storeUs: number | undefined
  readonly requests: number
}

/** One contender on one stampede kind (cold or expired), over all trials. */
export interface Burst {
  readonly calls: number[]
  readonly p50: number[]
  readonly p99: number[]
  errors: number
  readonly xCache: Record<string, number>
}

export const STAMPEDE_KINDS = ['cold', 'expired'] as const
export type StampedeKind = (typeof STAMPEDE_KINDS)[number]

export interface Method {
  readonly quick: boolean
  /** 'paired': each contender measured at the same time as plain Express, on the same CPU. */
  readonly mode: 'paired' | 'sequential'
  readonly rounds: number
  readonly measuredMs: number
  readonly warmupMs: number
  readonly connections: number
  readonly ttlSeconds: number
  readonly originMs: number
  /** How the throughput runs' processes were placed on CPUs (see ./affinity.ts). */
  readonly pinning: string
  readonly stampede: {
    readonly processes: number
    readonly requests: number
    readonly trials: number
    readonly ttlSeconds: number
  }
}

export interface PeerResults {
  /** The commit measured. */
  readonly revision: string
  readonly machine: Machine & { readonly loadAverage1mBefore: number }
  readonly method: Method
  readonly runSeconds: number
  readonly skipped: Partial<Record<ContenderId, string>>
  /** Contenders that ran, in report order. */
  readonly live: readonly ContenderId[]
  readonly scenarios: readonly Scenario[]
  /** Keyed `${scenario}/${contender}`; empty when the throughput part did not run. */
  readonly cells: ReadonlyMap<string, Cell>
  /** Head to head: the first contender's completed requests over the second's, per round. */
  readonly duels: readonly Duel[]
  /** Keyed `${kind}/${contender}`; empty when the stampede part did not run. */
  readonly bursts: ReadonlyMap<string, Burst>
}

function add(into: Record<string, number>, from: Record<string, number>): void {
  for (const [k, v] of Object.entries(from)) into[k] = (into[k] ?? 0) + v
}

export function newCell(): Cell {
  return {
    rps: [],
    ratio: [],
    p50: [],
    p99: [],
    errors: 0,
    firstError: undefined,
    statuses: {},
    xCache: {},
    originCalls: 0,
    requests: 0,
    cpuUs: [],
    storeCpuUs: 0,
    storeRequests: 0,
  }
}

export function recordSegment(c: Cell, r: JobResult, originCalls: number, cpu: SegmentCpu): void {
  if (cpu.requests > 0) {
    c.cpuUs.push(cpu.serverUs / cpu.requests)
    if (cpu.storeUs !== undefined) {
      c.storeCpuUs += cpu.storeUs
      c.storeRequests += cpu.requests
    }
  }
  const lat = summarize(r.latencies)
  c.rps.push(r.completed / (r.windowMs / 1000))
  c.p50.push(lat.p50)
  c.p99.push(lat.p99)
  c.errors += r.errors
  c.firstError ??= r.firstError
  add(c.statuses, r.statuses)
  add(c.xCache, r.cache)
  c.originCalls += originCalls
  c.requests += r.completed
}

export function newBurst(): Burst {
  return { calls: [], p50: [], p99: [], errors: 0, xCache: {} }
}

/** `expected`: the requests sent; any not answered count as errors. */
export function recordBurst(b: Burst, r: JobResult, calls: number, expected: number): void {
  const lat = summarize(r.latencies)
  b.calls.push(calls)
  b.p50.push(lat.p50)
  b.p99.push(lat.p99)
  b.errors += r.errors + Math.max(0, expected - r.completed - r.errors)
  add(b.xCache, r.cache)
}

function mix(counts: Record<string, number>): string {
  const total = Object.values(counts).reduce((a, b) => a + b, 0)
  if (total === 0) return '-'
  return Object.entries(counts)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k} ${((100 * v) / total).toFixed(v === total ? 0 : 1)}%`)
    .join(', ')
}

/** "1.42× (1.38–1.47)": median over rounds and its range. */
function spread(values: readonly number[], digits = 2): string {
  if (values.length === 0) return 'n/a'
  const lo = Math.min(...values)
  const hi = Math.max(...values)
  const m = median(values)
  if (values.length === 1 || lo.toFixed(digits) === hi.toFixed(digits))
    return `${m.toFixed(digits)}×`
  return `${m.toFixed(digits)}× (${lo.toFixed(digits)}–${hi.toFixed(digits)})`
}

function countRange(values: readonly number[]): string {
  if (values.length === 0) return 'n/a'
  const lo = Math.min(...values)
  const hi = Math.max(...values)
  return lo === hi ? String(lo) : `${median(values)} (${lo}–${hi})`
}

/** memcached CPU per request (µs), or undefined when unknown or negligible (in-process caches). */
function storePerRequest(c: Cell): number | undefined {
  return c.storeRequests > 0 ? c.storeCpuUs / c.storeRequests : undefined
}

/** Server CPU per request, plus memcached's for the contenders that use it. */
function totalCpu(id: ContenderId, c: Cell): number {
  return median(c.cpuUs) + (id.startsWith('eftc') ? (storePerRequest(c) ?? 0) : 0)
}

/** Everything measured, medians first and the per-round values for anyone who wants to re-plot. */
export function toJson(r: PeerResults): ChartSource & Readonly<Record<string, unknown>> {
  return {
    generated: new Date().toISOString(),
    revision: r.revision,
    machine: r.machine,
    runSeconds: r.runSeconds,
    method: r.method,
    contenders: CONTENDERS.map((id) => ({
      id,
      label: LABELS[id],
      ...(r.skipped[id] !== undefined ? { skipped: r.skipped[id] } : {}),
    })),
    throughput:
      r.cells.size === 0
        ? null
        : r.scenarios.map((sc) => ({
            id: sc.id,
            label: sc.label,
            path: sc.path,
            results: Object.fromEntries(
              r.live.flatMap((id) => {
                const c = r.cells.get(`${sc.id}/${id}`)
                if (c === undefined) return []
                return [
                  [
                    id,
                    {
                      ratio: median(c.ratio),
                      rps: median(c.rps),
                      p50Ms: median(c.p50),
                      p99Ms: median(c.p99),
                      cpuUsPerRequest: median(c.cpuUs),
                      memcachedCpuUsPerRequest: storePerRequest(c),
                      originCalls: c.originCalls,
                      requests: c.requests,
                      errors: c.errors,
                      statuses: c.statuses,
                      xCache: c.xCache,
                      rounds: {
                        ratio: c.ratio,
                        rps: c.rps,
                        p50Ms: c.p50,
                        p99Ms: c.p99,
                        cpuUsPerRequest: c.cpuUs,
                      },
                    },
                  ],
                ]
              }),
            ),
          })),
    headToHead: r.duels.map((d) => ({
      scenario: d.scenario,
      contender: d.a,
      against: d.b,
      ratio: median(d.ratio),
      rounds: d.ratio,
    })),
    stampede:
      r.bursts.size === 0
        ? null
        : Object.fromEntries(
            STAMPEDE_KINDS.map((kind) => [
              kind,
              Object.fromEntries(
                r.live.flatMap((id) => {
                  const b = r.bursts.get(`${kind}/${id}`)
                  if (b === undefined) return []
                  return [
                    [
                      id,
                      {
                        originCalls: median(b.calls),
                        trials: b.calls,
                        p50Ms: median(b.p50),
                        p99Ms: median(b.p99),
                        errors: b.errors,
                        xCache: b.xCache,
                      },
                    ],
                  ]
                }),
              ),
            ]),
          ),
  }
}

/** Whatever looks wrong: non-200s, load errors, a cache that did not serve from cache. */
function checks(r: PeerResults): string[] {
  const problems: string[] = []
  for (const [key, c] of r.cells) {
    const id = key.split('/')[1] ?? ''
    if (Object.keys(c.statuses).some((k) => k !== '200'))
      problems.push(`${key}: statuses ${JSON.stringify(c.statuses)}`)
    if (c.errors > 0) problems.push(`${key}: ${c.errors} load errors (${c.firstError})`)
    // An entry may expire once during a long run (lifetime 60 s): a handful of calls is fine.
    if (id !== 'plain' && c.originCalls > Math.max(10, c.requests / 100))
      problems.push(`${key}: ${c.originCalls} origin calls for ${c.requests} requests`)
    // Likewise a STALE while that expiry regenerates, or a MISS after a deadline miss on a busy box.
    const notHit = Object.entries(c.xCache).reduce((n, [k, v]) => (k === 'HIT' ? n : n + v), 0)
    if (id.startsWith('eftc') && notHit > Math.max(10, c.requests / 100))
      problems.push(`${key}: X-Cache ${mix(c.xCache)}`)
  }
  for (const [key, b] of r.bursts) {
    if (b.errors > 0) problems.push(`stampede ${key}: ${b.errors} errors`)
  }
  return problems
}

export function toMarkdown(r: PeerResults, outDir: string): string {
  const m = r.method
  const out: string[] = []
  out.push('## express-ft-cache vs peers (bench/peers.ts)')
  out.push('')
  out.push(
    `Code: ${r.revision}. Machine: ${machineLine(r.machine)}; load average before ${r.machine.loadAverage1mBefore}, after ` +
      `${r.machine.loadAverage1m}.${m.quick ? ' **Quick mode: a smoke run, not for publishing.**' : ''}`,
  )
  if (r.cells.size > 0) {
    out.push('')
    out.push(
      'Each contender is an Express 5 app in its own process serving the same routes (a constant string ' +
        `body); the load comes from another process: ${m.connections} keep-alive connections, closed loop ` +
        `(${wideNote(r.scenarios)}). ` +
        (m.mode === 'paired'
          ? `${m.rounds} rounds; in each, every contender runs ${m.measuredMs} ms (after ${m.warmupMs} ms of ` +
            'warm-up) on each scenario side by side with plain Express: both servers at the same time on ' +
            'the same CPU, each loaded by its own generator, so the scheduler splits that CPU between two ' +
            'busy processes and whatever slows the machine slows both alike. A ratio divides the requests ' +
            'the contender completed by those plain Express completed in the same window: the median over ' +
            'rounds (min–max); req/s are per server while sharing the CPU. A contender that waits on ' +
            'memcached leaves its share of the CPU to plain Express meanwhile, so the pairing does not ' +
            'flatter it. The caches hold '
          : `${m.rounds} rounds; in each, every contender runs ${m.measuredMs} ms (after ${m.warmupMs} ms of ` +
            'warm-up) on each scenario, one after the other, the order rotating every round. A ratio divides ' +
            "req/s by plain Express's in the same round: the median over rounds (min–max). The caches hold ") +
        `fresh entries (lifetime ${m.ttlSeconds} s). express-ft-cache reads a local memcached (one round ` +
        'trip per hit, shared by the concurrent requests for one URL; the many-URLs column shows the ' +
        'cost when it cannot be shared) at its defaults (debug headers on), built as npm ships it (dist/). ' +
        `NODE_ENV=production everywhere. ${m.pinning}`,
    )
    out.push('')
    out.push('### Throughput: req/s relative to plain Express')
    out.push('')
    const rows: string[][] = []
    for (const id of CONTENDERS) {
      const why = r.skipped[id]
      if (why !== undefined) {
        rows.push([`${LABELS[id]} (${why})`, ...r.scenarios.map(() => '–')])
        continue
      }
      rows.push([
        LABELS[id],
        ...r.scenarios.map((sc) => {
          const c = r.cells.get(`${sc.id}/${id}`)
          if (c === undefined) return 'n/a'
          return id === 'plain' ? `1.00× (${perSecond(median(c.rps))} req/s)` : spread(c.ratio)
        }),
      ])
    }
    out.push(table(['contender', ...r.scenarios.map((sc) => sc.label)], rows))
    out.push('')
    out.push('### CPU time per request (µs), and its ratio to plain Express')
    out.push('')
    out.push(
      'Less sensitive to other load on the machine than req/s: CPU time the server process used ' +
        'during the segments divided by the requests it served (median over rounds), plus, for ' +
        "express-ft-cache, memcached's CPU time per request (summed over all rounds; 10 ms resolution).",
    )
    out.push('')
    out.push(
      table(
        ['contender', ...r.scenarios.map((sc) => sc.label)],
        r.live.map((id) => [
          LABELS[id],
          ...r.scenarios.map((sc) => {
            const c = r.cells.get(`${sc.id}/${id}`)
            const plain = r.cells.get(`${sc.id}/plain`)
            if (c === undefined || plain === undefined || c.cpuUs.length === 0) return 'n/a'
            const server = median(c.cpuUs)
            const store = storePerRequest(c)
            const text =
              id.startsWith('eftc') && store !== undefined
                ? `${server.toFixed(0)} + ${store.toFixed(0)}`
                : server.toFixed(0)
            return `${text} (${(totalCpu(id, c) / totalCpu('plain', plain)).toFixed(2)}×)`
          }),
        ]),
      ),
    )
    out.push('')
    out.push('### Latency under that load: p50 / p99 (median over rounds)')
    out.push('')
    out.push(
      table(
        ['contender', ...r.scenarios.map((sc) => sc.label)],
        r.live.map((id) => [
          LABELS[id],
          ...r.scenarios.map((sc) => {
            const c = r.cells.get(`${sc.id}/${id}`)
            return c === undefined ? 'n/a' : `${ms(median(c.p50))} / ${ms(median(c.p99))}`
          }),
        ]),
      ),
    )
  }
  if (r.duels.length > 0) {
    out.push('')
    out.push('### Head to head: the hot tier against apicache and the ceiling')
    out.push('')
    out.push(
      'The same pairing, with the hot tier against each in-process peer instead of plain Express: ' +
        "its completed requests divided by the other's in the same window, median over rounds (min–max).",
    )
    out.push('')
    out.push(
      table(
        ['hot tier ÷', ...new Set(r.duels.map((d) => scenarioLabel(r, d.scenario)))],
        [...new Set(r.duels.map((d) => d.b))].map((b) => [
          LABELS[b],
          ...[...new Set(r.duels.map((d) => d.scenario))].map((sc) => {
            const d = r.duels.find((x) => x.b === b && x.scenario === sc)
            return d === undefined ? 'n/a' : spread(d.ratio)
          }),
        ]),
      ),
    )
  }
  if (r.bursts.size > 0) {
    const s = m.stampede
    out.push('')
    out.push(
      `### Stampede: origin calls per expiry (${s.requests} requests at once over ${s.processes} processes, ${m.originMs} ms origin)`,
    )
    out.push('')
    out.push(
      `${s.requests} connections opened first, then one request on each written in the same tick, spread ` +
        `evenly over ${s.processes} app processes (each hosting every contender; one memcached). Cold: a ` +
        'key never requested. Expired: every process served the key once, then its lifetime ' +
        `(${s.ttlSeconds} s for every cache here) passed. ${s.trials} trial(s): median (min–max). ` +
        'In-process caches hold one copy per process, so coalescing within a process is the best they can do.',
    )
    out.push('')
    out.push(
      table(
        [
          'contender',
          'cold key: origin calls',
          'p50 / p99',
          'expired key: origin calls',
          'p50 / p99',
        ],
        r.live.flatMap((id) => {
          const cold = r.bursts.get(`cold/${id}`)
          const expired = r.bursts.get(`expired/${id}`)
          if (cold === undefined || expired === undefined) return []
          return [
            [
              LABELS[id],
              countRange(cold.calls),
              `${ms(median(cold.p50))} / ${ms(median(cold.p99))}`,
              countRange(expired.calls),
              `${ms(median(expired.p50))} / ${ms(median(expired.p99))}`,
            ],
          ]
        }),
      ),
    )
    const eftcMix = STAMPEDE_KINDS.map((kind) => {
      const b = r.bursts.get(`${kind}/eftc`)
      return b === undefined ? '' : `${kind}: ${mix(b.xCache)}`
    }).filter((x) => x !== '')
    if (eftcMix.length > 0) {
      out.push('')
      out.push(`express-ft-cache X-Cache over the bursts: ${eftcMix.join('; ')}.`)
    }
  }
  const problems = checks(r)
  out.push('')
  out.push(
    `Checks: ${problems.length === 0 ? 'every response a 200, no load errors, every cache answered its segments from cache' : problems.join('; ')}. ` +
      `Written: ${outDir}/results.json, results.md, chart.svg. Run time: ${r.runSeconds} s.`,
  )
  return `${out.join('\n')}\n`
}

/** Names the scenarios that use their own connection count. */
function scenarioLabel(r: PeerResults, id: string): string {
  return r.scenarios.find((sc) => sc.id === id)?.label ?? id
}

function wideNote(scenarios: readonly Scenario[]): string {
  const wide = scenarios.filter((sc) => sc.connections !== undefined)
  return wide.length === 0
    ? 'every scenario'
    : `except ${wide.map((sc) => `"${sc.label}"`).join(', ')}, a spike of many clients; "10 KB, N URLs" ` +
        'spreads the requests over N cached URLs in a cycle'
}
