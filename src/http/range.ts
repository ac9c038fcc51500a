import type { IncomingHttpHeaders } from 'node:http'
import { getStored, type HeaderList, parseHttpDate } from './headers.js'

/** How to answer a request from a stored 200 of known length (RFC 9110 §14). */
export type RangeAnswer =
  | { readonly status: 200 }
  | {
      readonly status: 206
      /** First and last byte positions, inclusive. */
      readonly start: number
      readonly end: number
      readonly contentRange: string
    }
  | { readonly status: 416; readonly contentRange: string }

const FULL: RangeAnswer = { status: 200 }

/**
 * Answers a Range request from a stored 200 whose body is `length` bytes (RFC 9110 §14.2):
 * - one satisfiable bytes range: 206 with Content-Range `bytes first-last/length` (§14.4, §15.3.7);
 * - an unsatisfiable one: 416 with Content-Range `bytes *\/length` (§15.5.17);
 * - no Range, another method than GET, another unit, several ranges, a malformed value, or a failed
 *   If-Range: the full 200. A server MAY ignore Range (§14.2), and this cache does whenever it does
 *   not serve exactly one range: no multipart/byteranges.
 */
export function answerRange(
  method: string,
  request: IncomingHttpHeaders,
  stored: HeaderList,
  length: number,
): RangeAnswer {
  const raw = request.range
  // §14.2: GET is the only method range handling is defined for.
  if (method !== 'GET' || typeof raw !== 'string') return FULL
  // §14.2: an If-Range that does not match means the whole representation is wanted.
  if (!ifRangeHolds(request['if-range'], stored)) return FULL
  const range = parseByteRange(raw, length)
  if (range === undefined) return FULL
  if (range === 'unsatisfiable') return { status: 416, contentRange: `bytes */${length}` }
  const [start, end] = range
  return { status: 206, start, end, contentRange: `bytes ${start}-${end}/${length}` }
}

/**
 * A `bytes=` range set with exactly one range (RFC 9110 §14.1.2): the inclusive positions it selects
 * in a body of `length` bytes, 'unsatisfiable' (§14.1.1), or undefined to ignore the field (another
 * unit, several ranges, a syntax error, or an empty body, which no range can select from).
 */
export function parseByteRange(
  value: string,
  length: number,
): [start: number, end: number] | 'unsatisfiable' | undefined {
  // §14.1: ranges-specifier = range-unit "=" range-set; range units are case-insensitive.
  const m = /^bytes=(.*)$/i.exec(value.trim())
  if (!m) return undefined
  // §14.1.1: range-set = 1#range-spec; empty list elements are ignored (RFC 9110 §5.6.1).
  const specs = (m[1] as string)
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
  if (specs.length !== 1) return undefined
  const spec = specs[0] as string
  if (length === 0) return undefined
  const suffix = /^-(\d+)$/.exec(spec)
  if (suffix) {
    // §14.1.1: a suffix-range selects the last N bytes; a zero-length one is unsatisfiable.
    const n = Number(suffix[1])
    if (n === 0) return 'unsatisfiable'
    return [Math.max(0, length - n), length - 1]
  }
  const int = /^(\d+)-(\d*)$/.exec(spec)
  if (!int) return undefined
  const first = Number(int[1])
  const last = int[2] === '' ? undefined : Number(int[2])
  // §14.1.1: last-pos less than first-pos makes the range-spec invalid.
  if (last !== undefined && last < first) return undefined
  // §14.1.1: satisfiable only when first-pos is less than the length.
  if (first >= length) return 'unsatisfiable'
  return [first, Math.min(last ?? length - 1, length - 1)]
}

/**
 * If-Range (RFC 9110 §13.1.5): true without the field; with an entity-tag, when it strongly matches
 * the stored ETag (both strong and identical, §8.8.3.2); with an HTTP-date, when it equals the
 * stored Last-Modified exactly and that date is a strong validator: for an intermediate cache, the
 * stored Date is at least 60 seconds later (§8.8.2.2). Anything else (a weak tag, a malformed
 * value) fails, and the whole representation is sent.
 */
export function ifRangeHolds(value: string | string[] | undefined, stored: HeaderList): boolean {
  if (value === undefined) return true
  const text = (Array.isArray(value) ? value.join(', ') : value).trim()
  if (text.startsWith('"')) {
    const etag = getStored(stored, 'etag')?.trim()
    return etag !== undefined && !etag.startsWith('W/') && etag === text
  }
  if (text.startsWith('W/')) return false
  const since = parseHttpDate(text)
  const lastModified = parseHttpDate(getStored(stored, 'last-modified'))
  if (since === undefined || lastModified === undefined || since !== lastModified) return false
  const date = parseHttpDate(getStored(stored, 'date'))
  return date !== undefined && date - lastModified >= 60_000
}
