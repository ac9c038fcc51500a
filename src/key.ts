import { createHash } from 'node:crypto'
import type { Request } from 'express'
import { normalizeForVary, requestHeader } from './http/headers.js'

/**
 * Version of the key layout and of the entry format: bump it when either changes, so a deploy never
 * reads values written by an incompatible version (they simply become misses).
 */
export const FORMAT_VERSION = 2

const hash = (parts: unknown): string =>
  createHash('sha256').update(JSON.stringify(parts)).digest('base64url')

/**
 * Sorted, re-encoded query string: `?b=2&a=1` and `?a=1&b=2` share an entry. Values of a repeated
 * name keep their order, since `?a=1&a=2` and `?a=2&a=1` may mean different things to the app.
 *
 * Each name and value is form-decoded to bytes (`+` is a space, `%XX` a byte, as req.query and
 * URLSearchParams read them; RFC 3986 §6.2.2.2 makes `%41` and `A` equivalent too) and re-encoded
 * the way URLSearchParams serialises. Unlike a round trip through URLSearchParams, no byte is lost:
 * it decodes invalid UTF-8 such as `%FF` and `%FE` to the same U+FFFD, which would let two different
 * URLs share an entry.
 */
export function canonicalQuery(search: string): string {
  const text = search.startsWith('?') ? search.slice(1) : search
  if (text === '') return ''
  const pairs: [name: Buffer, value: Buffer][] = []
  for (const part of text.split('&')) {
    if (part === '') continue
    const eq = part.indexOf('=')
    pairs.push(
      eq === -1
        ? [formBytes(part), Buffer.alloc(0)]
        : [formBytes(part.slice(0, eq)), formBytes(part.slice(eq + 1))],
    )
  }
  // Array.prototype.sort is stable: values of a repeated name keep their order.
  pairs.sort((x, y) => Buffer.compare(x[0], y[0]))
  return pairs.map(([name, value]) => `${formEncode(name)}=${formEncode(value)}`).join('&')
}

/** application/x-www-form-urlencoded decoding to bytes; a `%` not followed by two hex digits is literal. */
function formBytes(raw: string): Buffer {
  const parts: Buffer[] = []
  let text = ''
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i]
    const hex = c === '%' ? raw.slice(i + 1, i + 3) : ''
    if (/^[0-9A-Fa-f]{2}$/.test(hex)) {
      parts.push(Buffer.from(text, 'utf8'), Buffer.of(Number.parseInt(hex, 16)))
      text = ''
      i += 2
    } else {
      text += c === '+' ? ' ' : c
    }
  }
  parts.push(Buffer.from(text, 'utf8'))
  return Buffer.concat(parts)
}

/** The urlencoded byte serializer (WHATWG URL): `*-._`, digits and letters as is, space as `+`. */
function formEncode(bytes: Buffer): string {
  let out = ''
  for (const b of bytes) {
    if (
      b === 0x2a ||
      b === 0x2d ||
      b === 0x2e ||
      b === 0x5f ||
      (b >= 0x30 && b <= 0x39) ||
      (b >= 0x41 && b <= 0x5a) ||
      (b >= 0x61 && b <= 0x7a)
    ) {
      out += String.fromCharCode(b)
    } else if (b === 0x20) out += '+'
    else out += `%${b.toString(16).toUpperCase().padStart(2, '0')}`
  }
  return out
}

/** What identifies a resource before content negotiation: host, path, query and the custom part. */
export interface ResourceId {
  /** 'http' or 'https' (req.protocol, which honours `trust proxy`); absent means 'http'. */
  readonly scheme?: string
  readonly host: string
  readonly path: string
  readonly query: string
  readonly custom: string | undefined
}

/** The path of the request's target, as sent (percent-encoded), without the query. */
export function pathOf(req: Request): string {
  const url = req.originalUrl || req.url || '/'
  const q = url.indexOf('?')
  return q === -1 ? url : url.slice(0, q)
}

export function resourceId(req: Request, custom: string | undefined): ResourceId {
  const url = req.originalUrl || req.url || '/'
  const q = url.indexOf('?')
  return {
    // An http→https redirect must never answer https requests (RFC 9110 §4.2: distinct origins).
    scheme: req.protocol || 'http',
    // req.hostname honours `trust proxy`: an untrusted X-Forwarded-Host never reaches the key.
    host: (req.hostname || '').toLowerCase(),
    path: q === -1 ? url : url.slice(0, q),
    query: q === -1 ? '' : canonicalQuery(url.slice(q)),
    custom,
  }
}

/**
 * A bounded memo: once full it starts over, which costs nothing per hit (no LRU bookkeeping) and
 * keeps memory bounded under a flood of unique URLs.
 */
export class BoundedMemo<V> {
  private map = new Map<string, V>()
  constructor(private readonly max: number) {}
  get(key: string): V | undefined {
    return this.map.get(key)
  }
  set(key: string, value: V): void {
    if (this.map.size >= this.max) this.map = new Map()
    this.map.set(key, value)
  }
  delete(key: string): void {
    this.map.delete(key)
  }
  clear(): void {
    this.map.clear()
  }
}

/** The tag of every entry of a path, whatever its host, scheme, query, custom key or variant. */
export const pathTag = (path: string): string => `path:${path}`

/** What the cache needs to know of a request's resource: its primary key and its path. */
export interface Resource {
  readonly primary: string
  readonly path: string
  /** The tags of a render of this resource on a route without `tags`: its path tag. */
  readonly pathTags: readonly string[]
}

/**
 * Resources by the raw parts of a request that decide them: cache prefix, then scheme and host,
 * then URL (and custom key). Nested maps keyed on the strings the HTTP parser made, so a hit
 * builds no key string. Bounded like {@link BoundedMemo}: past `max` resources it starts over.
 */
class ResourceMemo {
  private byPrefix = new Map<string, Map<string, Map<string, Resource>>>()
  private size = 0
  constructor(private readonly max: number) {}

  get(prefix: string, origin: string, url: string): Resource | undefined {
    return this.byPrefix.get(prefix)?.get(origin)?.get(url)
  }

  set(prefix: string, origin: string, url: string, resource: Resource): void {
    if (this.size >= this.max) {
      this.byPrefix = new Map()
      this.size = 0
    }
    let origins = this.byPrefix.get(prefix)
    if (origins === undefined) {
      origins = new Map()
      this.byPrefix.set(prefix, origins)
    }
    let urls = origins.get(origin)
    if (urls === undefined) {
      urls = new Map()
      origins.set(origin, urls)
    }
    if (!urls.has(url)) this.size++
    urls.set(url, resource)
  }
}

const resources = new ResourceMemo(10_000)

/**
 * What decides a request's scheme and host, as a memo key. Express's `req.protocol` and
 * `req.hostname` getters consult `trust proxy` on every call; without X-Forwarded-Proto and
 * X-Forwarded-Host they can only answer from the socket and the Host field, so those raw values
 * key the memo (the resource itself is still built from the getters, once). The three forms never
 * collide: a Host field holds no newline (the HTTP parser rejects it), and each form starts with
 * its own marker.
 */
function origin(req: Request): string {
  const h = req.headers
  if (
    h['x-forwarded-proto'] === undefined &&
    h['x-forwarded-host'] === undefined &&
    !Object.hasOwn(req, 'protocol') &&
    !Object.hasOwn(req, 'hostname')
  ) {
    const host = h.host ?? ''
    return (req.socket as { encrypted?: boolean } | undefined)?.encrypted === true
      ? `s\n${host}`
      : host
  }
  return `e\n${req.protocol || 'http'}\n${req.hostname || ''}`
}

/**
 * The primary key and path of a request, memoised on the raw request parts: a hot URL costs three
 * Map lookups instead of a query canonicalisation and a SHA-256.
 */
export function resourceFor(req: Request, prefix: string, custom: string | undefined): Resource {
  const url = req.originalUrl || req.url || '/'
  const at = origin(req)
  // No field but the last can hold a newline (the HTTP parser rejects them in URLs).
  const target = custom === undefined ? url : `${url}\n${custom}`
  let found = resources.get(prefix, at, target)
  if (found === undefined) {
    const id = resourceId(req, custom)
    found = {
      primary: primaryKey(prefix, id),
      path: id.path,
      pathTags: Object.freeze([pathTag(id.path)]),
    }
    resources.set(prefix, at, target, found)
  }
  return found
}

const variants = new BoundedMemo<string>(10_000)

/** variantKey, memoised: a Vary hit computes no SHA-256 either. */
export function variantKeyFor(
  primary: string,
  names: readonly string[],
  values: readonly (string | null)[],
): string {
  const raw = JSON.stringify([primary, names, values])
  let key = variants.get(raw)
  if (key === undefined) {
    key = variantKey(primary, names, values)
    variants.set(raw, key)
  }
  return key
}

/**
 * The primary key of a resource. GET and HEAD share it (HEAD is answered from the GET entry). The
 * parts are JSON-encoded before hashing, so no choice of path or query can forge another resource's
 * key, and SHA-256 keeps any URL within memcached's 250-byte key limit.
 */
export function primaryKey(prefix: string, id: ResourceId): string {
  return `${prefix}:${FORMAT_VERSION}:${hash([id.scheme ?? 'http', id.host, id.path, id.query, id.custom ?? null])}`
}

/** The request's normalised values of the given (sorted, lower-case) header names. */
export function varyValues(req: Request, names: readonly string[]): (string | null)[] {
  return names.map((n) => normalizeForVary(n, requestHeader(req.headers, n)))
}

/** Key of the variant selected by these header values; a `~` suffix keeps it on the primary's server. */
export function variantKey(
  primary: string,
  names: readonly string[],
  values: readonly (string | null)[],
): string {
  return `${primary}~v${hash([names, values])}`
}

/** Key of the mint lock guarding an entry key. */
export function lockKey(entryKey: string): string {
  return `${entryKey}~lock`
}
