/**
 * Lookup: reads the entry for a request under one deadline — the hot tier first (synchronously),
 * then the store — selects the Vary variant (RFC 9111 §4.1), and judges it against the
 * invalidation records.
 */
import type { Request } from 'express'
import type { Logger } from 'pino'
import { decodeEntry, type Entry, isServable, type ResponseEntry } from '../entry.js'
import { FAILED, type Failed, type StoreGuard } from '../guard.js'
import { BoundedMemo, variantKeyFor, varyValues } from '../key.js'
import type { HotTier } from './hot-tier.js'
import type { Invalidations, Validity } from './invalidate.js'
import { SharedReads } from './shared-reads.js'

export interface Found {
  /** The store did not answer (or the invalidation records could not be read): fail open. */
  readonly failed: boolean
  readonly entry: Entry | undefined
  readonly validity: Validity
  /** Where this request's response lives: the primary key or its variant key. */
  readonly entryKey: string
  /** The varied request headers, when the primary key held a variants record. */
  readonly varyNames: readonly string[]
}

const servable = (raw: Buffer | undefined | Failed): Entry | undefined | Failed => {
  if (raw === FAILED) return FAILED
  const entry = decodeEntry(raw)
  return entry !== undefined && isServable(entry) ? entry : undefined
}

const NONE: readonly string[] = Object.freeze([])

export class Lookup {
  /** Primary key -> the request headers its responses vary on, as last seen in its variants record. */
  readonly variants = new BoundedMemo<readonly string[]>(10_000)

  constructor(
    private readonly guard: StoreGuard,
    private readonly invalidations: Invalidations,
    readonly hot: HotTier | undefined,
    /** The store call timeout, the hot tier's re-reads' deadline. */
    private readonly timeoutMs: number,
    /** Keeps a background re-read for `settled()` and `close()`. */
    private readonly background: (p: Promise<unknown>) => void,
  ) {}

  /** The entry key of this request, as far as this process knows the resource's Vary. */
  entryKey(req: Request, primary: string): string {
    const names = this.variants.get(primary)
    return names === undefined || names.length === 0
      ? primary
      : variantKeyFor(primary, names, varyValues(req, names))
  }

  /**
   * The hot tier's answer: a fresh entry that no memoised invalidation touches, or undefined. Runs
   * first on every looked-up request, so it also drives the invalidation poll.
   */
  hotHit(
    req: Request,
    primary: string,
    tags: readonly string[],
    now: number,
  ): ResponseEntry | undefined {
    this.invalidations.tick(now)
    if (this.hot === undefined) return undefined
    const slot = this.hot.get(this.entryKey(req, primary), now)
    if (slot === undefined || this.invalidations.judgeMemoised(slot.entry, now) !== 'valid')
      return undefined
    // Refresh-ahead: one background re-read per copy; read() puts what it finds in the tier.
    if (this.hot.claimRefresh(slot, now))
      this.background(this.read(req, primary, tags, now + this.timeoutMs, undefined, true))
    return slot.entry
  }

  /** Entry reads in flight, for requests that may share one (see {@link read}). */
  private readonly reads = new SharedReads<Entry | undefined | Failed>()

  /**
   * Reads and decodes one key. `shared`: join a read of the same key already in flight in this
   * process when its deadline fits this one (see {@link SharedReads}); the invalidation check that
   * follows is each request's own.
   */
  private fetch(
    key: string,
    deadline: number,
    log: Logger | undefined,
    shared: boolean,
  ): Promise<Entry | undefined | Failed> {
    const send = (): Promise<Entry | undefined | Failed> =>
      this.guard.call('get', (s) => s.get(key), deadline, log).then(servable)
    return shared ? this.reads.read(key, deadline, send) : send()
  }

  /**
   * Reads the primary key and, when it holds a variants record, this request's variant; judges a
   * response against the invalidation records of its tags. `shared` (a request's first lookup, and
   * the hot tier's re-read): join reads in flight. Never for the re-read that follows a lock:
   * that one must be sent after the `add`, to see what the previous holder stored.
   */
  async read(
    req: Request,
    primary: string,
    tags: readonly string[],
    deadline: number,
    log?: Logger,
    shared = false,
  ): Promise<Found> {
    // The records of the tags known now are read alongside the entry (one round trip for both).
    this.invalidations.prefetch(tags, deadline, log)
    const known = this.variants.get(primary)
    let names: readonly string[] = NONE
    let entryKey = primary
    let entry: Entry | undefined
    if (known !== undefined && known.length > 0) {
      // The variants record is known: read it and the variant together (one round trip), and
      // fall back to a second read only if the record changed.
      const key = variantKeyFor(primary, known, varyValues(req, known))
      const [top, variant] = await Promise.all([
        this.fetch(primary, deadline, log, shared),
        this.fetch(key, deadline, log, shared),
      ])
      if (top === FAILED || variant === FAILED) return failed(key, known)
      if (top?.kind === 'variants' && top.names.join() === known.join()) {
        names = known
        entryKey = key
        entry = variant
      } else {
        const again = await this.select(req, primary, top, deadline, log, shared)
        if (again === undefined) return failed(primary, known)
        ;({ names, entryKey, entry } = again)
      }
    } else {
      const top = await this.fetch(primary, deadline, log, shared)
      if (top === FAILED) return failed(primary, NONE)
      if (top?.kind === 'variants') {
        const again = await this.select(req, primary, top, deadline, log, shared)
        if (again === undefined) return failed(primary, NONE)
        ;({ names, entryKey, entry } = again)
      } else {
        this.variants.delete(primary)
        entry = top
      }
    }
    if (entry?.kind !== 'response')
      return { failed: false, entry, validity: 'valid', entryKey, varyNames: names }
    const now = Date.now()
    const validity =
      this.invalidations.judgeKnown(entry, now) ??
      (await this.invalidations.judge(entry, deadline, log))
    if (validity === 'failed') return failed(entryKey, names)
    if (validity === 'valid') this.hot?.set(entryKey, entry, now)
    return { failed: false, entry, validity, entryKey, varyNames: names }
  }

  /** Given what the primary key holds, the entry this request selects (reading its variant). */
  private async select(
    req: Request,
    primary: string,
    top: Entry | undefined,
    deadline: number,
    log: Logger | undefined,
    shared: boolean,
  ): Promise<{ names: readonly string[]; entryKey: string; entry: Entry | undefined } | undefined> {
    if (top?.kind !== 'variants') {
      this.variants.delete(primary)
      return { names: NONE, entryKey: primary, entry: top }
    }
    this.variants.set(primary, top.names)
    const key = variantKeyFor(primary, top.names, varyValues(req, top.names))
    const entry = await this.fetch(key, deadline, log, shared)
    if (entry === FAILED) return undefined
    return { names: top.names, entryKey: key, entry }
  }
}

function failed(entryKey: string, varyNames: readonly string[]): Found {
  return { failed: true, entry: undefined, validity: 'valid', entryKey, varyNames }
}
