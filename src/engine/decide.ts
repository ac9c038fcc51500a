/**
 * Decide: from what the lookup found, the time and the request, what happens next. Pure: no store,
 * no Express, no clock of its own; unit-tested without a server.
 */
import type { Entry, ResponseEntry } from '../entry.js'
import { conditionalHeadersFor } from '../http/conditional.js'
import type { Validity } from './invalidate.js'

export interface Facts {
  readonly now: number
  /** HEAD cannot regenerate a GET body: it never renders for the cache. */
  readonly isGet: boolean
  /** RFC 9111 §5.2.1.7: the client wants no origin contact. */
  readonly onlyIfCached: boolean
  /** The request carries Authorization or a session cookie (RFC 9111 §3.5 applied to both). */
  readonly credentialed: boolean
  /** This process is regenerating the entry already (and the regeneration is not presumed hung). */
  readonly regenerating: boolean
  /** This process lost the lock for this entry a moment ago: another process regenerates it. */
  readonly lockLost: boolean
}

export type Decision =
  /** Serve the entry as it is. */
  | { readonly kind: 'hit'; readonly entry: ResponseEntry }
  /** Serve the stale copy; someone else regenerates it (or nobody may). */
  | { readonly kind: 'stale'; readonly entry: ResponseEntry }
  /** Stale within grace: compete for the fleet lock; the winner renders, the losers serve stale. */
  | { readonly kind: 'regenerate'; readonly entry: ResponseEntry }
  /**
   * Nothing usable as it is: coalesce (in-process flight, fleet lock) and render — conditionally
   * when `validate` holds a stale copy with a validator (RFC 9111 §4.3.1), so a 304 can refresh it.
   */
  | {
      readonly kind: 'cold'
      readonly fallback: ResponseEntry | undefined
      readonly validate: ResponseEntry | undefined
    }
  /** Hit-for-miss: the last render was uncacheable; render at once, no queueing. */
  | { readonly kind: 'pass'; readonly fallback: ResponseEntry | undefined }
  /** A credentialed request without a shareable fresh entry: render alone, store only if shared. */
  | { readonly kind: 'private'; readonly fallback: ResponseEntry | undefined }
  /** HEAD without a usable entry: the handler answers, nothing is stored (Express sends no body). */
  | { readonly kind: 'head' }
  /** only-if-cached and nothing to answer with: 504 (RFC 9111 §5.2.1.7). */
  | { readonly kind: 'unavailable' }

/**
 * `entry` is what the lookup found (undefined on a miss or a failed read), `validity` how it stands
 * against the invalidation records ('gone' makes it a miss, 'stale' ends its freshness now).
 */
export function decide(found: Entry | undefined, validity: Validity, facts: Facts): Decision {
  const { now } = facts
  const entry = found?.kind === 'response' && validity !== 'gone' ? found : undefined
  const staleAt = entry === undefined ? 0 : validity === 'stale' ? now : entry.staleAt
  // A stale copy inside stale-if-error may still replace a failed render (RFC 5861 §4).
  // Never another user's copy: a credentialed request falls back only on a shared one.
  const fallback =
    entry !== undefined && now < entry.errorUntil && (!facts.credentialed || entry.shared)
      ? entry
      : undefined

  if (entry !== undefined && (!facts.credentialed || entry.shared)) {
    if (now < staleAt) return { kind: 'hit', entry }
    // RFC 5861 §3: within grace the stale copy answers while one request regenerates.
    if (now < entry.graceUntil) {
      if (!facts.isGet || facts.onlyIfCached || facts.regenerating || facts.lockLost) {
        return { kind: 'stale', entry }
      }
      if (!facts.credentialed) return { kind: 'regenerate', entry }
    }
  }
  if (facts.onlyIfCached) return { kind: 'unavailable' }
  if (!facts.isGet) return { kind: 'head' }
  if (facts.credentialed) return { kind: 'private', fallback }
  if (found?.kind === 'pass') return { kind: 'pass', fallback }
  const validate = entry !== undefined && canValidate(entry) ? entry : undefined
  return { kind: 'cold', fallback, validate }
}

/** Whether a stored response carries a validator a conditional request can be built from. */
export function canValidate(entry: ResponseEntry): boolean {
  const v = conditionalHeadersFor(entry.headers)
  return v['if-none-match'] !== undefined || v['if-modified-since'] !== undefined
}
