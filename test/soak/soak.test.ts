/**
 * Soak: several app processes on three memcached servers, mixed traffic over ~230 resources with
 * 1-3 s freshness (entries go stale and expire constantly), and a fault every 10 s (a server paused
 * for 2 s, a server killed and restarted, or nothing). Every response is verified against its URL;
 * asserts zero wrong bodies, zero 5xx, bounded latency, and bounded memory and file-descriptor growth
 * in the app processes. Prints one summary line.
 *
 * Not part of `npm test`: run `node scripts/soak.mjs` (SOAK_SECONDS, default 120; SOAK_WORKERS 2-4,
 * default 3; SOAK_SEED for another traffic mix).
 */
import assert from 'node:assert/strict'
import { type ChildProcess, fork } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { workerEnv } from '../helpers/fleet.js'
import { type MemcachedProcess, startMemcached } from '../helpers/memcached.js'
import { etagOf, sha256, soakBody } from './body.js'

const clamp = (n: number, lo: number, hi: number, fallback: number): number =>
  Number.isFinite(n) ? Math.min(hi, Math.max(lo, Math.round(n))) : fallback
const SECONDS = clamp(Number(process.env.SOAK_SECONDS ?? 120), 10, 3600, 120)
const WORKERS = clamp(Number(process.env.SOAK_WORKERS ?? 3), 2, 4, 3)
const SEED = clamp(Number(process.env.SOAK_SEED ?? 1), 0, 2 ** 31, 1)
const CONCURRENCY = 24
const FIRST_FAULT_MS = 5000
const FAULT_EVERY_MS = 10_000
const PAUSE_MS = 2000
/** When memory and descriptors are first sampled: after warm-up, before the first fault. */
const BASELINE_AT_MS = 3000
/**
 * waitTimeout (2 s) + a last poll round and lock attempt (2 x 100 ms deadlines) + origin (< 30 ms)
 * + generous slack for a loaded machine.
 */
const BOUND_MS = 2000 + 200 + 30 + 1500
const RSS_GROWTH_MB = 150
const HEAP_GROWTH_MB = 40
const FD_GROWTH = 40

const WORKER = fileURLToPath(new URL('./worker.ts', import.meta.url))

/** mulberry32: a small seeded PRNG, so a failing mix can be replayed with SOAK_SEED. */
function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

interface Planned {
  method: 'GET' | 'HEAD' | 'POST'
  path: string
  headers: Record<string, string>
  /** Checks the response; returns a reason when it is wrong. */
  check(status: number, body: string, headers: Headers): string | undefined
}

const LANGS = ['en', 'fr', 'de']

function plan(random: () => number): Planned {
  const pick = random()
  const n = (k: number): number => Math.floor(random() * k)
  const full = (name: string) => (status: number, body: string, headers: Headers) => {
    if (status !== 200) return `status ${status}`
    if (body !== soakBody(name)) return 'wrong body'
    if (headers.get('x-body-sum') !== sha256(body)) return 'x-body-sum does not match the body'
    return undefined
  }
  if (pick < 0.6) {
    const path = `/r/${n(140)}`
    return { method: 'GET', path, headers: {}, check: full(path) }
  }
  if (pick < 0.72) {
    const path = `/v/${n(20)}`
    const lang = LANGS[n(LANGS.length)]!
    return {
      method: 'GET',
      path,
      headers: { 'accept-language': lang },
      check: full(`${path}|${lang}`),
    }
  }
  if (pick < 0.77) {
    const path = `/p/${n(20)}`
    return { method: 'GET', path, headers: {}, check: full(path) }
  }
  if (pick < 0.85) {
    const path = `/r/${n(140)}`
    return {
      method: 'HEAD',
      path,
      headers: {},
      check: (status, body, headers) => {
        if (status !== 200) return `HEAD status ${status}`
        if (body !== '') return 'HEAD with a body'
        const length = headers.get('content-length')
        return length === String(Buffer.byteLength(soakBody(path)))
          ? undefined
          : `HEAD content-length ${length}`
      },
    }
  }
  if (pick < 0.95) {
    const path = `/r/${n(140)}`
    const expected = soakBody(path)
    return {
      method: 'GET',
      path,
      headers: { 'if-none-match': etagOf(expected) },
      check: (status, body) =>
        status === 304 || (status === 200 && body === expected)
          ? undefined
          : `conditional: status ${status}`,
    }
  }
  if (pick < 0.97) {
    const path = `/missing/${n(10)}`
    return {
      method: 'GET',
      path,
      headers: {},
      check: (status) => (status === 404 ? undefined : `status ${status}`),
    }
  }
  const path = `/r/${n(140)}`
  return {
    method: 'POST',
    path,
    headers: {},
    check: (status, body) =>
      status === 200 && body === `posted ${path}` ? undefined : `POST: ${status}`,
  }
}

interface AppProcess {
  readonly child: ChildProcess
  readonly port: number
  readonly pid: number
}

async function startWorker(env: Record<string, string>): Promise<AppProcess> {
  const child = fork(WORKER, [], {
    execArgv: ['--import', 'tsx', '--expose-gc'],
    env: workerEnv(env),
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  const port = await new Promise<number>((resolve, reject) => {
    child.once('message', (m) => resolve((m as { port: number }).port))
    child.once('exit', (code) => reject(new Error(`soak worker exited with ${code}`)))
  })
  return { child, port, pid: child.pid ?? -1 }
}

interface Sample {
  rssMb: number
  heapMb: number
  fds: number
}

async function sample(w: AppProcess): Promise<Sample> {
  const r = await fetch(`http://127.0.0.1:${w.port}/__stats`)
  const stats = (await r.json()) as { heapUsed: number }
  const status = readFileSync(`/proc/${w.pid}/status`, 'utf8')
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? Number.NaN)
  return {
    rssMb: Math.round(rssKb / 1024),
    heapMb: Math.round(stats.heapUsed / 1024 / 1024),
    fds: readdirSync(`/proc/${w.pid}/fd`).length,
  }
}

it(`soak: ${SECONDS} s, ${WORKERS} app processes, 3 memcached servers, faults every 10 s`, {
  timeout: (SECONDS + 120) * 1000,
}, async (t) => {
  const mcs: MemcachedProcess[] = await Promise.all([0, 1, 2].map(() => startMemcached()))
  t.after(() => Promise.all(mcs.map((m) => m.resume().then(() => m.stop()))))
  const workers = await Promise.all(
    Array.from({ length: WORKERS }, () =>
      startWorker({
        EFTC_SERVERS: mcs.map((m) => m.address).join(','),
        EFTC_PREFIX: `soak${process.pid}`,
      }),
    ),
  )
  const crashed: string[] = []
  for (const w of workers) {
    w.child.once('exit', (code, signal) =>
      crashed.push(`worker ${w.pid} exited (${code ?? signal})`),
    )
  }
  t.after(async () => {
    await Promise.all(
      workers.map(async (w) => {
        if (w.child.exitCode !== null || w.child.signalCode !== null) return
        const exited = new Promise((r) => w.child.once('exit', r))
        w.child.kill('SIGKILL')
        await exited
      }),
    )
  })

  const started = Date.now()
  const endAt = started + SECONDS * 1000
  const random = prng(SEED)
  const stats = {
    requests: 0,
    wrong: 0,
    errors5xx: 0,
    failed: 0,
    slow: 0,
    maxMs: 0,
    outcomes: {} as Record<string, number>,
    samples: [] as string[],
  }
  let counter = 0

  const lane = async (): Promise<void> => {
    while (Date.now() < endAt) {
      const p = plan(random)
      const w = workers[counter++ % workers.length]!
      const t0 = performance.now()
      try {
        const r = await fetch(`http://127.0.0.1:${w.port}${p.path}`, {
          method: p.method,
          headers: p.headers,
          signal: AbortSignal.timeout(15_000),
        })
        const body = await r.text()
        const ms = performance.now() - t0
        stats.requests++
        stats.maxMs = Math.max(stats.maxMs, ms)
        if (ms > BOUND_MS) stats.slow++
        const outcome = r.headers.get('x-cache') ?? 'none'
        stats.outcomes[outcome] = (stats.outcomes[outcome] ?? 0) + 1
        if (r.status >= 500) {
          stats.errors5xx++
          if (stats.samples.length < 10) stats.samples.push(`${p.method} ${p.path}: ${r.status}`)
          continue
        }
        const problem = p.check(r.status, body, r.headers)
        if (problem !== undefined) {
          stats.wrong++
          if (stats.samples.length < 10)
            stats.samples.push(`${p.method} ${p.path} (${outcome}): ${problem}`)
        }
      } catch (error) {
        stats.failed++
        if (stats.samples.length < 10) stats.samples.push(`${p.method} ${p.path}: ${String(error)}`)
      }
    }
  }

  const faults: string[] = []
  const faulting = (async () => {
    const kinds = ['pause', 'restart', 'none'] as const
    for (let i = 0; ; i++) {
      const at = started + FIRST_FAULT_MS + i * FAULT_EVERY_MS
      // No fault that could not be over (and recovered from) before the end.
      if (at + PAUSE_MS + 3000 > endAt) return
      await sleep(at - Date.now())
      const kind = kinds[i % kinds.length]!
      // Every kind of fault meets every server over nine faults.
      const index = (i + Math.floor(i / kinds.length)) % mcs.length
      const mc = mcs[index]!
      faults.push(`${kind}#${index}`)
      if (kind === 'pause') {
        await mc.pause()
        await sleep(PAUSE_MS)
        await mc.resume()
      } else if (kind === 'restart') {
        await mc.restart()
      }
    }
  })()

  const baseline = (async () => {
    await sleep(BASELINE_AT_MS)
    return Promise.all(workers.map(sample))
  })()
  baseline.catch(() => {}) // awaited (and re-thrown) below

  await Promise.all([...Array.from({ length: CONCURRENCY }, lane), faulting])
  const before = await baseline
  await sleep(1000)
  // Caching works after the last fault: a key asked twice in a row is a hit the second time.
  let finalHits = 0
  for (let i = 0; i < 20; i++) {
    const url = `http://127.0.0.1:${workers[i % workers.length]!.port}/r/${i}`
    await (await fetch(url)).text()
    const r = await fetch(url)
    await r.text()
    if (r.headers.get('x-cache') === 'HIT') finalHits++
  }
  const end = await Promise.all(workers.map(sample))

  const pct = (k: string): string =>
    `${k} ${Math.round((100 * (stats.outcomes[k] ?? 0)) / Math.max(1, stats.requests))}%`
  const memory = workers.map((_, i) => `${before[i]!.rssMb}->${end[i]!.rssMb}`).join(' ')
  const heap = workers.map((_, i) => `${before[i]!.heapMb}->${end[i]!.heapMb}`).join(' ')
  const fds = workers.map((_, i) => `${before[i]!.fds}->${end[i]!.fds}`).join(' ')
  const summary =
    `SOAK ${SECONDS}s seed ${SEED}: ${WORKERS} app processes, 3 memcached; ${stats.requests} requests ` +
    `(${['HIT', 'STALE', 'MISS', 'BYPASS', 'none'].map(pct).join(', ')}); faults [${faults.join(' ')}]; ` +
    `wrong ${stats.wrong}, 5xx ${stats.errors5xx}, failed ${stats.failed}, over ${BOUND_MS} ms ${stats.slow}, ` +
    `max ${Math.round(stats.maxMs)} ms; final hits ${finalHits}/20; RSS MB ${memory}; heap MB ${heap}; fds ${fds}`
  t.diagnostic(summary)

  assert.deepEqual(crashed, [], 'no app process died')
  assert.deepEqual(
    { wrong: stats.wrong, errors5xx: stats.errors5xx, failed: stats.failed },
    { wrong: 0, errors5xx: 0, failed: 0 },
    `every response verified against its URL: ${stats.samples.join('; ')}`,
  )
  assert.equal(stats.slow, 0, `no request over ${BOUND_MS} ms (max ${Math.round(stats.maxMs)} ms)`)
  assert.ok(stats.requests > SECONDS * 50, `enough traffic (${stats.requests})`)
  assert.ok(finalHits >= 10, `caching works after the faults (${finalHits}/20)`)
  for (const [i, w] of workers.entries()) {
    const b = before[i]!
    const e = end[i]!
    assert.ok(e.rssMb - b.rssMb < RSS_GROWTH_MB, `worker ${w.pid}: RSS ${b.rssMb} -> ${e.rssMb} MB`)
    assert.ok(
      e.heapMb - b.heapMb < HEAP_GROWTH_MB,
      `worker ${w.pid}: heap ${b.heapMb} -> ${e.heapMb} MB`,
    )
    assert.ok(e.fds - b.fds < FD_GROWTH, `worker ${w.pid}: fds ${b.fds} -> ${e.fds}`)
  }
})
