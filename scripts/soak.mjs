#!/usr/bin/env node
// Runs the soak test (test/soak/soak.test.ts; not part of `npm test`): several app processes on three
// memcached servers, mixed traffic, a fault every 10 s. Prints one summary line.
//   node scripts/soak.mjs [seconds]        or SOAK_SECONDS=60 node scripts/soak.mjs
// SOAK_SECONDS defaults to 120 (bounded to 10..3600); SOAK_WORKERS 2..4 (default 3); SOAK_SEED.
import { spawnSync } from 'node:child_process'
import { testEnv } from './test-env.mjs'

const arg = process.argv.slice(2).find((a) => /^\d+$/.test(a))
const env = testEnv()
if (arg !== undefined) env.SOAK_SECONDS = arg
const result = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test-reporter=spec', 'test/soak/soak.test.ts'],
  { stdio: 'inherit', env },
)
process.exit(result.status ?? 1)
