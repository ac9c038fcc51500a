/** Parsed Cache-Control directives: lower-case names; a value when one was given, else true. */
export type Directives = ReadonlyMap<string, string | true>

const EMPTY: Directives = new Map()

/**
 * Parses Cache-Control (RFC 9111 §5.2): a comma-separated list of `name[=token|"quoted"]`; repeated
 * field lines combine. Quoted values may contain commas (`no-cache="set-cookie, x-a"`).
 */
export function parseCacheControl(value: string | number | readonly string[] | undefined): Directives {
  if (value === undefined) return EMPTY
  const text = Array.isArray(value) ? value.join(',') : String(value)
  if (text === '') return EMPTY
  const out = new Map<string, string | true>()
  // Split on commas outside quoted strings; a malformed member is skipped, not fatal.
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
    if (!/^[!#$%&'*+.^_`|~\w-]+$/.test(name)) continue
    let value: string | true = true
    if (eq !== -1) {
      const raw = member.slice(eq + 1).trim()
      value = raw.startsWith('"') ? raw.slice(1, raw.endsWith('"') ? -1 : undefined).replace(/\\(.)/g, '$1') : raw
    }
    // First occurrence wins when a directive repeats; RFC 9111 §4.2.1 treats conflicts as stale.
    if (!out.has(name)) out.set(name, value)
  }
  return out
}

/** A delta-seconds directive value (RFC 9111 §1.2.2), or undefined when absent or invalid. */
export function deltaSeconds(d: Directives, name: string): number | undefined {
  const v = d.get(name)
  if (typeof v !== 'string' || !/^\d+$/.test(v)) return undefined
  // Values beyond 2^31 mean "a very long time" (RFC 9111 §1.2.2).
  return Math.min(Number(v), 2_147_483_648)
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
