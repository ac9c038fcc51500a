/**
 * What the soak origin answers for a URL, derived from the URL alone, so the client can verify every
 * body it gets (whoever rendered it, whenever, and whether it came from the cache or not).
 */
import { createHash } from 'node:crypto'

export const sha256 = (data: string | Buffer): string =>
  createHash('sha256').update(data).digest('hex')

/** Body for a resource name (the URL path, plus `|lang` for the varied route): 64 B to ~40 KB. */
export function soakBody(name: string): string {
  const digest = sha256(name)
  const size = 64 + (Number.parseInt(digest.slice(0, 8), 16) % 40_000)
  const unit = `${name} ${digest}\n`
  return unit.repeat(Math.ceil(size / unit.length)).slice(0, size)
}

/** Strong ETag of a body. */
export const etagOf = (body: string): string => `"${sha256(body).slice(0, 32)}"`

/** Freshness of a path: 1 to 3 s, so entries go stale and expire constantly. */
export function maxAgeOf(name: string): number {
  return 1 + (Number.parseInt(sha256(`ttl${name}`).slice(0, 4), 16) % 3)
}
