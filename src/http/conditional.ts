import type { IncomingHttpHeaders } from 'node:http'
import { type HeaderList, getStored } from './headers.js'

const opaque = (tag: string): string => tag.trim().replace(/^W\//, '')

/**
 * Whether a conditional GET/HEAD can be answered 304 from a stored 200 (RFC 9110 §13.1.2, §13.1.3,
 * evaluated in the order of §13.2.2): If-None-Match with the weak comparison; only without it,
 * If-Modified-Since against Last-Modified, or the stored Date when there is none (RFC 9111 §4.3.2).
 */
export function isNotModified(request: IncomingHttpHeaders, stored: HeaderList): boolean {
  const inm = request['if-none-match']
  if (inm !== undefined) {
    const etag = getStored(stored, 'etag')
    if (inm.trim() === '*') return etag !== undefined
    if (etag === undefined) return false
    const want = opaque(etag)
    return inm.split(',').some((t) => opaque(t) === want)
  }
  const ims = request['if-modified-since']
  if (ims === undefined) return false
  const since = Date.parse(ims)
  const modified = Date.parse(getStored(stored, 'last-modified') ?? getStored(stored, 'date') ?? '')
  return !Number.isNaN(since) && !Number.isNaN(modified) && modified <= since
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
