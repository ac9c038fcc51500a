/**
 * The library as npm ships it: dist/, which `npm run bench` builds first. Its types come from the
 * source (dist/ may not exist when the project is type-checked); the code is the built one, since
 * src/ run through tsx is measurably slower than what users install.
 */
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type * as Library from '../../src/index.js'

const DIST = new URL('../../dist/index.js', import.meta.url)
if (!existsSync(fileURLToPath(DIST))) {
  throw new Error(
    'bench: dist/ is missing; run `npm run bench` (it builds first) or `npm run build`',
  )
}

export const { MemcachedStore, MemoryStore, responseCache } = (await import(
  DIST.href
)) as typeof Library
