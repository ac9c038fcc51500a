import { createHash } from 'node:crypto'
import type { Request } from 'express'
import { normalizeForVary, requestHeader } from './http/headers.js'

/**
 * Version of the key layout and of the entry format: bump it when either changes, so a deploy never
 * reads values written by an incompatible version (they simply become misses).
 */
export const FORMAT_VERSION = 1

const hash = (parts: unknown): string =>
  createHash('sha256').update(JSON.stringify(parts)).digest('base64url')

/**
 * Sorted, re-encoded query string: `?b=2&a=1` and `?a=1&b=2` share an entry. Values of a repeated
 * name keep their order, since `?a=1&a=2` and `?a=2&a=1` may mean different things to the app.
 */
export function canonicalQuery(search: string): string {
  if (search === '' || search === '?') return ''
  const params = [...new URLSearchParams(search)]
  params.sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0))
  return new URLSearchParams(params).toString()
}

/** What identifies a resource before content negotiation: host, path, query and the custom part. */
export interface ResourceId {
  readonly host: string
  readonly path: string
  readonly query: string
  readonly custom: string | undefined
}

export function resourceId(req: Request, custom: string | undefined): ResourceId {
  const url = req.originalUrl || req.url || '/'
  const q = url.indexOf('?')
  return {
    // req.hostname honours `trust proxy`: an untrusted X-Forwarded-Host never reaches the key.
    host: (req.hostname || '').toLowerCase(),
    path: q === -1 ? url : url.slice(0, q),
    query: q === -1 ? '' : canonicalQuery(url.slice(q)),
    custom,
  }
}

/**
 * The primary key of a resource. GET and HEAD share it (HEAD is answered from the GET entry). The
 * parts are JSON-encoded before hashing, so no choice of path or query can forge another resource's
 * key, and SHA-256 keeps any URL within memcached's 250-byte key limit.
 */
export function primaryKey(prefix: string, id: ResourceId): string {
  return `${prefix}:${FORMAT_VERSION}:${hash([id.host, id.path, id.query, id.custom ?? null])}`
}

/** The request's normalised values of the given (sorted, lower-case) header names. */
export function varyValues(req: Request, names: readonly string[]): (string | null)[] {
  return names.map((n) => normalizeForVary(n, requestHeader(req.headers, n)))
}

/** Key of the variant selected by these header values; a `~` suffix keeps it on the primary's server. */
export function variantKey(primary: string, names: readonly string[], values: readonly (string | null)[]): string {
  return `${primary}~v${hash([names, values])}`
}

/** Key of the mint lock guarding an entry key. */
export function lockKey(entryKey: string): string {
  return `${entryKey}~lock`
}
