/**
 * Large values: what 10 KB, 100 KB, 500 KB and 1 MB values cost through MemcachedStore, as ratios
 * against the 10 KB case of the same round. Decision support for skipping bodies larger than one
 * memcached item instead of chunking them over several items.
 *
 * Measured per size, interleaved (sizes rotate every round):
 * - store get and set, one at a time (latency) and get with 8 in flight (throughput);
 * - a linear reference reader: the same binary-protocol GET on a raw socket that keeps the chunks in
 *   a list and concatenates once, against memjs, which re-allocates and copies its whole read
 *   buffer on every chunk (lib/memjs/server.js appendToBuffer): O(n²) in the chunk count;
 * - head-of-line blocking: 10 KB gets on the same store while gets of the size run beside them
 *   (one socket per server: a small reply waits behind a large one);
 * - HTTP: a cache HIT of that size served by Express (load from a child process, 4 connections),
 *   and the same bytes sent without a cache, as the floor.
 *
 * Run: node --import tsx bench/large.ts   (BENCH_LARGE_ROUNDS)
 */
import type { Server } from 'node:http'
import { connect, type Socket } from 'node:net'
import express from 'express'
import { pino } from 'pino'
import { startMemcached } from '../test/helpers/memcached.js'
import { MemcachedStore, responseCache } from './lib/library.js'
import { type LoadGenerator, startLoadGenerator } from './lib/load.js'
import {
  bytes,
  envNumber,
  median,
  ms,
  perSecond,
  progress,
  ratioRange,
  summarize,
  table,
} from './lib/stats.js'

/** Deadline misses on large values are what this measures: logged, they would bury the progress lines. */
const quiet = pino({ level: 'silent' })

const ROUNDS = envNumber('BENCH_LARGE_ROUNDS', 3)
const SIZES = [10_000, 100_000, 500_000, 1_000_000] as const
const OP_MS = 500
const HTTP_MS = 1000
const HTTP_CONCURRENCY = 4

interface Loop {
  readonly opsPerSec: number
  readonly p50: number
  readonly p99: number
}

/** Runs `op` with `concurrency` callers back to back for `durationMs`. */
async function loop(
  concurrency: number,
  durationMs: number,
  op: () => Promise<unknown>,
): Promise<Loop> {
  const latencies: number[] = []
  const start = performance.now()
  const stopAt = start + durationMs
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < stopAt) {
        const t = performance.now()
        await op()
        latencies.push(performance.now() - t)
      }
    }),
  )
  const s = summarize(latencies)
  return {
    opsPerSec: latencies.length / ((performance.now() - start) / 1000),
    p50: s.p50,
    p99: s.p99,
  }
}

/**
 * The linear reference: binary-protocol GET on a raw socket, one request at a time; chunks are
 * kept in a list and concatenated once. Also records how many chunks each reply arrived in.
 */
class ReferenceReader {
  private socket!: Socket
  private chunks: Buffer[] = []
  private received = 0
  private need = -1
  private done: ((value: Buffer) => void) | undefined
  readonly chunkCounts: number[] = []
  readonly chunkSizes: number[][] = []

  async open(port: number): Promise<void> {
    this.socket = connect({ host: '127.0.0.1', port })
    this.socket.setNoDelay(true)
    await new Promise<void>((resolve, reject) => {
      this.socket.once('connect', resolve)
      this.socket.once('error', reject)
    })
    this.socket.on('data', (chunk: Buffer) => this.data(chunk))
  }

  get(key: string): Promise<Buffer> {
    const frame = Buffer.alloc(24 + key.length)
    frame.writeUInt8(0x80, 0)
    frame.writeUInt8(0x00, 1) // GET
    frame.writeUInt16BE(key.length, 2)
    frame.writeUInt32BE(key.length, 8)
    frame.write(key, 24, 'latin1')
    this.chunks = []
    this.received = 0
    this.need = -1
    return new Promise((resolve) => {
      this.done = resolve
      this.socket.write(frame)
    })
  }

  private data(chunk: Buffer): void {
    this.chunks.push(chunk)
    this.received += chunk.length
    if (this.need < 0 && this.received >= 24) {
      const head = this.chunks.length === 1 ? chunk : Buffer.concat(this.chunks)
      this.need = 24 + head.readUInt32BE(8)
    }
    if (this.need >= 0 && this.received >= this.need) {
      const all = Buffer.concat(this.chunks, this.received)
      this.chunkCounts.push(this.chunks.length)
      this.chunkSizes.push(this.chunks.map((c) => c.length))
      const extras = all.readUInt8(4)
      const keyLength = all.readUInt16BE(2)
      this.done?.(all.subarray(24 + extras + keyLength, this.need))
    }
  }

  close(): void {
    this.socket.destroy()
  }
}

/** Bytes memjs copies per byte received, for replies that arrived in these chunk sizes. */
function memjsCopyFactor(chunkSizes: readonly number[]): number {
  let total = 0
  let copied = 0
  for (const c of chunkSizes) {
    total += c
    copied += total // appendToBuffer allocates old + new and copies both
  }
  return copied / total
}

interface SizeRound {
  getC1: Loop
  setC1: Loop
  getC8: Loop
  reference: Loop
  smallBeside: Loop
  hit: { rps: number; p50: number; p99: number; cache: Record<string, number> }
  floor: { rps: number; p50: number; p99: number }
}

async function main(): Promise<void> {
  const started = performance.now()
  const mc = await startMemcached({ memoryMb: 256 })
  // Generous deadline for the raw store measurements: the point is the cost, not the timeout.
  const store = new MemcachedStore({ servers: mc.address, timeout: '5s' })
  // The HTTP cache runs at its defaults (timeout 100 ms, maxBodySize 1 MiB).
  const cache = responseCache({
    store: new MemcachedStore({ servers: mc.address }),
    prefix: 'large',
    ttl: '1h',
    logger: quiet,
  })
  const reader = new ReferenceReader()
  await reader.open(mc.port)

  const values = new Map<number, Buffer>()
  for (const size of SIZES) {
    const v = Buffer.alloc(size)
    for (let i = 0; i < size; i++) v[i] = 97 + (i % 26)
    values.set(size, v)
    await store.set(`v${size}`, v, 3600)
  }

  const app = express()
  app.get('/hit/:size', cache.route(), (req, res) => {
    res.type('html').send(values.get(Number(req.params.size)))
  })
  app.get('/floor/:size', (req, res) => {
    res.type('html').send(values.get(Number(req.params.size)))
  })
  const server: Server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s))
  })
  const address = server.address()
  const port = typeof address === 'object' && address ? address.port : 0
  const load: LoadGenerator = await startLoadGenerator()
  const http = async (path: string) => {
    const r = await load.run({
      kind: 'load',
      port,
      method: 'GET',
      path,
      concurrency: HTTP_CONCURRENCY,
      warmupMs: 200,
      durationMs: HTTP_MS,
    })
    const s = summarize(r.latencies)
    return {
      rps: r.completed / (r.windowMs / 1000),
      p50: s.p50,
      p99: s.p99,
      cache: r.cache,
      errors: r.errors,
    }
  }

  try {
    for (const size of SIZES) {
      await fetch(`http://127.0.0.1:${port}/hit/${size}`).then((r) => r.arrayBuffer())
    }
    await cache.settled()
    progress('large: warm-up')
    for (const size of SIZES) {
      await loop(1, 150, () => store.get(`v${size}`))
      await loop(1, 150, () => reader.get(`v${size}`))
      await load.run({
        kind: 'load',
        port,
        method: 'GET',
        path: `/hit/${size}`,
        concurrency: 2,
        warmupMs: 0,
        durationMs: 200,
      })
    }
    reader.chunkCounts.length = 0
    reader.chunkSizes.length = 0

    const results = new Map<number, SizeRound[]>()
    for (const size of SIZES) results.set(size, [])
    const chunks = new Map<number, number[][]>()
    let errors = 0
    for (let round = 0; round < ROUNDS; round++) {
      const order = SIZES.map((_, i) => SIZES[(i + round) % SIZES.length] as number)
      progress(`large: round ${round + 1}/${ROUNDS} (${order.map(bytes).join(' ')})`)
      for (const size of order) {
        const key = `v${size}`
        const value = values.get(size)!
        const getC1 = await loop(1, OP_MS, () => store.get(key))
        const setC1 = await loop(1, OP_MS, () => store.set(`w${size}`, value, 3600))
        const getC8 = await loop(8, OP_MS, () => store.get(key))
        const before = reader.chunkSizes.length
        const reference = await loop(1, OP_MS, () => reader.get(key))
        chunks.set(size, [...(chunks.get(size) ?? []), ...reader.chunkSizes.slice(before)])
        // 10 KB gets while gets of this size run on the same store (same socket).
        let stop = false
        const big = (async () => {
          while (!stop) await store.get(key)
        })()
        const smallBeside = await loop(1, OP_MS, () => store.get('v10000'))
        stop = true
        await big
        const hit = await http(`/hit/${size}`)
        const floor = await http(`/floor/${size}`)
        errors += hit.errors + floor.errors
        results.get(size)!.push({ getC1, setC1, getC8, reference, smallBeside, hit, floor })
      }
    }

    // ---- report ----
    const base = results.get(10_000)!
    const perRound = (size: number, f: (r: SizeRound) => number, invert = false): string => {
      const rs = results.get(size)!
      return ratioRange(rs.map((r, i) => (invert ? f(base[i]!) / f(r) : f(r) / f(base[i]!))))
    }
    const med = (size: number, f: (r: SizeRound) => number): number =>
      median(results.get(size)!.map(f))

    const out: string[] = []
    out.push('## Large values through MemcachedStore (bench/large.ts)')
    out.push('')
    out.push(
      `memcached -I 1m (default), one MemcachedStore (one socket). ${ROUNDS} rounds, sizes interleaved; ` +
        `${OP_MS} ms per store measurement, ${HTTP_MS} ms per HTTP one (${HTTP_CONCURRENCY} connections). Ratios ` +
        'are against the 10 KB case of the same round (median, min–max). 1 MB = 1,000,000 bytes, which fits ' +
        'one default item (limit 1,048,576 − 59 − key − 64 bytes, minus the entry header for HTTP).',
    )
    out.push('')
    out.push('### Store operations')
    out.push('')
    out.push(
      table(
        [
          'size',
          'get ops/s (1 in flight)',
          'get ratio',
          'get p50 / p99',
          'get MB/s (ratio)',
          'set ops/s',
          'set ratio',
          'get ops/s (8 in flight)',
          'ratio',
          'get p99 (8 in flight)',
        ],
        SIZES.map((size) => [
          bytes(size),
          perSecond(med(size, (r) => r.getC1.opsPerSec)),
          perRound(size, (r) => r.getC1.opsPerSec),
          `${ms(med(size, (r) => r.getC1.p50))} / ${ms(med(size, (r) => r.getC1.p99))}`,
          `${Math.round(med(size, (r) => (r.getC1.opsPerSec * size) / 1e6))} (${ratioRange(
            results
              .get(size)!
              .map((r, i) => (r.getC1.opsPerSec * size) / (base[i]!.getC1.opsPerSec * 10_000)),
          )})`,
          perSecond(med(size, (r) => r.setC1.opsPerSec)),
          perRound(size, (r) => r.setC1.opsPerSec),
          perSecond(med(size, (r) => r.getC8.opsPerSec)),
          perRound(size, (r) => r.getC8.opsPerSec),
          ms(med(size, (r) => r.getC8.p99)),
        ]),
      ),
    )
    out.push('')
    out.push('### memjs read path vs a linear reader (same GET, same server, 1 in flight)')
    out.push('')
    out.push(
      table(
        [
          'size',
          'reference get ops/s',
          'MemcachedStore get time ÷ reference',
          'socket chunks per reply',
          'memjs bytes copied per byte (computed)',
        ],
        SIZES.map((size) => {
          const seen = chunks.get(size) ?? []
          return [
            bytes(size),
            perSecond(med(size, (r) => r.reference.opsPerSec)),
            ratioRange(results.get(size)!.map((r) => r.reference.opsPerSec / r.getC1.opsPerSec)),
            seen.length ? String(median(seen.map((c) => c.length))) : 'n/a',
            seen.length ? `${median(seen.map(memjsCopyFactor)).toFixed(1)}×` : 'n/a',
          ]
        }),
      ),
    )
    out.push('')
    out.push('### Head-of-line: a 10 KB get while gets of the size run on the same socket')
    out.push('')
    out.push(
      table(
        [
          'size running beside',
          '10 KB get p50',
          'p99',
          'p50 ratio',
          'p99 ratio',
          '10 KB gets/s ratio',
        ],
        SIZES.map((size) => [
          bytes(size),
          ms(med(size, (r) => r.smallBeside.p50)),
          ms(med(size, (r) => r.smallBeside.p99)),
          perRound(size, (r) => r.smallBeside.p50),
          perRound(size, (r) => r.smallBeside.p99),
          perRound(size, (r) => r.smallBeside.opsPerSec),
        ]),
      ),
    )
    out.push('')
    out.push('### HTTP: serving a cache HIT of the size (Express, MemcachedStore at its defaults)')
    out.push('')
    out.push(
      table(
        [
          'size',
          'HIT req/s',
          'req/s ratio',
          'HIT p50',
          'HIT p99',
          'p99 ratio',
          'no-cache req/s (same bytes)',
          'HIT time ÷ no-cache time',
          'X-Cache',
        ],
        SIZES.map((size) => {
          const cacheMix: Record<string, number> = {}
          for (const r of results.get(size)!)
            for (const [k, v] of Object.entries(r.hit.cache)) cacheMix[k] = (cacheMix[k] ?? 0) + v
          const total = Object.values(cacheMix).reduce((a, b) => a + b, 0)
          return [
            bytes(size),
            perSecond(med(size, (r) => r.hit.rps)),
            perRound(size, (r) => r.hit.rps),
            ms(med(size, (r) => r.hit.p50)),
            ms(med(size, (r) => r.hit.p99)),
            perRound(size, (r) => r.hit.p99),
            perSecond(med(size, (r) => r.floor.rps)),
            ratioRange(results.get(size)!.map((r) => r.floor.rps / r.hit.rps)),
            Object.entries(cacheMix)
              .map(([k, v]) => `${k} ${((100 * v) / total).toFixed(v === total ? 0 : 1)}%`)
              .join(', '),
          ]
        }),
      ),
    )
    out.push('')
    out.push(
      `Load errors: ${errors}. Run time: ${((performance.now() - started) / 1000).toFixed(0)} s.`,
    )
    process.stdout.write(`${out.join('\n')}\n`)
  } finally {
    reader.close()
    await load.close()
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
    await cache.close()
    await store.close()
    await mc.stop()
  }
}

main().catch((error: unknown) => {
  console.error(error)
  process.exitCode = 1
})
