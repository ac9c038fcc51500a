#!/usr/bin/env node
// Runs the benchmarks under bench/ one after another and prints one Markdown report on stdout
// (progress goes to stderr). `node scripts/bench.mjs http large` runs a subset; `--out FILE` also
// writes the report to FILE. BENCH_QUICK=1 runs only the peer comparison, shortened (~1 minute, a
// smoke check; its files go to .tmp/bench, not docs/bench). `profile` (a CPU profile of the HIT
// path) and `chart` (redraws docs/bench/chart.svg from its results.json) run only when named.
// Each benchmark runs in its own process (node --import tsx), started and, past its time limit,
// killed here by its pid; the benchmarks start and stop their own memcached processes and
// children, bound to 127.0.0.1 only.
import { spawn, spawnSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, totalmem } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const quick = process.env.BENCH_QUICK === '1'
// Budget for the default set: under 10 minutes in all (peers ~5.4, http ~1.6, large ~1.1).
const BENCHES = [
  { name: 'peers', file: 'bench/peers.ts', limitS: quick ? 150 : 480 },
  { name: 'http', file: 'bench/http.ts', limitS: 180, full: true },
  { name: 'large', file: 'bench/large.ts', limitS: 180, full: true },
  { name: 'profile', file: 'bench/profile.ts', limitS: 120, optIn: true },
  { name: 'chart', file: 'bench/chart.ts', limitS: 30, optIn: true },
]

const args = process.argv.slice(2)
const names = []
let outFile
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--out') outFile = args[++i]
  else if (!args[i].startsWith('--')) names.push(args[i])
}
const selected = names.length
  ? BENCHES.filter((b) => names.includes(b.name))
  : BENCHES.filter((b) => !b.optIn && !(quick && b.full))
const unknown = names.filter((n) => !BENCHES.some((b) => b.name === n))
if (unknown.length) {
  console.error(
    `unknown benchmark(s): ${unknown.join(', ')}; choose from ${BENCHES.map((b) => b.name).join(', ')}`,
  )
  process.exit(2)
}

function run(bench) {
  return new Promise((resolve) => {
    const started = Date.now()
    const child = spawn(process.execPath, ['--import', 'tsx', bench.file], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'inherit'],
      env: {
        ...process.env,
        MEMCACHIER_SERVERS: '',
        MEMCACHE_USERNAME: '',
        MEMCACHIER_USERNAME: '',
      },
    })
    let stdout = ''
    child.stdout.setEncoding('utf8')
    child.stdout.on('data', (chunk) => {
      stdout += chunk
    })
    let timedOut = false
    const timer = setTimeout(() => {
      timedOut = true
      child.kill('SIGTERM')
      setTimeout(() => child.exitCode === null && child.kill('SIGKILL'), 5000).unref()
    }, bench.limitS * 1000)
    child.once('exit', (code, signal) => {
      clearTimeout(timer)
      resolve({ stdout, code, signal, timedOut, seconds: (Date.now() - started) / 1000 })
    })
  })
}

/** `model name` from /proc/cpuinfo (Linux), else what os.cpus() says. */
function cpuModel() {
  try {
    const line = readFileSync('/proc/cpuinfo', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('model name'))
    const model = line?.split(':')[1]?.trim()
    if (model) return model
  } catch {
    // Not Linux.
  }
  return cpus()[0]?.model ?? 'unknown CPU'
}

function version(cmd, argv) {
  const r = spawnSync(cmd, argv, { encoding: 'utf8' })
  return r.status === 0 ? r.stdout.trim().split('\n')[0] : 'unknown'
}

const started = Date.now()
// The benchmarks measure the library as npm ships it (dist/, built by tsup), not src/ through tsx:
// tsx's on-the-fly transform makes the hit path measurably slower than the published build.
console.error('[bench] building dist/ (npm run build)')
const build = spawnSync('npm', ['run', '--silent', 'build'], { cwd: root, stdio: ['ignore', 2, 2] })
if (build.status !== 0) {
  console.error('[bench] the build failed; nothing measured')
  process.exit(1)
}
const loadBefore = loadavg()[0].toFixed(2)
const sections = []
let failed = 0
for (const bench of selected) {
  console.error(`[bench] running ${bench.file}`)
  const r = await run(bench)
  if (r.code !== 0 || r.timedOut) {
    failed++
    const why = r.timedOut
      ? `timed out after ${bench.limitS} s`
      : `exited with ${r.code ?? r.signal}`
    sections.push(`## ${bench.name}: FAILED (${why})\n\n${r.stdout.trim()}`)
  } else {
    sections.push(r.stdout.trim())
  }
  console.error(`[bench] ${bench.file} done in ${r.seconds.toFixed(0)} s`)
}

// BENCH_REVISION names the code when the tree has no .git (an export of a merge, say).
const rev =
  process.env.BENCH_REVISION || version('git', ['-C', root, 'rev-parse', '--short', 'HEAD'])
const dirty = spawnSync('git', ['-C', root, 'status', '--porcelain', 'src'], {
  encoding: 'utf8',
}).stdout.trim()
  ? ' (src/ modified)'
  : ''
const header = [
  '# express-ft-cache benchmarks',
  '',
  `${new Date().toISOString()} · commit ${rev}${dirty} · Node ${process.version} · ${version('memcached', ['-V'])} · ` +
    `${cpus().length} cores × ${cpuModel()} · ${Math.round(totalmem() / 2 ** 30)} GiB · total ${((Date.now() - started) / 1000).toFixed(0)} s` +
    (quick ? ' · **BENCH_QUICK=1: a smoke run, not for publishing**' : ''),
  '',
  `Load average (1 min) before: ${loadBefore}, after: ${loadavg()[0].toFixed(2)} (this run itself adds about 2).`,
  '',
  'Timings are only meaningful as ratios against the baseline measured in the same run: this is a shared, noisy machine.',
]
const report = `${[header.join('\n'), ...sections].join('\n\n')}\n`
process.stdout.write(report)
if (outFile) writeFileSync(outFile, report)
process.exit(failed ? 1 : 0)
