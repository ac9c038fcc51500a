/**
 * The long property run, for `npm run test:property`: PROPERTY_RUNS scenarios (default 500) per
 * Express major from PROPERTY_SEED (default: a fresh one, printed so a failure can be replayed).
 * Exits 1 when an invariant fails, after printing the shrunk counterexample and its violations.
 */
import fc from 'fast-check'
import { EXPRESS_VERSIONS } from '../helpers/express.js'
import { EXAMPLES } from './examples.js'
import { harness, middlewareProperty } from './harness.js'

const runs = Number(process.env.PROPERTY_RUNS ?? 500)
const seed =
  process.env.PROPERTY_SEED === undefined || process.env.PROPERTY_SEED === ''
    ? (Date.now() ^ (Math.random() * 0x7fffffff)) | 0
    : Number(process.env.PROPERTY_SEED)
if (!Number.isInteger(runs) || runs < 1 || !Number.isInteger(seed)) {
  console.error('PROPERTY_RUNS must be a positive integer and PROPERTY_SEED an integer')
  process.exit(2)
}
console.log(`property: seed=${seed} runs=${runs} per Express major`)

let failed = false
for (const { major, express } of EXPRESS_VERSIONS) {
  const started = performance.now()
  const h = harness(express)
  const details = await fc.check(middlewareProperty(h), {
    numRuns: runs,
    seed,
    examples: EXAMPLES.map((e) => [e]),
  })
  const seconds = ((performance.now() - started) / 1000).toFixed(1)
  const seen = [...h.outcomes].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ${n}`)
  console.log(`express ${major} answers by X-Cache: ${seen.join(', ')}`)
  if (!details.failed) {
    console.log(`express ${major}: ${details.numRuns} runs passed in ${seconds} s`)
    continue
  }
  failed = true
  console.log(`express ${major}: FAILED after ${details.numRuns} runs (${seconds} s)`)
  console.log(fc.defaultReportMessage(details))
  const cause = details.errorInstance
  if (cause instanceof Error) console.log(`violations:\n${cause.message}`)
  console.log(
    `replay: PROPERTY_SEED=${seed} PROPERTY_RUNS=${runs} npm run test:property (path ${details.counterexamplePath})`,
  )
}
process.exit(failed ? 1 : 0)
