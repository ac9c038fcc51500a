import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http'
import { getStored, type HeaderList, parseHttpDate, toStoredHeaders } from './headers.js'

/** The opaque-tag of an entity-tag: weak comparison ignores the W/ prefix (RFC 9110 §8.8.3.2). */
const opaque = (tag: string): string => tag.trim().replace(/^W\//, '')

/**
 * Members of an If-None-Match list (RFC 9110 §13.1.2). Commas inside a quoted entity-tag belong to
 * the tag (etagc allows %x2C, RFC 9110 §8.8.3), so the list is split on commas outside quotes only.
 */
function entityTags(list: string): string[] {
  const out: string[] = []
  let start = 0
  let quoted = false
  for (let i = 0; i <= list.length; i++) {
    if (i === list.length || (list[i] === ',' && !quoted)) {
      const tag = list.slice(start, i).trim()
      if (tag !== '') out.push(tag)
      start = i + 1
    } else if (list[i] === '"') quoted = !quoted
  }
  return out
}

/**
 * Whether a conditional GET/HEAD can be answered 304 from a stored 200 (RFC 9110 §13.1.2, §13.1.3,
 * evaluated in the order of §13.2.2): If-None-Match with the weak comparison; only without it,
 * If-Modified-Since against Last-Modified, or the stored Date when there is none (RFC 9111 §4.3.2).
 */
export function isNotModified(request: IncomingHttpHeaders, stored: HeaderList): boolean {
  const inm = request['if-none-match']
  if (inm !== undefined) {
    // RFC 9110 §13.1.2: "*" is false (so 304) whenever a current representation exists: the stored 200.
    if (inm.trim() === '*') return true
    const etag = getStored(stored, 'etag')
    if (etag === undefined) return false
    const want = opaque(etag)
    return entityTags(inm).some((t) => opaque(t) === want)
  }
  const ims = request['if-modified-since']
  if (ims === undefined) return false
  // RFC 9110 §13.1.3: an invalid HTTP-date (or a list of them) is ignored.
  const since = parseHttpDate(ims)
  const lastModified = getStored(stored, 'last-modified')
  // RFC 9111 §4.3.2: without Last-Modified, the stored Date (the middleware always stores one). A
  // Last-Modified that is present but invalid cannot be compared: send the full response.
  const modified = parseHttpDate(lastModified ?? getStored(stored, 'date'))
  return since !== undefined && modified !== undefined && modified <= since
}

/** Fields a 304 carries (RFC 9110 §15.4.5), plus Last-Modified to guide cache updates. */
export const NOT_MODIFIED_FIELDS = new Set([
  'cache-control',
  'content-location',
  'date',
  'etag',
  'expires',
  'vary',
  'last-modified',
])

/** Request fields that ask the origin to validate a stored response (RFC 9111 §4.3.1). */
export interface ValidationHeaders {
  'if-none-match'?: string
  'if-modified-since'?: string
}

/**
 * The conditions a cache sends to validate a stored response (RFC 9111 §4.3.1): If-None-Match with
 * the stored ETag (weak ones too: If-None-Match uses the weak comparison, RFC 9110 §13.1.2), and
 * If-Modified-Since with the stored Last-Modified when it is a valid HTTP-date (RFC 9110 §13.1.3).
 * The stored Date is not used: it only says when the response was generated, not when the
 * representation changed. Empty when the stored response has no validator.
 */
export function conditionalHeadersFor(stored: HeaderList): ValidationHeaders {
  const out: ValidationHeaders = {}
  const etag = getStored(stored, 'etag')?.trim()
  if (etag !== undefined && /^(W\/)?"[^"]*"$/.test(etag)) out['if-none-match'] = etag
  const lastModified = getStored(stored, 'last-modified')
  if (lastModified !== undefined && parseHttpDate(lastModified) !== undefined)
    out['if-modified-since'] = lastModified.trim()
  return out
}

/**
 * Fields a 304 must not change in the stored response (RFC 9111 §3.2): Content-Length describes the
 * stored body, not the 304's empty one; Content-Range and Content-Encoding describe how the stored
 * body is framed and coded; this cache's own per-response fields are recomputed on every answer.
 */
const NOT_FRESHENED = new Set(['content-length', 'content-range', 'content-encoding'])

/**
 * Whether a 304 validates this stored response (RFC 9111 §4.3.4): with an ETag it must equal the
 * stored one (a strong validator identifies the representation); otherwise with a Last-Modified it
 * must equal the stored one. With neither, RFC 9111 §4.3.4 selects only a stored response without
 * validators; this cache sent the conditions of exactly one stored response, so a bare 304 can only
 * answer that one, and it is accepted.
 */
export function validates(stored: HeaderList, notModified: OutgoingHttpHeaders): boolean {
  const etag = single(notModified.etag)
  if (etag !== undefined) {
    const mine = getStored(stored, 'etag')
    return mine !== undefined && mine.trim() === etag.trim()
  }
  const lastModified = single(notModified['last-modified'])
  if (lastModified !== undefined) {
    const mine = parseHttpDate(getStored(stored, 'last-modified'))
    return mine !== undefined && mine === parseHttpDate(lastModified)
  }
  return true
}

/**
 * Freshens a stored response with a 304 (RFC 9111 §4.3.4, §3.2): every field of the 304 replaces
 * the stored lines of the same name, except fields never stored (hop-by-hop, Age, Connection-listed,
 * RFC 9111 §3.1) and those of {@link NOT_FRESHENED}; other stored fields and the body stay.
 * Undefined when the 304 identifies another representation ({@link validates}): the cache must then
 * fetch the response in full.
 */
export function freshen(
  stored: HeaderList,
  notModified: OutgoingHttpHeaders,
): HeaderList | undefined {
  if (!validates(stored, notModified)) return undefined
  const update = toStoredHeaders(notModified, NOT_FRESHENED)
  const replaced = new Set(update.map(([name]) => name))
  return [...stored.filter(([name]) => !replaced.has(name)), ...update]
}

const single = (v: OutgoingHttpHeaders[string]): string | undefined =>
  v === undefined ? undefined : Array.isArray(v) ? v[0] : String(v)
