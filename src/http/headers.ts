import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http'

/** A stored header list: one [lower-case name, value] pair per field line, in order. */
export type HeaderList = [name: string, value: string][]

/**
 * Hop-by-hop fields are meaningful for one connection only and are never stored (RFC 9110 §7.6.1),
 * nor are this cache's own per-response fields.
 */
const NEVER_STORED = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'age',
  'x-cache',
  'cache-status',
])

/** Flattens Node's outgoing headers into a storable list, dropping fields that must not be stored. */
export function toStoredHeaders(headers: OutgoingHttpHeaders, drop: ReadonlySet<string>): HeaderList {
  // Fields named in Connection are hop-by-hop too (RFC 9110 §7.6.1).
  const connection = listValues(headers.connection)
  const out: HeaderList = []
  for (const [name, value] of Object.entries(headers)) {
    const lower = name.toLowerCase()
    if (value === undefined || NEVER_STORED.has(lower) || drop.has(lower) || connection.has(lower)) continue
    if (Array.isArray(value)) for (const v of value) out.push([lower, String(v)])
    else out.push([lower, String(value)])
  }
  return out
}

function listValues(value: OutgoingHttpHeaders[string]): Set<string> {
  if (value === undefined) return new Set()
  const joined = Array.isArray(value) ? value.join(',') : String(value)
  return new Set(joined.split(',').map((s) => s.trim().toLowerCase()).filter(Boolean))
}

/** First value of a header in a stored list, or undefined. */
export function getStored(headers: HeaderList, name: string): string | undefined {
  for (const [n, v] of headers) if (n === name) return v
  return undefined
}

/** All values of a header in a stored list, joined as one comma-separated field value. */
export function getStoredJoined(headers: HeaderList, name: string): string | undefined {
  const values = headers.filter(([n]) => n === name).map(([, v]) => v)
  return values.length === 0 ? undefined : values.join(', ')
}

/** A request header as one string (repeated fields joined with ", ", RFC 9110 §5.3). */
export function requestHeader(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name]
  return Array.isArray(value) ? value.join(', ') : value
}

/**
 * Request headers whose list members are unordered and whose tokens are case-insensitive, so
 * "gzip, br" and "BR,gzip" select the same variant. Order matters where q-values are absent only as a
 * tie-break hint, which a cache may ignore (RFC 9110 §12.4.2, §12.5.3).
 */
const CASE_INSENSITIVE_LISTS = new Set(['accept', 'accept-encoding', 'accept-language', 'accept-charset'])

/**
 * Normalises a request header value for use in a cache key, as RFC 9111 §4.1 allows: field names
 * are case-insensitive, whitespace around list separators is insignificant, repeated field lines
 * combine into one list; for the Accept-* family list order and token case do not matter either.
 */
export function normalizeForVary(name: string, value: string | undefined): string | null {
  if (value === undefined) return null
  const members = value.split(',').map((m) => m.trim().replace(/\s*;\s*/g, ';').replace(/\s+/g, ' '))
  if (CASE_INSENSITIVE_LISTS.has(name)) {
    return members
      .filter(Boolean)
      .map((m) => m.toLowerCase())
      .sort()
      .join(',')
  }
  return members.join(',')
}

/** Field names listed in a Vary header, lower-case and sorted; '*' kept as is. */
export function parseVary(value: string | undefined): string[] {
  if (value === undefined) return []
  return [...new Set(value.split(',').map((s) => s.trim().toLowerCase()).filter(Boolean))].sort()
}
