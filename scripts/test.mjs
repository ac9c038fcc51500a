#!/usr/bin/env node
// Runs the whole test suite with node's test runner (tsx loads the TypeScript). Node 20's runner
// takes no globs, so the files are listed here. `npm test -- test/http` narrows to a folder or file.
import { spawnSync } from 'node:child_process'
import { readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { testEnv } from './test-env.mjs'

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

/**
 * The suite runs against real memcached processes it starts itself. On a fresh machine where the
 * binary is missing, install Debian's package when we may (root with apt-get); otherwise say how.
 */
function ensureMemcached() {
  if (process.env.MEMCACHED_BIN) return
  const found = spawnSync('sh', ['-c', 'command -v memcached'], { encoding: 'utf8' })
  if (found.status === 0) return
  const root = typeof process.getuid === 'function' && process.getuid() === 0
  const apt = spawnSync('sh', ['-c', 'command -v apt-get'], { encoding: 'utf8' }).status === 0
  if (root && apt) {
    console.log(
      'memcached is not installed: installing it from Debian packages (apt-get install memcached)',
    )
    const r = spawnSync(
      'sh',
      [
        '-c',
        'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq memcached',
      ],
      {
        stdio: 'inherit',
      },
    )
    if (r.status === 0) return
  }
  console.error(
    'The tests need a memcached binary (they start their own servers on free ports).\n' +
      'Install it (Debian/Ubuntu: sudo apt-get install memcached; macOS: brew install memcached) or set MEMCACHED_BIN.',
  )
  process.exit(1)
}
ensureMemcached()

const files = (roots.length > 0 ? roots : ['test']).flatMap((r) => collect(r, []))
if (files.length === 0) {
  console.error('no test files found')
  process.exit(1)
}
const result = spawnSync(
  process.execPath,
  [
    '--import',
    'tsx',
    '--test',
    '--test-concurrency=2',
    '--test-reporter=spec',
    '--test-timeout=120000',
    ...flags,
    ...files,
  ],
  {
    stdio: 'inherit',
    env: testEnv(),
  },
)
process.exit(result.status ?? 1)
