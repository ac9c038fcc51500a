/**
 * Stampede benchmark: N requests at once for one key, spread over 4 app processes sharing one
 * memcached, for a cold key (never rendered) and a stale key (rendered, then past its ttl).
 * Compares express-ft-cache with a naive get-then-set cache and with no cache, by origin calls and
 * latency (p99 ratio against no cache, in the same trial).
 *
 * The burst comes from the load child process (./lib/load-worker.ts): N connections are opened
 * first, then N requests written in the same tick. Trials are interleaved (every mode in every
 * trial, the order rotating); figures are medians over trials.
 *
 * Run: node --import tsx bench/stampede.ts   (BENCH_STAMPEDE_TRIALS, BENCH_STAMPEDE_N)
 */
import { type ChildProcess, fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { startMemcached } from '../test/helpers/memcached.js'
import { type JobResult, startLoadGenerator } from './lib/load.js'
import {
  envNumber,
  median,
  ms,
  progress,
  ratio,
  ratioRange,
  summarize,
  table,
} from './lib/stats.js'

const WORKER = fileURLToPath(new URL('./fixtures/stampede-worker.ts', import.meta.url))
const PROCESSES = 4
const N = envNumber('BENCH_STAMPEDE_N', 200)
const TRIALS = envNumber('BENCH_STAMPEDE_TRIALS', 4)
const ORIGIN_MS = 200
const POOL = 4
const MODES = ['none', 'naive', 'eftc'] as const
type Mode = (typeof MODES)[number]
const ORIGINS = ['free', 'pool'] as const
type Origin = (typeof ORIGINS)[number]
const KINDS = ['cold', 'stale'] as const
type Kind = (typeof KINDS)[number]

const MODE_LABEL: Record<Mode, string> = {
  none: 'no cache',
  naive: 'naive get-then-set cache',
  eftc: 'express-ft-cache',
}

interface Worker {
  readonly port: number
  readonly child: ChildProcess
}

async function startWorkers(servers: string, prefix: string): Promise<Worker[]> {
  return Promise.all(
    Array.from({ length: PROCESSES }, async (): Promise<Worker> => {
      const child = fork(WORKER, [], {
        execArgv: ['--import', 'tsx'],
        env: {
          ...process.env,
          BENCH_SERVERS: servers,
          BENCH_PREFIX: prefix,
          BENCH_ORIGIN_MS: String(ORIGIN_MS),
          BENCH_POOL: String(POOL),
          MEMCACHIER_SERVERS: '',
          MEMCACHE_USERNAME: '',
          MEMCACHIER_USERNAME: '',
        },
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      })
      process.once('exit', () => {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
      })
      const port = await new Promise<number>((resolve, reject) => {
        child.once('message', (m) => resolve((m as { port: number }).port))
        child.once('exit', (code) => reject(new Error(`stampede worker exited with ${code}`)))
      })
      return { port, child }
    }),
  )
}

async function stopWorkers(workers: readonly Worker[]): Promise<void> {
  await Promise.all(
    workers.map(async (w) => {
      if (w.child.exitCode !== null || w.child.signalCode !== null) return
      const exited = new Promise((resolve) => w.child.once('exit', resolve))
      w.child.disconnect()
      const timer = setTimeout(() => w.child.kill('SIGKILL'), 3000)
      await exited
      clearTimeout(timer)
    }),
  )
}

async function getJson<T>(port: number, path: string): Promise<T> {
  const r = await fetch(`http://127.0.0.1:${port}${path}`)
  return (await r.json()) as T
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

interface Cell {
  calls: number[]
  p50: number[]
  p99: number[]
  p99Ratio: number[]
  cache: Record<string, number>
  errors: number
}

async function main(): Promise<void> {
  const started = performance.now()
  const mc = await startMemcached()
  const runId = `s${Date.now().toString(36)}`
  const workers = await startWorkers(mc.address, runId)
  const ports = workers.map((w) => w.port)
  const load = await startLoadGenerator()
  const settle = () => Promise.all(ports.map((p) => getJson(p, '/__settled')))
  const calls = async (): Promise<Record<string, number>> => {
    const all: Record<string, number> = {}
    for (const c of await Promise.all(
      ports.map((p) => getJson<Record<string, number>>(p, '/__calls')),
    )) {
      for (const [k, v] of Object.entries(c)) all[k] = (all[k] ?? 0) + v
    }
    return all
  }
  const cells = new Map<string, Cell>()
  const cell = (origin: Origin, kind: Kind, mode: Mode): Cell => {
    const key = `${origin}/${kind}/${mode}`
    let c = cells.get(key)
    if (!c) {
      c = { calls: [], p50: [], p99: [], p99Ratio: [], cache: {}, errors: 0 }
      cells.set(key, c)
    }
    return c
  }

  try {
    // Warm every process and route (JIT, memcached connections) on keys not measured.
    progress('stampede: warm-up')
    for (const mode of MODES) {
      await load.run({ kind: 'burst', ports, n: 40, path: `/${mode}/free/warm-${mode}` })
      await load.run({ kind: 'burst', ports, n: 40, path: `/${mode}/free/warm-${mode}` })
    }
    await settle()

    for (let trial = 0; trial < TRIALS; trial++) {
      for (const origin of ORIGINS) {
        progress(`stampede: trial ${trial + 1}/${TRIALS}, origin ${origin}`)
        const order = MODES.map((_, i) => MODES[(i + trial) % MODES.length] as Mode)
        // Stale keys: render once, then let the ttl (1 s) pass while the cold bursts run.
        for (const mode of MODES)
          await getJson(ports[0]!, `/${mode}/${origin}/stale-${trial}`).catch(() => undefined)
        await settle()
        const primedAt = performance.now()
        const results = new Map<string, JobResult>()
        for (const kind of KINDS) {
          if (kind === 'stale') await sleep(Math.max(0, primedAt + 1300 - performance.now()))
          for (const mode of order) {
            const path = `/${mode}/${origin}/${kind}-${trial}`
            results.set(`${kind}/${mode}`, await load.run({ kind: 'burst', ports, n: N, path }))
            await settle()
          }
        }
        const counted = await calls()
        for (const kind of KINDS) {
          const none = summarize(results.get(`${kind}/none`)!.latencies)
          for (const mode of MODES) {
            const r = results.get(`${kind}/${mode}`)!
            const s = summarize(r.latencies)
            const c = cell(origin, kind, mode)
            // The stale key's priming render is not part of the burst.
            c.calls.push(
              (counted[`${mode}/${origin}/${kind}-${trial}`] ?? 0) - (kind === 'stale' ? 1 : 0),
            )
            c.p50.push(s.p50)
            c.p99.push(s.p99)
            c.p99Ratio.push(s.p99 / none.p99)
            c.errors += r.errors + (r.completed < N ? N - r.completed : 0)
            for (const [k, v] of Object.entries(r.cache)) c.cache[k] = (c.cache[k] ?? 0) + v
          }
        }
      }
    }

    const out: string[] = []
    out.push('## Stampede: one key, N requests at once over 4 processes (bench/stampede.ts)')
    out.push('')
    out.push(
      `N = ${N} requests written in the same tick over ${N} pre-opened connections, spread evenly over ` +
        `${PROCESSES} app processes sharing one memcached; origin ${ORIGIN_MS} ms. Cold key: never rendered. ` +
        'Stale key: rendered once, then 1.3 s later (ttl 1 s; express-ft-cache grace 60 s; the naive ' +
        `cache treats an expired value as a miss). ${TRIALS} trials, modes interleaved; medians over ` +
        'trials, origin calls with their range. p99 ratio: against no cache in the same trial (< 1 is faster). ' +
        'express-ft-cache at its defaults (lockTtl 10 s, waitTimeout 5 s, pollInterval 100 ms, timeout 100 ms).',
    )
    for (const origin of ORIGINS) {
      out.push('')
      out.push(
        origin === 'free'
          ? `### Origin with unlimited concurrency (every render takes ${ORIGIN_MS} ms)`
          : `### Origin limited to ${POOL} concurrent renders per process (a connection pool; queued renders wait)`,
      )
      out.push('')
      const rows: string[][] = []
      for (const kind of KINDS) {
        for (const mode of MODES) {
          const c = cell(origin, kind, mode)
          const lo = Math.min(...c.calls)
          const hi = Math.max(...c.calls)
          rows.push([
            `${kind} key`,
            MODE_LABEL[mode],
            `${median(c.calls)}${lo !== hi ? ` (${lo}–${hi})` : ''}`,
            ms(median(c.p50)),
            ms(median(c.p99)),
            mode === 'none' ? '1.00×' : ratioRange(c.p99Ratio, 2),
            mix(c.cache),
            String(c.errors),
          ])
        }
      }
      out.push(
        table(
          ['key', 'cache', 'origin calls', 'p50', 'p99', 'p99 ratio', 'X-Cache', 'errors'],
          rows,
        ),
      )
    }
    const eftcCold = cell('free', 'cold', 'eftc')
    const naiveCold = cell('free', 'cold', 'naive')
    out.push('')
    out.push(
      `Origin calls, express-ft-cache vs naive, cold key: ${median(eftcCold.calls)} vs ${median(naiveCold.calls)} ` +
        `(${ratio(median(eftcCold.calls) / median(naiveCold.calls), 3)}).`,
    )
    out.push(`Run time: ${((performance.now() - started) / 1000).toFixed(0)} s.`)
    process.stdout.write(`${out.join('\n')}\n`)
  } finally {
    await load.close()
    await stopWorkers(workers)
    await mc.stop()
  }
}

function mix(counts: Record<string, number>): string {
  const total = Object.values(counts).reduce((a, b) => a + b, 0)
  if (total === 0) return '-'
  return Object.entries(counts)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k} ${((100 * v) / total).toFixed(v === total ? 0 : 1)}%`)
    .join(', ')
}

main().catch((error: unknown) => {
  console.error(error)
  process.exitCode = 1
})
