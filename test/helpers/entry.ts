/** Stored responses for tests that write to a store or a tier directly. */
import type { ResponseEntry } from '../../src/entry.js'

/** A 200 `text/plain` response stored at `at`, fresh (and within grace) for a minute; `over` on top. */
export function responseEntry(over: Partial<ResponseEntry> = {}, at = Date.now()): ResponseEntry {
  return {
    kind: 'response',
    cachedAt: at,
    staleAt: at + 60_000,
    graceUntil: at + 60_000,
    errorUntil: at + 60_000,
    initialAge: 0,
    status: 200,
    headers: [['content-type', 'text/plain']],
    body: Buffer.from('stored'),
    startedAt: at,
    tags: [],
    shared: false,
    ...over,
  }
}
