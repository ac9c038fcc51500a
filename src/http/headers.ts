import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http'

/** A stored header list: one [lower-case name, value] pair per field line, in order. */
export type HeaderList = [name: string, value: string][]

/**
 * Never stored (RFC 9111 §3.1): hop-by-hop fields, meaningful for one connection only (RFC 9110
 * §7.6.1); the proxy-specific Proxy-Authenticate, Proxy-Authentication-Info and Proxy-Authorization;
 * Age, which the cache recomputes on every answer (RFC 9111 §5.1); and this cache's own
 * per-response fields (X-Cache, Cache-Status, RFC 9211).
 */
const NEVER_STORED = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authentication-info',
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
export function toStoredHeaders(
  headers: OutgoingHttpHeaders,
  drop: ReadonlySet<string>,
): HeaderList {
  // Fields named in Connection are hop-by-hop too (RFC 9110 §7.6.1).
  const connection = listValues(headers.connection)
  const out: HeaderList = []
  for (const [name, value] of Object.entries(headers)) {
    const lower = name.toLowerCase()
    if (value === undefined || NEVER_STORED.has(lower) || drop.has(lower) || connection.has(lower))
      continue
    if (Array.isArray(value)) for (const v of value) out.push([lower, String(v)])
    else out.push([lower, String(value)])
  }
  return out
}

function listValues(value: OutgoingHttpHeaders[string]): Set<string> {
  if (value === undefined) return new Set()
  const joined = Array.isArray(value) ? value.join(',') : String(value)
  return new Set(
    joined
      .split(',')
      .map((s) => s.trim().toLowerCase())
      .filter(Boolean),
  )
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
 * Accept-Encoding members are unordered and case-insensitive, so "gzip, br" and "BR,gzip" select the
 * same variant: content-codings are case-insensitive (RFC 9110 §8.4.1) and are ranked by qvalue
 * (RFC 9110 §12.5.3).
 */
const UNORDERED_LISTS = new Set(['accept-encoding'])

/**
 * Lists ranked by qvalue where, between equal qvalues, the order is a preference too (RFC 9110
 * §12.5.4; Express's negotiator breaks ties on it): "en, fr" and "fr, en" are different requests,
 * "en, fr;q=0.5" and "fr;q=0.5, en" are not. The flag says whether tokens are case-insensitive
 * (charsets, RFC 9110 §8.3.2; language tags, RFC 5646 §2.1.1); media type parameters may not be.
 */
const RANKED_LISTS = new Map([
  ['accept', false],
  ['accept-charset', true],
  ['accept-language', true],
])

/** qvalue (RFC 9110 §12.4.2). */
const QVALUE = /^(?:0(?:\.\d{0,3})?|1(?:\.0{0,3})?)$/

/**
 * Normalises a request header value for use in a cache key, as RFC 9111 §4.1 allows: whitespace
 * around list separators and parameters is insignificant and repeated field lines combine into one
 * list; Accept-Encoding members are unordered; members of the other Accept-* lists are ordered by
 * qvalue, keeping their order between equal qvalues.
 */
export function normalizeForVary(name: string, value: string | undefined): string | null {
  if (value === undefined) return null
  // RFC 9111 §4.1: removing whitespace where the field's syntax allows it (around list commas and
  // parameter semicolons, RFC 9110 §5.6.1, §5.6.6) keeps the same variant.
  const members = value.split(',').map((m) =>
    m
      .trim()
      .replace(/\s*;\s*/g, ';')
      .replace(/\s+/g, ' '),
  )
  if (UNORDERED_LISTS.has(name)) {
    // RFC 9110 §5.6.1: empty list elements are ignored.
    return members
      .filter(Boolean)
      .map((m) => m.toLowerCase())
      .sort()
      .join(',')
  }
  const caseInsensitive = RANKED_LISTS.get(name)
  if (caseInsensitive !== undefined) {
    const ranked = byQvalue(members.filter(Boolean))
    if (ranked !== undefined)
      return ranked.map((m) => (caseInsensitive ? m.toLowerCase() : m)).join(',')
  }
  return members.join(',')
}

/** Members in descending qvalue, stable; undefined when a qvalue is malformed (then order is kept as sent). */
function byQvalue(members: string[]): string[] | undefined {
  const weighted: { member: string; q: number }[] = []
  for (const member of members) {
    const weight = /;q=([^;]*)/i.exec(member)?.[1]
    if (weight !== undefined && !QVALUE.test(weight)) return undefined
    weighted.push({ member, q: weight === undefined ? 1 : Number(weight) })
  }
  // Array.prototype.sort is stable: equal qvalues keep the order the client sent.
  return weighted.sort((a, b) => b.q - a.q).map((w) => w.member)
}

/** Field names listed in a Vary header, lower-case and sorted; '*' kept as is. */
export function parseVary(value: string | undefined): string[] {
  if (value === undefined) return []
  return [
    ...new Set(
      value
        .split(',')
        .map((s) => s.trim().toLowerCase())
        .filter(Boolean),
    ),
  ].sort()
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']
// Sun, 06 Nov 1994 08:49:37 GMT
const IMF_FIXDATE =
  /^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), (\d{2}) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) (\d{4}) (\d{2}):(\d{2}):(\d{2}) GMT$/
// Sunday, 06-Nov-94 08:49:37 GMT
const RFC850_DATE =
  /^(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday), (\d{2})-(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)-(\d{2}) (\d{2}):(\d{2}):(\d{2}) GMT$/
// Sun Nov  6 08:49:37 1994
const ASCTIME_DATE =
  /^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) ( \d|\d{2}) (\d{2}):(\d{2}):(\d{2}) (\d{4})$/

/**
 * Parses an HTTP-date (RFC 9110 §5.6.7): IMF-fixdate, or the obsolete RFC 850 and asctime formats
 * that recipients must also accept; case-sensitive, always GMT. Returns epoch milliseconds, or
 * undefined for anything else. `Date.parse` is not used: it accepts "0", "3000" or "12/25/2030",
 * which Expires must treat as already expired (RFC 9111 §5.3) and If-Modified-Since must ignore
 * (RFC 9110 §13.1.3).
 */
export function parseHttpDate(value: string | undefined, now = Date.now()): number | undefined {
  if (value === undefined) return undefined
  const text = value.trim()
  let m = IMF_FIXDATE.exec(text)
  if (m) return utc(Number(m[3]), m[2], Number(m[1]), m[4], m[5], m[6])
  m = RFC850_DATE.exec(text)
  if (m) {
    // RFC 9110 §5.6.7: a two-digit year more than 50 years in the future is in the past century.
    const current = new Date(now).getUTCFullYear()
    let year = current - (current % 100) + Number(m[3])
    if (year > current + 50) year -= 100
    return utc(year, m[2], Number(m[1]), m[4], m[5], m[6])
  }
  m = ASCTIME_DATE.exec(text)
  if (m) return utc(Number(m[6]), m[1], Number(m[2]), m[3], m[4], m[5])
  return undefined
}

function utc(
  year: number,
  monthName: string | undefined,
  day: number,
  h?: string,
  mi?: string,
  s?: string,
): number | undefined {
  const month = MONTHS.indexOf(monthName ?? '')
  const hour = Number(h)
  const minute = Number(mi)
  const second = Number(s)
  // 60 allows a leap second (RFC 9110 §5.6.7).
  if (month < 0 || hour > 23 || minute > 59 || second > 60) return undefined
  const date = new Date(0)
  date.setUTCFullYear(year, month, day)
  // Rejects days the month does not have (31 Nov, 29 Feb 2023).
  if (date.getUTCMonth() !== month || date.getUTCDate() !== day) return undefined
  date.setUTCHours(hour, minute, second, 0)
  return date.getTime()
}

/** A stored header list as Node's outgoing headers: repeated field lines become an array. */
export function headersFromList(list: HeaderList): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {}
  for (const [name, value] of list) {
    const prev = out[name]
    out[name] =
      prev === undefined ? value : Array.isArray(prev) ? [...prev, value] : [String(prev), value]
  }
  return out
}
