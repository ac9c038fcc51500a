#!/usr/bin/env node
// The long, seedable property run of the middleware (test/property/run.ts):
//   PROPERTY_RUNS=2000 PROPERTY_SEED=42 npm run test:property
// It prints the seed it used, so any failure can be replayed. The CI suite runs a short version
// (test/property/middleware.test.ts).
import { spawnSync } from 'node:child_process'
import { testEnv } from './test-env.mjs'

const result = spawnSync(process.execPath, ['--import', 'tsx', 'test/property/run.ts'], {
  stdio: 'inherit',
  env: testEnv(),
})
process.exit(result.status ?? 1)
