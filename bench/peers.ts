/**
 * express-ft-cache against its peers: plain Express (the baseline), a bare Map middleware (the
 * ceiling of any in-process cache), express-ft-cache on memcached, the same with its in-process hot
 * tier, apicache and route-cache. Every contender is an Express 5 app in its own child process
 * serving the same routes (./lib/contenders.ts); the load comes from other child processes
 * (./lib/load-worker.ts: closed loop, keep-alive connections).
 *
 * Throughput: for each body size (1, 10, 100, 500 KB, entries fresh), 10 KB with 100 connections,
 * 10 KB spread over 1000 URLs, and a slow origin (100 ms): in each round, every contender runs side
 * by side with plain Express on the same CPU (two load generators), and its completed requests are
 * divided by plain Express's in that window; medians over rounds. Then the hot tier head to head
 * with apicache and with the ceiling (its targets' peers), the same way.
 * BENCH_PEERS_MODE=sequential runs the contenders one after the other instead (the order rotating
 * every round), each req/s divided by plain Express's in the same round.
 *
 * Stampede: 4 processes hosting every contender, one memcached; a burst of 200 requests spread over
 * the 4 processes at a cold key, then at an expired one (lifetimes of 1 s here); origin calls
 * counted per burst.
 *
 * Writes results.json, results.md and chart.svg to BENCH_OUT_DIR (default docs/bench; .tmp/bench with
 * BENCH_QUICK=1, a ~1 minute smoke run) and prints a Markdown summary on stdout.
 *
 * Run through `npm run bench` (it builds dist/ first): BENCH_QUICK, BENCH_PEERS_ROUNDS,
 * BENCH_PEERS_MS, BENCH_CONCURRENCY (default 8), BENCH_WIDE_CONNECTIONS (the spike column, default
 * 100), BENCH_MANY_URLS (default 1000), BENCH_PEERS_MODE=paired|sequential, BENCH_PIN=0 (no CPU
 * pinning), BENCH_STAMPEDE_TRIALS, BENCH_OUT_DIR, BENCH_PEERS_PARTS=throughput|stampede.
 */
import { spawnSync } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { startMemcached } from '../test/helpers/memcached.js'
import { describePinning, pin, pinning } from './lib/affinity.js'
import { chartFromResults } from './lib/chart.js'
import { CONTENDERS, type ContenderId, SIZES_KB, SLOW_KB } from './lib/contenders.js'
import { formatJson } from './lib/json.js'
import { type JobResult, type LoadGenerator, startLoadGenerator } from './lib/load.js'
import { describeMachine } from './lib/machine.js'
import {
  type Burst,
  type Cell,
  type Duel,
  type Method,
  newBurst,
  newCell,
  type PeerResults,
  recordBurst,
  recordSegment,
  type Scenario,
  type SegmentCpu,
  STAMPEDE_KINDS,
  toJson,
  toMarkdown,
  urlsOf,
} from './lib/peer-report.js'
import { processCpuUs } from './lib/proc.js'
import { type PeerServer, startServer } from './lib/servers.js'
import { envNumber, progress } from './lib/stats.js'

const QUICK = process.env.BENCH_QUICK === '1'
const ORIGIN_MS = 100
const PINNING = pinning()
/**
 * 'paired' (default): each contender runs at the same time as plain Express, both servers on the
 * same CPU, each with its own load generator, so whatever slows the machine slows both alike.
 * 'sequential': one contender at a time, the order rotating every round.
 */
const MODE = process.env.BENCH_PEERS_MODE === 'sequential' ? 'sequential' : 'paired'
const METHOD: Method = {
  quick: QUICK,
  mode: MODE,
  rounds: envNumber('BENCH_PEERS_ROUNDS', QUICK ? 2 : 7),
  measuredMs: envNumber('BENCH_PEERS_MS', QUICK ? 300 : 700),
  warmupMs: QUICK ? 100 : 200,
  connections: envNumber('BENCH_CONCURRENCY', 8),
  // Long enough that nothing expires during the run (the 1000-URL column would otherwise measure
  // regenerations): the throughput columns are about hits.
  ttlSeconds: 3600,
  originMs: ORIGIN_MS,
  pinning: describePinning(PINNING),
  stampede: {
    processes: 4,
    requests: 200,
    trials: envNumber('BENCH_STAMPEDE_TRIALS', QUICK ? 1 : 3),
    ttlSeconds: 1,
  },
}
/** Which parts run (for working on one of them): 'throughput', 'stampede' or both (default). */
const PARTS = (process.env.BENCH_PEERS_PARTS ?? 'throughput,stampede').split(',')
const OUT_REL = process.env.BENCH_OUT_DIR ?? (QUICK ? '.tmp/bench' : 'docs/bench')
const ROOT = fileURLToPath(new URL('..', import.meta.url))
const OUT_DIR = join(ROOT, OUT_REL)

/** The code measured: BENCH_REVISION when set (e.g. a tree exported without .git), else git's. */
function revision(): string {
  if (process.env.BENCH_REVISION) return process.env.BENCH_REVISION
  const git = (...args: string[]) => spawnSync('git', ['-C', ROOT, ...args], { encoding: 'utf8' })
  const head = git('rev-parse', '--short', 'HEAD')
  if (head.status !== 0) return 'unknown'
  const dirty = git('status', '--porcelain', 'src').stdout.trim() !== ''
  return `${head.stdout.trim()}${dirty ? ' (src/ modified)' : ''}`
}

/** The many-connections scenario: a traffic spike, where the store's round trips are shared. */
const WIDE = envNumber('BENCH_WIDE_CONNECTIONS', 100)
/** The many-URLs scenario: requests spread over this many cached URLs. */
const MANY = envNumber('BENCH_MANY_URLS', 1000)
const SCENARIOS: readonly Scenario[] = [
  ...SIZES_KB.map((kb) => ({ id: `${kb}k`, label: `${kb} KB`, path: `/b/${kb}` })),
  { id: '10k-wide', label: `10 KB, ${WIDE} connections`, path: '/b/10', connections: WIDE },
  // One URL lets concurrent hits share a read: this column shows the cost when they cannot.
  { id: '10k-many', label: `10 KB, ${MANY} URLs`, path: `/b/10?k={k${MANY}}`, urls: MANY },
  { id: 'slow', label: `slow origin (${ORIGIN_MS} ms, ${SLOW_KB} KB)`, path: '/slow' },
]

/** Head-to-head pairs (the hot tier against the in-process peers its targets name), and where. */
const DUELS: readonly (readonly [ContenderId, ContenderId])[] = [
  ['eftc-hot', 'apicache'],
  ['eftc-hot', 'ceiling'],
]
const DUEL_SCENARIOS: readonly string[] = ['10k', '10k-wide']

interface Context {
  readonly memcached: string
  readonly memcachedPid: number
  readonly runId: string
  readonly load: LoadGenerator
  /** The second load generator: plain Express's, in a paired segment. */
  readonly loadBaseline: LoadGenerator
  /** Filled by whichever part starts servers first. */
  readonly skipped: Partial<Record<ContenderId, string>>
  /** Every server started, stopped in the end whatever happens. */
  readonly started: Set<PeerServer>
}

async function start(
  ctx: Context,
  contenders: readonly ContenderId[],
  prefix: string,
  ttlS: number,
): Promise<PeerServer> {
  const s = await startServer({
    contenders,
    servers: ctx.memcached,
    prefix: `${ctx.runId}-${prefix}`,
    ttlS,
    originMs: ORIGIN_MS,
  })
  ctx.started.add(s)
  for (const [id, why] of Object.entries(s.skipped)) {
    if (ctx.skipped[id as ContenderId] === undefined) progress(`peers: ${id} ${why}`)
    ctx.skipped[id as ContenderId] = why
  }
  return s
}

async function stop(ctx: Context, servers: Iterable<PeerServer>): Promise<void> {
  await Promise.all(
    [...servers].map(async (s) => {
      await s.stop()
      ctx.started.delete(s)
    }),
  )
}

/** Every contender in its own process, on each scenario, round after round; then the duels. */
async function throughput(ctx: Context): Promise<{ cells: Map<string, Cell>; duels: Duel[] }> {
  progress(`peers: starting ${CONTENDERS.length} servers${QUICK ? ' (quick mode)' : ''}`)
  const all = await Promise.all(CONTENDERS.map((id) => start(ctx, [id], 'tp', METHOD.ttlSeconds)))
  const servers = new Map<ContenderId, PeerServer>()
  for (const [i, id] of CONTENDERS.entries()) {
    if (ctx.skipped[id] === undefined) servers.set(id, all[i]!)
  }
  await stop(
    ctx,
    all.filter((s) => ![...servers.values()].includes(s)),
  )
  const live = [...servers.keys()]
  if (PINNING !== undefined) for (const s of servers.values()) pin(s.pid, PINNING.server)

  // Fill every cache (the second request of each pair is a hit) before anything is measured.
  for (const s of servers.values()) {
    for (const sc of SCENARIOS) {
      const urls = urlsOf(sc)
      for (let i = 0; i < 2; i++) {
        for (let at = 0; at < urls.length; at += 16) {
          await Promise.all(
            urls
              .slice(at, at + 16)
              .map((u) => fetch(`http://127.0.0.1:${s.port}${u}`).then((r) => r.arrayBuffer())),
          )
        }
        await s.settled()
      }
    }
    await s.calls()
  }

  /** Runs `ids` at once, each with its own load generator; what each server did meanwhile. */
  const segment = async (
    ids: readonly ContenderId[],
    sc: Scenario,
    warmupMs: number,
    durationMs: number,
  ) => {
    const list = ids.map((id) => servers.get(id)!)
    const before = await Promise.all(list.map((s) => s.cpu()))
    const storeBefore = processCpuUs(ctx.memcachedPid)
    const results = await Promise.all(
      list.map((s, i) =>
        load(i === 0 ? ctx.load : ctx.loadBaseline, s.port, sc, warmupMs, durationMs),
      ),
    )
    const after = await Promise.all(list.map((s) => s.cpu()))
    const storeAfter = processCpuUs(ctx.memcachedPid)
    return Promise.all(
      list.map(async (s, i) => {
        const calls = await s.calls()
        const cpu: SegmentCpu = {
          serverUs: after[i]!.cpuUs - before[i]!.cpuUs,
          // Only express-ft-cache uses memcached: the store's time is the first server's.
          storeUs:
            i > 0 || storeBefore === undefined || storeAfter === undefined
              ? undefined
              : storeAfter - storeBefore,
          // The second /__cpu request is counted too.
          requests: after[i]!.served - before[i]!.served - 1,
        }
        const originCalls = urlsOf(sc).reduce((n, u) => n + (calls[u] ?? 0), 0)
        return { id: ids[i]!, r: results[i]!, originCalls, cpu }
      }),
    )
  }
  const record = (
    cells: Map<string, Cell>,
    sc: Scenario,
    done: Awaited<ReturnType<typeof segment>>,
  ) => {
    for (const { id, r, originCalls, cpu } of done) {
      const key = `${sc.id}/${id}`
      if (!cells.has(key)) cells.set(key, newCell())
      recordSegment(cells.get(key)!, r, originCalls, cpu)
    }
  }

  progress('peers: warm-up pass')
  for (const id of live) for (const sc of SCENARIOS) await segment([id], sc, 0, QUICK ? 100 : 300)

  const cells = new Map<string, Cell>()
  const others = live.filter((id) => id !== 'plain')
  for (let round = 0; round < METHOD.rounds; round++) {
    const order = (MODE === 'paired' ? others : live).map(
      (_, i, list) => list[(i + round) % list.length]!,
    )
    progress(`peers: throughput round ${round + 1}/${METHOD.rounds} (${order.join(' ')})`)
    for (const sc of SCENARIOS) {
      if (MODE === 'paired') {
        // Side by side with plain Express: the ratio of two counts made in the same window.
        for (const id of order) {
          const done = await segment([id, 'plain'], sc, METHOD.warmupMs, METHOD.measuredMs)
          record(cells, sc, done)
          const [mine, plain] = done.map((d) => d.r.completed)
          cells.get(`${sc.id}/${id}`)!.ratio.push(mine! / plain!)
        }
        cells.get(`${sc.id}/plain`)!.ratio.push(1)
        continue
      }
      for (const id of order) {
        record(cells, sc, await segment([id], sc, METHOD.warmupMs, METHOD.measuredMs))
      }
      const plain = cells.get(`${sc.id}/plain`)!.rps.at(-1)!
      for (const id of order) {
        const c = cells.get(`${sc.id}/${id}`)!
        c.ratio.push(c.rps.at(-1)! / plain)
      }
    }
  }
  // The hot tier's own targets are relative to its peers: measure those pairs directly.
  const duels: Duel[] = []
  const pairs = DUELS.filter(([a, b]) => servers.has(a) && servers.has(b))
  for (let round = 0; round < METHOD.rounds && pairs.length > 0; round++) {
    progress(`peers: head to head round ${round + 1}/${METHOD.rounds}`)
    for (const sc of SCENARIOS.filter((x) => DUEL_SCENARIOS.includes(x.id))) {
      for (const [a, b] of pairs) {
        const done = await segment([a, b], sc, METHOD.warmupMs, METHOD.measuredMs)
        let duel = duels.find((d) => d.scenario === sc.id && d.a === a && d.b === b)
        if (duel === undefined) {
          duel = { scenario: sc.id, a, b, ratio: [] }
          duels.push(duel)
        }
        duel.ratio.push(done[0]!.r.completed / done[1]!.r.completed)
      }
    }
  }
  await stop(ctx, servers.values())
  return { cells, duels }
}

function load(
  generator: LoadGenerator,
  port: number,
  sc: Scenario,
  warmupMs: number,
  durationMs: number,
): Promise<JobResult> {
  return generator.run({
    kind: 'load',
    port,
    method: 'GET',
    path: sc.path,
    concurrency: sc.connections ?? METHOD.connections,
    warmupMs,
    durationMs,
  })
}

/** Bursts at a cold and at an expired key, over processes that each host every contender. */
async function stampede(ctx: Context): Promise<Map<string, Burst>> {
  const s = METHOD.stampede
  progress(`peers: stampede, ${s.processes} processes`)
  const servers = await Promise.all(
    Array.from({ length: s.processes }, () => start(ctx, CONTENDERS, 'st', s.ttlSeconds)),
  )
  const live = CONTENDERS.filter((id) => ctx.skipped[id] === undefined)
  const ports = servers.map((x) => x.port)
  // Origin calls per URL, summed over the processes since the start.
  const tally: Record<string, number> = {}
  const collect = async (): Promise<void> => {
    await Promise.all(servers.map((x) => x.settled()))
    for (const calls of await Promise.all(servers.map((x) => x.calls()))) {
      for (const [k, v] of Object.entries(calls)) tally[k] = (tally[k] ?? 0) + v
    }
  }
  const burst = (path: string) => ctx.load.run({ kind: 'burst', ports, n: s.requests, path })

  // Warm every route and connection on a key that is not measured.
  for (const id of live) {
    for (let i = 0; i < 2; i++)
      await ctx.load.run({ kind: 'burst', ports, n: 40, path: `/${id}/slow?k=warm` })
  }
  await collect()

  const bursts = new Map<string, Burst>()
  for (const kind of STAMPEDE_KINDS) for (const id of live) bursts.set(`${kind}/${id}`, newBurst())
  for (let trial = 0; trial < s.trials; trial++) {
    progress(`peers: stampede trial ${trial + 1}/${s.trials}`)
    const order = live.map((_, i) => live[(i + trial) % live.length]!)
    const path = (kind: string, id: ContenderId): string => `/${id}/slow?k=${kind}-${trial}`
    const results = new Map<string, JobResult>()
    for (const id of order) {
      results.set(`cold/${id}`, await burst(path('cold', id)))
      await collect()
    }
    // Expired: every process served the key once (each in-process cache holds its own copy), then
    // the lifetime passed.
    const primed: Record<string, number> = {}
    for (const id of order) {
      for (const port of ports) {
        await fetch(`http://127.0.0.1:${port}${path('expired', id)}`).then((r) => r.arrayBuffer())
        await collect()
      }
      primed[id] = tally[path('expired', id)] ?? 0
    }
    await sleep(s.ttlSeconds * 1000 + 300)
    for (const id of order) {
      results.set(`expired/${id}`, await burst(path('expired', id)))
      await collect()
    }
    // A regeneration in the background may start after its burst was answered.
    await sleep(ORIGIN_MS * 3)
    await collect()
    for (const id of live) {
      recordBurst(
        bursts.get(`cold/${id}`)!,
        results.get(`cold/${id}`)!,
        tally[path('cold', id)] ?? 0,
        s.requests,
      )
      recordBurst(
        bursts.get(`expired/${id}`)!,
        results.get(`expired/${id}`)!,
        (tally[path('expired', id)] ?? 0) - (primed[id] ?? 0),
        s.requests,
      )
    }
  }
  await stop(ctx, servers)
  return bursts
}

async function main(): Promise<void> {
  const t0 = performance.now()
  const before = describeMachine()
  const mc = await startMemcached({ memoryMb: 256 })
  const ctx: Context = {
    memcached: mc.address,
    memcachedPid: mc.pid,
    runId: `p${Date.now().toString(36)}`,
    load: await startLoadGenerator(),
    loadBaseline: await startLoadGenerator(),
    skipped: {},
    started: new Set(),
  }
  if (PINNING !== undefined) {
    pin(mc.pid, PINNING.others)
    pin(ctx.load.pid, PINNING.others)
    pin(ctx.loadBaseline.pid, PINNING.others)
  }
  try {
    const { cells, duels } = PARTS.includes('throughput')
      ? await throughput(ctx)
      : { cells: new Map<string, Cell>(), duels: [] }
    const bursts = PARTS.includes('stampede') ? await stampede(ctx) : new Map<string, Burst>()
    const machine = { ...describeMachine(), loadAverage1mBefore: before.loadAverage1m }
    const results: PeerResults = {
      revision: revision(),
      machine,
      method: METHOD,
      runSeconds: Math.round((performance.now() - t0) / 1000),
      skipped: ctx.skipped,
      live: CONTENDERS.filter((id) => ctx.skipped[id] === undefined),
      scenarios: SCENARIOS,
      cells,
      duels,
      bursts,
    }
    mkdirSync(OUT_DIR, { recursive: true })
    const json = toJson(results)
    writeFileSync(join(OUT_DIR, 'results.json'), formatJson(json))
    const chart = chartFromResults(json)
    if (chart !== undefined) writeFileSync(join(OUT_DIR, 'chart.svg'), chart)
    const markdown = toMarkdown(results, OUT_REL)
    writeFileSync(join(OUT_DIR, 'results.md'), markdown)
    process.stdout.write(markdown)
  } finally {
    await ctx.load.close()
    await ctx.loadBaseline.close()
    await stop(ctx, ctx.started)
    await mc.stop()
  }
}

main().catch((error: unknown) => {
  console.error(error)
  process.exitCode = 1
})
