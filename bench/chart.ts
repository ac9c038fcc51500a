/**
 * Redraws the peer benchmark's chart from its results.json, without measuring again (after a change
 * to ./lib/chart.ts, say): reads BENCH_OUT_DIR/results.json (default docs/bench) and writes
 * chart.svg beside it.
 *
 * Run: npm run bench chart
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { type ChartSource, chartFromResults } from './lib/chart.js'

const dir = process.env.BENCH_OUT_DIR ?? fileURLToPath(new URL('../docs/bench', import.meta.url))
const source = JSON.parse(readFileSync(join(dir, 'results.json'), 'utf8')) as ChartSource
const chart = chartFromResults(source)
if (chart === undefined) {
  console.error(`${join(dir, 'results.json')} holds no throughput results: nothing to draw`)
  process.exit(1)
}
writeFileSync(join(dir, 'chart.svg'), chart)
process.stdout.write(`Redrew ${join(dir, 'chart.svg')} from results.json.\n`)
