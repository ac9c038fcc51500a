#!/usr/bin/env node
// Runs the fault-injection tests (test/faults/*.test.ts) with FAULT_REPORT set, then prints what each
// scenario measured as a Markdown table. Exits with the test run's status.
//   node scripts/fault-report.mjs [test/faults/cluster.test.ts ...] [--test-concurrency=N]
// "wrong" counts wrong bodies or statuses plus requests that got no answer at all.
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { testEnv } from './test-env.mjs'

const args = process.argv.slice(2)
const flags = args.filter((a) => a.startsWith('-'))
const named = args.filter((a) => !a.startsWith('-'))
const files =
  named.length > 0
    ? named
    : readdirSync('test/faults')
        .filter((f) => f.endsWith('.test.ts'))
        .sort()
        .map((f) => join('test/faults', f))

const dir = mkdtempSync(join(tmpdir(), 'fault-report-'))
const report = join(dir, 'rows.jsonl')
const result = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-concurrency=1', '--test-reporter=dot', ...flags, ...files],
  {
    stdio: 'inherit',
    env: testEnv({ FAULT_REPORT: report }),
  },
)

let rows = []
try {
  rows = readFileSync(report, 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line))
} catch {
  // No scenario recorded a row.
}
rmSync(dir, { recursive: true, force: true })

const cell = (v) => String(v).replaceAll('|', '\\|')
const lines = [
  '| scenario | requests | wrong | 5xx | max latency ms |',
  '|---|---:|---:|---:|---:|',
  ...rows.map(
    (r) => `| ${cell(r.scenario)} | ${r.requests} | ${r.wrong} | ${r['5xx']} | ${r.maxLatencyMs} |`,
  ),
]
console.log(`\n${lines.join('\n')}\n`)
if (rows.length === 0) console.log('(no scenario recorded a row)')
process.exit(result.status ?? 1)
