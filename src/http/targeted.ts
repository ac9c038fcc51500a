import type { OutgoingHttpHeaders } from 'node:http'
import type { Directives } from './cache-control.js'

/** A Structured Field bare item (RFC 8941 §3.3), as far as cache directives need it. */
type Item =
  | { readonly type: 'integer'; readonly value: number }
  | { readonly type: 'boolean'; readonly value: boolean }
  | { readonly type: 'other'; readonly value: string }

/** Directives whose value must be an Integer (RFC 9213 §2.1: same meaning as in Cache-Control). */
const INTEGER_DIRECTIVES = new Set([
  'max-age',
  's-maxage',
  'stale-while-revalidate',
  'stale-if-error',
])

/**
 * The directives of the first targeted cache-control field, in this cache's list order, with a
 * valid, non-empty value (RFC 9213 §2.2); undefined when there is none, and Cache-Control and
 * Expires apply.
 */
export function targetedDirectives(
  headers: OutgoingHttpHeaders,
  fields: readonly string[],
): Directives | undefined {
  for (const field of fields) {
    const raw = headers[field]
    if (raw === undefined) continue
    // RFC 8941 §4.2: repeated field lines combine into one list.
    const text = Array.isArray(raw) ? raw.join(', ') : String(raw)
    const directives = text.trim() === '' ? undefined : parseTargeted(text)
    if (directives !== undefined) return directives
  }
  return undefined
}

/**
 * Parses a targeted field (RFC 9213 §2.1) as a Structured Field Dictionary (RFC 8941 §4.2.2) into
 * cache directives: an Integer becomes its decimal text, true a bare name; `?0` drops the directive.
 * Undefined when the dictionary is invalid, or a lifetime directive is not a non-negative Integer.
 */
export function parseTargeted(text: string): Directives | undefined {
  const dict = parseDictionary(text)
  if (dict === undefined) return undefined
  const out = new Map<string, string | true>()
  for (const [name, item] of dict) {
    if (INTEGER_DIRECTIVES.has(name) && (item.type !== 'integer' || item.value < 0))
      return undefined
    if (item.type === 'integer') out.set(name, String(item.value))
    else if (item.type === 'boolean') {
      if (item.value) out.set(name, true)
    } else out.set(name, item.value)
  }
  return out
}

const KEY_START = /[a-z*]/
const KEY_CHAR = /[a-z0-9_\-.*]/
const TCHAR = /[!#$%&'*+\-.^_`|~0-9A-Za-z:/]/

/** RFC 8941 §4.2.2; parameters are parsed for validity and dropped. Last duplicate key wins. */
function parseDictionary(input: string): Map<string, Item> | undefined {
  const s = input.replace(/^ +| +$/g, '')
  const out = new Map<string, Item>()
  let i = 0
  const key = (): string | undefined => {
    if (!KEY_START.test(s[i] ?? '')) return undefined
    const start = i
    while (i < s.length && KEY_CHAR.test(s[i] as string)) i++
    return s.slice(start, i)
  }
  const bareItem = (): Item | undefined => {
    const c = s[i] ?? ''
    if (c === '-' || /\d/.test(c)) {
      const m = /^-?\d{1,15}(\.\d{1,3})?/.exec(s.slice(i))
      if (!m) return undefined
      i += m[0].length
      if (m[1] !== undefined) return { type: 'other', value: m[0] }
      // RFC 8941 §4.2.4: an integer has at most 15 digits; a decimal point after 12 is invalid.
      if (s[i] === '.') return undefined
      return { type: 'integer', value: Number(m[0]) }
    }
    if (c === '"') {
      let value = ''
      for (i++; i < s.length; i++) {
        const ch = s[i] as string
        if (ch === '\\') {
          const next = s[++i]
          if (next !== '"' && next !== '\\') return undefined
          value += next
        } else if (ch === '"') {
          i++
          return { type: 'other', value }
        } else if (ch < ' ' || ch > '~') return undefined
        else value += ch
      }
      return undefined
    }
    if (c === '?') {
      const b = s[i + 1]
      if (b !== '0' && b !== '1') return undefined
      i += 2
      return { type: 'boolean', value: b === '1' }
    }
    if (c === ':') {
      const end = s.indexOf(':', i + 1)
      if (end === -1 || !/^[A-Za-z0-9+/=]*$/.test(s.slice(i + 1, end))) return undefined
      const value = s.slice(i, end + 1)
      i = end + 1
      return { type: 'other', value }
    }
    if (c === '*' || /[A-Za-z]/.test(c)) {
      const start = i
      while (i < s.length && TCHAR.test(s[i] as string)) i++
      return { type: 'other', value: s.slice(start, i) }
    }
    return undefined
  }
  const parameters = (): boolean => {
    while (s[i] === ';') {
      i++
      while (s[i] === ' ') i++
      if (key() === undefined) return false
      if (s[i] === '=') {
        i++
        if (bareItem() === undefined) return false
      }
    }
    return true
  }
  while (i < s.length) {
    const name = key()
    if (name === undefined) return undefined
    let item: Item = { type: 'boolean', value: true }
    if (s[i] === '=') {
      i++
      // Inner lists are not cache directive values.
      const parsed = bareItem()
      if (parsed === undefined) return undefined
      item = parsed
    }
    if (!parameters()) return undefined
    out.set(name, item)
    while (s[i] === ' ' || s[i] === '\t') i++
    if (i >= s.length) return out
    if (s[i] !== ',') return undefined
    i++
    while (s[i] === ' ' || s[i] === '\t') i++
    if (i >= s.length) return undefined // trailing comma
  }
  return out
}
