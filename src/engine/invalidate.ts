/**
 * Fleet-wide invalidation without listing keys (memcached cannot enumerate them).
 *
 * Every entry carries tags (its path tag, route tags, its Surrogate-Key) and the time its render
 * started. An invalidation records, per tag, the time it happened; an entry rendered before the
 * record's time is gone (hard) or stale (soft). This is memcached's own "namespace" idea, like
 * Next.js's tag timestamps. Rules that keep it safe:
 * - A missing record (evicted, or never written) counts as "invalidated now": a reader writes it with
 *   `add`, so an eviction can never bring a purged entry back. A writer that finds it missing writes
 *   it just before its own render started, so its fresh entry stays valid.
 * - A render stores its result only if none of its tags was invalidated after the render started.
 * - Each process memoises records until the fleet's generation key changes. Every invalidation
 *   writes a new generation; each process polls it every `invalidationPoll`, so the whole fleet sees
 *   an invalidation within one poll interval plus a round trip. Clocks must agree (NTP) to within
 *   the precision wanted: times are compared across machines.
 */
import { createHash, randomBytes } from 'node:crypto'
import type { ServerResponse } from 'node:http'
import type { Logger } from 'pino'
import type { ResponseEntry } from '../entry.js'
import { FAILED, type StoreGuard } from '../guard.js'
import { BoundedMemo, pathTag } from '../key.js'
import { MAX_RELATIVE_TTL_SECONDS } from '../store/types.js'
import { SharedReads } from './shared-reads.js'

/** The tag every entry carries implicitly: `invalidateAll()` records it. */
export const ALL_TAG = '*'

export { pathTag } from '../key.js'

/** Times of the last hard and soft invalidation of a tag (epoch ms). */
export interface TagRecord {
  readonly hard: number
  readonly soft: number
}

/** How an entry stands against the invalidation records. */
export type Validity = 'valid' | 'stale' | 'gone'

/** An invalidation the store could not record: retry it. */
export class InvalidationError extends Error {
  readonly code = 'EFTC_INVALIDATION'
  constructor(message: string) {
    super(message)
    this.name = 'InvalidationError'
  }
}

const encodeRecord = (r: TagRecord): Buffer => {
  const b = Buffer.allocUnsafe(16)
  b.writeDoubleBE(r.hard, 0)
  b.writeDoubleBE(r.soft, 8)
  return b
}

const decodeRecord = (b: Buffer): TagRecord | undefined => {
  if (b.length !== 16) return undefined
  const hard = b.readDoubleBE(0)
  const soft = b.readDoubleBE(8)
  return Number.isFinite(hard) && Number.isFinite(soft) ? { hard, soft } : undefined
}

/** Validity of an entry rendered at `startedAt` against one record. */
const against = (r: TagRecord, startedAt: number): Validity =>
  r.hard >= startedAt ? 'gone' : r.soft >= startedAt ? 'stale' : 'valid'

const worse = (a: Validity, b: Validity): Validity =>
  a === 'gone' || b === 'gone' ? 'gone' : a === 'stale' || b === 'stale' ? 'stale' : 'valid'

export class Invalidations {
  private readonly memo = new BoundedMemo<TagRecord>(50_000)
  /** Bumped whenever the memo is emptied: a fetch that started before must not refill it. */
  private epoch = 0
  private generation: string | undefined
  /** When a poll was last started, and when one last read the generation (or found it unreachable). */
  private lastPoll = 0
  private lastAnswer = 0
  private polled: Promise<void> | undefined
  /** Whether the last answered poll read the generation (false: its server did not answer). */
  private readable = false
  private polling = false
  private closed = false

  constructor(
    private readonly guard: StoreGuard,
    private readonly prefix: string,
    private readonly pollMs: number,
    private readonly timeoutMs: number,
  ) {}

  private recordKey(tag: string): string {
    return `${this.prefix}:inv:${createHash('sha256').update(tag).digest('base64url')}`
  }

  private get generationKey(): string {
    return `${this.prefix}:inv-gen`
  }

  /**
   * Called on every request: polls the generation at most every `pollMs`, on the request path but
   * without waiting for it. No timer: an idle process sends nothing.
   */
  tick(now = Date.now()): void {
    if (now - this.lastPoll < this.pollMs || this.closed) return
    this.lastPoll = now
    this.polled = this.poll(now)
  }

  /**
   * After an idle gap the memo may have missed invalidations: wait for a poll (one round trip) to
   * say whether the generation moved. Every invalidation moves it, so an unchanged generation
   * proves the memo current without reading a single record again.
   */
  private async upToDate(now: number): Promise<void> {
    if (now - this.lastAnswer <= this.staleAfterMs) return
    if (now - this.lastPoll >= this.pollMs) this.tick(now)
    await this.polled
  }

  close(): void {
    this.closed = true
  }

  /** Memoises a record; times only move forward, so a slow fetch cannot undo a local invalidation. */
  private remember(tag: string, r: TagRecord): void {
    const mine = this.memo.get(tag)
    this.memo.set(
      tag,
      mine === undefined
        ? r
        : { hard: Math.max(r.hard, mine.hard), soft: Math.max(r.soft, mine.soft) },
    )
  }

  private reset(): void {
    this.memo.clear()
    this.epoch++
  }

  /** Past this, what the memo knows is too old to trust: two polls and a store deadline. */
  private get staleAfterMs(): number {
    return 2 * this.pollMs + this.timeoutMs
  }

  private async poll(startedAt: number): Promise<void> {
    if (this.polling) return this.polled
    this.polling = true
    try {
      const deadline = Date.now() + Math.max(this.timeoutMs, this.pollMs)
      let value = await this.guard.call('get', (s) => s.get(this.generationKey), deadline)
      if (value === undefined) {
        // Evicted or never written: start a generation. Whoever wins the add, all see it changed.
        const fresh = randomBytes(12)
        const won = await this.guard.call(
          'add',
          (s) => s.add(this.generationKey, fresh, MAX_RELATIVE_TTL_SECONDS),
          deadline,
        )
        value = won === FAILED ? FAILED : won === false ? undefined : fresh
      }
      if (value === FAILED || value === undefined) {
        // Unknown for now: the hot tier stops answering (it must see invalidations within a poll),
        // but the memo stays. An invalidation cannot complete without bumping the generation, so
        // while its server is unreachable nothing new can be missed; the comparison below catches
        // up when it answers again.
        this.readable = false
        this.lastAnswer = startedAt
        return
      }
      const text = value.toString('base64')
      if (text !== this.generation) {
        if (this.generation !== undefined) this.reset()
        this.generation = text
      }
      this.readable = true
      this.lastAnswer = startedAt
    } finally {
      this.polling = false
    }
  }

  /**
   * Judges an entry from memoised records alone (the hot tier's synchronous path); undefined when
   * a record is not memoised, or while the generation is unknown.
   */
  judgeMemoised(entry: ResponseEntry, now: number): Validity | undefined {
    return this.readable ? this.judgeKnown(entry, now) : undefined
  }

  /**
   * Judges an entry without waiting, when the memo is recent and holds every record it needs (the
   * usual case on a busy process); undefined otherwise, and {@link judge} reads what is missing.
   */
  judgeKnown(entry: ResponseEntry, now: number): Validity | undefined {
    if (now - this.lastAnswer > this.staleAfterMs) return undefined
    const all = this.memo.get(ALL_TAG)
    if (all === undefined) return undefined
    let v = against(all, entry.startedAt)
    for (const tag of entry.tags) {
      const r = this.memo.get(tag)
      if (r === undefined) return undefined
      v = worse(v, against(r, entry.startedAt))
    }
    return v
  }

  /** Record reads in flight, so concurrent requests for one tag share a single get. */
  private readonly inflight = new SharedReads<TagRecord | 'missing' | typeof FAILED>()

  /** Reads a record into the memo (deduplicated); 'missing' when the store has none. */
  private read(
    tag: string,
    deadline: number,
    logger?: Logger,
  ): Promise<TagRecord | 'missing' | typeof FAILED> {
    const known = this.memo.get(tag)
    if (known !== undefined) return Promise.resolve(known)
    return this.inflight.read(tag, deadline, () => {
      const epoch = this.epoch
      const key = this.recordKey(tag)
      return this.guard
        .call('get', (s) => s.get(key), deadline, logger)
        .then((raw) => {
          if (raw === FAILED) return FAILED
          const record = raw === undefined ? undefined : decodeRecord(raw)
          if (record === undefined) return 'missing'
          if (epoch === this.epoch) this.remember(tag, record)
          return record
        })
    })
  }

  /**
   * Starts reading the records of a request's known tags while its entry is being read, so judging
   * the entry usually costs no extra round trip.
   */
  prefetch(tags: readonly string[], deadline: number, logger?: Logger): void {
    if (this.memo.get(ALL_TAG) === undefined) void this.read(ALL_TAG, deadline, logger)
    for (const tag of tags)
      if (this.memo.get(tag) === undefined) void this.read(tag, deadline, logger)
  }

  /**
   * Writes a missing record as `at` with `add` (another writer may win: then theirs counts), and
   * memoises it.
   */
  private async create(
    tag: string,
    at: number,
    deadline: number,
    logger?: Logger,
  ): Promise<TagRecord | typeof FAILED> {
    const key = this.recordKey(tag)
    const record: TagRecord = { hard: at, soft: 0 }
    const added = await this.guard.call(
      'add',
      (s) => s.add(key, encodeRecord(record), MAX_RELATIVE_TTL_SECONDS),
      deadline,
      logger,
    )
    if (added === FAILED) return FAILED
    if (added !== false) {
      this.remember(tag, record)
      return record
    }
    const again = await this.guard.call('get', (s) => s.get(key), deadline, logger)
    const theirs = again === FAILED || again === undefined ? undefined : decodeRecord(again)
    if (theirs === undefined) return FAILED
    this.remember(tag, theirs)
    return theirs
  }

  /**
   * Judges an entry against its records (memoised, or read now). A missing record counts as
   * "invalidated now" and is written so. 'failed' when the store did not say.
   */
  async judge(
    entry: ResponseEntry,
    deadline: number,
    logger?: Logger,
  ): Promise<Validity | 'failed'> {
    await this.upToDate(Date.now())
    const records = await Promise.all(
      [ALL_TAG, ...entry.tags].map(async (tag) => {
        const r = await this.read(tag, deadline, logger)
        // "Invalidated now", a millisecond back: a render starting this very millisecond is after it.
        return r === 'missing' ? this.create(tag, Date.now() - 1, deadline, logger) : r
      }),
    )
    let v: Validity = 'valid'
    for (const r of records) {
      if (r === FAILED) return 'failed'
      v = worse(v, against(r, entry.startedAt))
    }
    return v
  }

  /**
   * Whether a render that started at `startedAt` may store its result under these tags. Read
   * fresh from the store (an invalidation may have happened during the render). A missing record
   * is written as "invalidated `slackMs` before this render started": other renders in flight for
   * the same tag (every one shares the `*` tag) started up to a lock TTL earlier must not be
   * refused by it, while an entry purged before that stays purged.
   */
  async admits(tags: readonly string[], startedAt: number, slackMs: number): Promise<boolean> {
    // Write-back runs after the response went out: a background budget, as for the write itself.
    // The request budget would let a slow get starve the add of a new path's record, and the
    // entry would silently not be stored.
    const deadline = Date.now() + Math.max(this.timeoutMs, 1000)
    const results = await Promise.all(
      [ALL_TAG, ...tags].map(async (tag) => {
        const key = this.recordKey(tag)
        const raw = await this.guard.call('get', (s) => s.get(key), deadline)
        // Its server unreachable: no invalidation could be recorded there meanwhile either, so the
        // memoised record (if any) is as current as the store's.
        if (raw === FAILED) return this.memo.get(tag) ?? FAILED
        const fresh = raw === undefined ? undefined : decodeRecord(raw)
        const record = fresh ?? (await this.create(tag, startedAt - slackMs, deadline))
        if (record === FAILED) return FAILED
        this.remember(tag, record)
        // A local invalidation whose store write has not landed yet counts too (remember merges).
        return this.memo.get(tag) ?? record
      }),
    )
    return results.every((r) => r !== FAILED && against(r, startedAt) === 'valid')
  }

  /**
   * Records an invalidation of these tags at `at`, for the whole fleet. The local memo is updated at
   * once (this process's hot tier obeys it immediately); the generation bump tells the others.
   * Rejects with an InvalidationError (code EFTC_INVALIDATION) when the store could not record it.
   */
  async invalidate(tags: readonly string[], soft: boolean, at = Date.now()): Promise<void> {
    const deadline = Date.now() + Math.max(this.timeoutMs, 1000)
    const failures: string[] = []
    // This process obeys at once, before any round trip: the client that made a change must not
    // read the old entry back.
    for (const tag of new Set(tags)) {
      if (!soft) this.remember(tag, { hard: at, soft: 0 })
      else if (this.memo.get(tag) !== undefined) this.remember(tag, { hard: 0, soft: at })
    }
    await Promise.all(
      [...new Set(tags)].map(async (tag) => {
        const key = this.recordKey(tag)
        const raw = await this.guard.call('get', (s) => s.get(key), deadline)
        const old = raw === FAILED || raw === undefined ? undefined : decodeRecord(raw)
        // Never move a time backwards: a soft invalidation keeps an earlier hard one.
        const record: TagRecord = {
          hard: soft ? (old?.hard ?? 0) : Math.max(at, old?.hard ?? 0),
          soft: soft ? Math.max(at, old?.soft ?? 0) : (old?.soft ?? 0),
        }
        this.remember(tag, record)
        const ok = await this.guard.call('set', (s) =>
          s.set(key, encodeRecord(record), MAX_RELATIVE_TTL_SECONDS),
        )
        if (ok === FAILED) failures.push(tag)
      }),
    )
    const bumped = await this.guard.call('set', (s) =>
      s.set(this.generationKey, randomBytes(12), MAX_RELATIVE_TTL_SECONDS),
    )
    if (failures.length > 0) {
      throw new InvalidationError(
        `express-ft-cache: could not record the invalidation of ${failures.join(', ')}; retry it`,
      )
    }
    if (bumped === FAILED) {
      throw new InvalidationError(
        'express-ft-cache: the invalidation was recorded, but the fleet could not be told to drop its memoised records; retry it',
      )
    }
  }
}

/**
 * RFC 9111 §4.4: a non-error response to an unsafe method invalidates the target URI and the
 * same-host URIs in Location and Content-Location — here their whole paths (every query and
 * variant), through the same records as the API, so a render that started before cannot store the
 * old content back. Runs at most once: on 'finish', or on 'close' when the client left after the
 * handler committed a 2xx/3xx (the change happened even if the response never arrived).
 */
export function invalidateAfterUnsafe(
  req: { headers: { host?: string | undefined }; hostname?: string },
  res: ServerResponse,
  path: string,
  run: (tags: string[]) => void,
): void {
  let done = false
  const settle = (): void => {
    if (done) return
    const status = res.statusCode
    if (status < 200 || status >= 400) return
    done = true
    const host = (req.hostname || req.headers.host || 'localhost').toLowerCase()
    const tags = [pathTag(path)]
    for (const name of ['location', 'content-location']) {
      const value = res.getHeader(name)
      if (typeof value !== 'string') continue
      try {
        const url = new URL(value, `http://${host}${path}`)
        if (url.hostname.toLowerCase() === host) tags.push(pathTag(url.pathname))
      } catch {
        // Not a URL: nothing to invalidate.
      }
    }
    run(tags)
  }
  res.once('finish', settle)
  res.once('close', () => {
    if (res.headersSent) return settle()
    // Gone before the head: the handler may still commit. Node skips the implicit writeHead when a
    // destroyed response is ended with a body (res.send, res.json): watch write and end too.
    for (const method of ['writeHead', 'write', 'end'] as const) {
      const original = res[method] as (this: ServerResponse, ...args: unknown[]) => unknown
      res[method] = function (this: ServerResponse, ...args: unknown[]) {
        const out = original.apply(this, args)
        settle()
        return out
      } as never
    }
  })
}
