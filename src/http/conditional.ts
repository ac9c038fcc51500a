import type { IncomingHttpHeaders } from 'node:http'
import { getStored, type HeaderList, parseHttpDate } from './headers.js'

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
