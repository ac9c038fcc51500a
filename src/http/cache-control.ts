/** Parsed Cache-Control directives: lower-case names; a value when one was given, else true. */
export type Directives = ReadonlyMap<string, string | true>

const EMPTY: Directives = new Map()

/** token (RFC 9110 §5.6.2). */
const TOKEN = /^[!#$%&'*+.^_`|~\w-]+$/

/** Largest delta-seconds a cache needs to represent; larger values mean it (RFC 9111 §1.2.2). */
export const MAX_DELTA_SECONDS = 2_147_483_648

/**
 * Parses Cache-Control (RFC 9111 §5.2): a comma-separated list of `name[=token|"quoted"]`; repeated
 * field lines combine into one list (RFC 9110 §5.3). Quoted values may contain commas
 * (`no-cache="set-cookie, x-a"`) and backslash escapes (RFC 9110 §5.6.4). A member whose name is
 * not a token is skipped. A member with a valid name but an unparsable value (an unterminated
 * quoted-string, or text after the closing quote) keeps its name without a value: for `no-cache`
 * and `private` that is the stricter, unqualified form, and a bare `max-age` is invalid freshness
 * information, which RFC 9111 §4.2.1 encourages treating as stale.
 */
export function parseCacheControl(
  value: string | number | readonly string[] | undefined,
): Directives {
  if (value === undefined) return EMPTY
  const text = Array.isArray(value) ? value.join(',') : String(value)
  if (text === '') return EMPTY
  const out = new Map<string, string | true>()
  // Split on commas outside quoted strings.
  let i = 0
  while (i < text.length) {
    let j = i
    let quoted = false
    while (j < text.length && (quoted || text[j] !== ',')) {
      if (text[j] === '\\' && quoted) j++
      else if (text[j] === '"') quoted = !quoted
      j++
    }
    const member = text.slice(i, j).trim()
    i = j + 1
    const eq = member.indexOf('=')
    const name = (eq === -1 ? member : member.slice(0, eq)).trim().toLowerCase()
    if (!TOKEN.test(name)) continue
    const value = eq === -1 ? true : directiveValue(member.slice(eq + 1).trim())
    // RFC 9111 §4.2.1: when a directive repeats, the first occurrence is used.
    if (!out.has(name)) out.set(name, value)
  }
  return out
}

/** A directive argument: a token, or a quoted-string unescaped (RFC 9111 §5.2; RFC 9110 §5.6.4). */
function directiveValue(raw: string): string | true {
  if (!raw.startsWith('"')) return raw
  let out = ''
  for (let k = 1; k < raw.length; k++) {
    const c = raw[k]
    if (c === '\\') {
      k++
      if (k >= raw.length) return true
      out += raw[k]
    } else if (c === '"') {
      // Anything after the closing quote makes the member malformed.
      return raw.slice(k + 1).trim() === '' ? out : true
    } else {
      out += c
    }
  }
  return true // unterminated
}

/**
 * Parses delta-seconds (RFC 9111 §1.2.2): a non-negative decimal integer; values beyond 2^31 are
 * capped at 2^31 ("a very long time"). Undefined when absent or not delta-seconds.
 */
export function parseDeltaSeconds(text: string | undefined): number | undefined {
  if (text === undefined || !/^\d+$/.test(text)) return undefined
  return Math.min(Number(text), MAX_DELTA_SECONDS)
}

/** A delta-seconds directive value (RFC 9111 §1.2.2), or undefined when absent or invalid. */
export function deltaSeconds(d: Directives, name: string): number | undefined {
  const v = d.get(name)
  return typeof v === 'string' ? parseDeltaSeconds(v) : undefined
}

/** Field names listed in a qualified `no-cache="…"` / `private="…"` directive (RFC 9111 §5.2.2.4, §5.2.2.7). */
export function fieldNames(d: Directives, name: string): string[] {
  const v = d.get(name)
  if (typeof v !== 'string') return []
  return v
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean)
}
