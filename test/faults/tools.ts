/**
 * Fault tools shared by the app-level fault tests: bounds and assertions, connection-slot holders, a
 * true blackhole, an eviction watcher, file-descriptor counts, and an escape check. Not a test file.
 */
import assert from 'node:assert/strict'
import { readdirSync } from 'node:fs'
import { createConnection, type Socket } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { primaryKey } from '../../src/key.js'
import type { MemcachedProcess } from '../helpers/memcached.js'
import {
  mergeReports,
  runTraffic,
  type TrafficApp,
  type TrafficOptions,
  type TrafficReport,
} from '../helpers/traffic.js'

export const ORIGIN_MS = 20
export const DEADLINE_MS = 100
/** Generous: a loaded 2-core runner is noisy. The point is "bounded", not "fast". */
export const SLACK_MS = 2500
export const BOUND_MS = ORIGIN_MS + DEADLINE_MS + SLACK_MS

/** Every request answered with its own body, no 5xx, none slower than `bound`. */
export function assertClean(r: TrafficReport, what: string, bound = BOUND_MS): void {
  assert.deepEqual(
    { wrong: r.wrong, errors5xx: r.errors5xx, failed: r.failed },
    { wrong: 0, errors5xx: 0, failed: 0 },
    `${what}: every request answered with its own body, no 5xx (${JSON.stringify(r.outcomes)}) ${r.problems.join('; ')}`,
  )
  assert.ok(
    r.maxMs < bound,
    `${what}: slowest request ${Math.round(r.maxMs)} ms (bound ${bound} ms)`,
  )
}

/** The primary key the app stores `path` under (host 127.0.0.1, no query, no custom key part). */
export function keyOf(prefix: string, path: string, custom?: string): string {
  return primaryKey(prefix, { host: '127.0.0.1', path, query: '', custom })
}

/** Polls `check` every `everyMs` until it is true; throws after `timeoutMs`. */
export async function until(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
  everyMs = 50,
): Promise<number> {
  const started = Date.now()
  while (!(await check())) {
    if (Date.now() - started > timeoutMs)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(everyMs)
  }
  return Date.now() - started
}

/** Open file descriptors of this process (Linux; -1 elsewhere). */
export function openFds(pid: number | 'self' = 'self'): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length
  } catch {
    return -1
  }
}

export interface SlotHolder {
  /** Idle connections that were accepted and hold a slot. */
  readonly held: number
  /** Connections memcached turned away ("ERROR Too many open connections"). */
  readonly refused: number
  release(): void
}

/**
 * Opens `count` idle connections to memcached started with a small `-c`, keeping every one it can;
 * resolves once memcached has turned at least one away, i.e. every slot is held.
 */
export async function holdConnectionSlots(port: number, count: number): Promise<SlotHolder> {
  const sockets: Socket[] = []
  let held = 0
  let refused = 0
  for (let i = 0; i < count; i++) {
    const socket = createConnection({ host: '127.0.0.1', port })
    socket.on('error', () => {})
    socket.once('connect', () => held++)
    socket.on('data', (data) => {
      if (String(data).includes('Too many open connections')) refused++
    })
    sockets.push(socket)
  }
  const holder: SlotHolder = {
    get held() {
      return held
    },
    get refused() {
      return refused
    },
    release() {
      for (const s of sockets) s.destroy()
    },
  }
  try {
    await until('memcached to refuse a connection (all slots held)', () => refused > 0, 5000, 10)
  } catch (error) {
    holder.release()
    throw error
  }
  return holder
}

export interface Blackhole {
  /** Ends the blackhole: SIGCONT, and frees the accept queue. */
  heal(): Promise<void>
}

/**
 * Turns a memcached started with `-b 1` (listen backlog 1) into a true blackhole: SIGSTOP, then fill
 * its accept queue with idle connections. From then on the kernel drops every new SYN, so connects
 * hang in SYN-SENT (nothing is accepted at all), and the established connections get no answer.
 * Verified: a probe connect must not complete within 300 ms.
 */
export async function blackhole(mc: MemcachedProcess): Promise<Blackhole> {
  await mc.pause()
  const fillers: Socket[] = []
  const connects = (timeoutMs: number): Promise<boolean> =>
    new Promise((resolve) => {
      const socket = createConnection({ host: '127.0.0.1', port: mc.port })
      fillers.push(socket)
      socket.on('error', () => resolve(false))
      socket.setTimeout(timeoutMs, () => resolve(false))
      socket.once('connect', () => resolve(true))
    })
  // The accept queue of a listen(backlog 1) socket holds two; a few more to be sure it is full.
  for (let i = 0; i < 8 && (await connects(200)); i++);
  if (await connects(300))
    throw new Error(`${mc.address} still completes connections: not a blackhole`)
  return {
    async heal() {
      for (const s of fillers) s.destroy()
      await mc.resume()
    },
  }
}

export interface EvictionWatch {
  /** Evicted keys seen so far (memcached's `watch evictions` log). */
  readonly keys: readonly string[]
  stop(): void
}

/** Follows memcached's eviction log (`watch evictions`, memcached >= 1.5). */
export async function watchEvictions(port: number): Promise<EvictionWatch> {
  const keys: string[] = []
  const socket = createConnection({ host: '127.0.0.1', port })
  socket.on('error', () => {})
  socket.setEncoding('utf8')
  let buffer = ''
  let ok = false
  socket.on('data', (chunk: string) => {
    buffer += chunk
    let nl = buffer.indexOf('\n')
    while (nl !== -1) {
      const line = buffer.slice(0, nl).trim()
      buffer = buffer.slice(nl + 1)
      if (line === 'OK') ok = true
      const key = /type=eviction key=(\S+)/.exec(line)?.[1]
      if (key !== undefined) keys.push(decodeURIComponent(key))
      nl = buffer.indexOf('\n')
    }
  })
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve())
    socket.once('error', reject)
  })
  socket.write('watch evictions\r\n')
  await until('`watch evictions` to start', () => ok, 3000, 5)
  return {
    keys,
    stop: () => socket.destroy(),
  }
}

/**
 * Collects unhandled rejections and uncaught exceptions, so a test can assert nothing escaped the
 * cache while faults were applied.
 */
export function trackEscapes(): { readonly escaped: unknown[]; dispose(): void } {
  const escaped: unknown[] = []
  const onRejection = (reason: unknown): void => {
    escaped.push(reason)
  }
  const onException = (error: unknown): void => {
    escaped.push(error)
  }
  process.on('unhandledRejection', onRejection)
  process.on('uncaughtException', onException)
  return {
    escaped,
    dispose() {
      process.off('unhandledRejection', onRejection)
      process.off('uncaughtException', onException)
    },
  }
}

/** Requests until one pass over `paths` is (almost) all hits; returns the traffic it took. */
export async function untilHits(
  app: TrafficApp,
  paths: readonly string[],
  what: string,
  extra: TrafficOptions = {},
  ratio = 0.9,
): Promise<TrafficReport> {
  const reports: TrafficReport[] = []
  const started = Date.now()
  for (;;) {
    const r = await runTraffic(app.url, paths.length, paths.length, 10, {
      path: (i) => paths[i]!,
      ...extra,
    })
    reports.push(r)
    assertClean(r, what, what.endsWith('warm-up') ? Number.POSITIVE_INFINITY : undefined)
    if (r.hits >= ratio * paths.length) return mergeReports(...reports)
    if (Date.now() - started > 15_000) {
      assert.fail(
        `${what}: no hits after 15 s (last pass ${r.hits}/${paths.length}, ${JSON.stringify(r.outcomes)})`,
      )
    }
    await app.cache.settled()
    await sleep(100)
  }
}
