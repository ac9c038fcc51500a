#!/usr/bin/env node
// Runs the whole test suite with node's test runner (tsx loads the TypeScript). Node 20's runner
// takes no globs, so the files are listed here. `npm test -- test/http` narrows to a folder or file.
import { spawnSync } from 'node:child_process'
import { readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'

const roots = process.argv.slice(2).filter((a) => !a.startsWith('-'))
const flags = process.argv.slice(2).filter((a) => a.startsWith('-'))
const skip = new Set(['soak', 'fixtures', 'helpers', 'package'])

function collect(path, out) {
  if (statSync(path).isFile()) {
    if (path.endsWith('.test.ts')) out.push(path)
    return out
  }
  for (const name of readdirSync(path).sort()) {
    if (skip.has(name) && roots.length === 0) continue
    collect(join(path, name), out)
  }
  return out
}

const files = (roots.length > 0 ? roots : ['test']).flatMap((r) => collect(r, []))
if (files.length === 0) {
  console.error('no test files found')
  process.exit(1)
}
const result = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-concurrency=2', '--test-reporter=spec', ...flags, ...files],
  { stdio: 'inherit', env: { ...process.env, NODE_ENV: 'test', MEMCACHIER_SERVERS: '', MEMCACHE_USERNAME: '', MEMCACHE_PASSWORD: '', MEMCACHIER_USERNAME: '', MEMCACHIER_PASSWORD: '' } },
)
process.exit(result.status ?? 1)
