#!/usr/bin/env node
// Runs the http-tests/cache-tests suite (the one behind cache-tests.fyi; not part of this package)
// against express-ft-cache in front of the suite's origin, and prints the suite's own classification.
// See docs/conformance.md.
//
//   CACHE_TESTS_DIR=path/to/cache-tests npm run conformance              # whole suite
//   npm run conformance -- --suite path/to/cache-tests --id freshness-max-age   # one test, verbosely
//   npm run conformance -- --suite DIR --out results.json --markdown table.md
//   --dist: test the built package (dist/) instead of src (through tsx).   MC=host:port: use that memcached.
//   --origin-error drop: an origin connection failure drops the client connection instead of the
//   default next(502 error), which is what an app's proxy does.   --stale-if-error N: pass staleIfError: N (seconds) to the cache.
//   PORT=… ORIGIN=… npm run conformance -- --serve: only the cache + proxy (for another runner's APP_CMD).
import { spawn, spawnSync } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { freePort } from './conformance/memcached.mjs'
import { serve } from './conformance/server.mjs'

const argv = process.argv.slice(2)
const flag = (name) => argv.includes(name)
const option = (name) => {
  const i = argv.indexOf(name)
  return i === -1 ? undefined : argv[i + 1]
}
const serveOptions = {
  mc: process.env.MC,
  originError: option('--origin-error') ?? 'next',
  staleIfError:
    option('--stale-if-error') === undefined ? undefined : Number(option('--stale-if-error')),
}

if (flag('--serve')) {
  const { PORT, ORIGIN } = process.env
  if (!PORT || !ORIGIN) fail('--serve needs PORT and ORIGIN in the environment')
  const { stop } = await serve({ ...serveOptions, port: Number(PORT), origin: ORIGIN })
  const quit = () => stop().finally(() => process.exit(0))
  process.once('SIGTERM', quit)
  process.once('SIGINT', quit)
} else {
  await run()
}

function fail(message) {
  console.error(message)
  process.exit(2)
}

/**
 * The suite needs its own dependencies (undici, for the interim-response tests). When the given
 * checkout has none, a copy is installed once under the temp dir (CT_WORK overrides where).
 */
function prepareSuite(source) {
  if (existsSync(join(source, 'node_modules', 'undici'))) return source
  const work = process.env.CT_WORK || join(tmpdir(), 'express-ft-cache-cache-tests')
  const marker = join(work, '.installed-from')
  if (existsSync(marker) && readFileSync(marker, 'utf8') === source) return work
  console.error(`installing the suite's dependencies in ${work} (once)`)
  rmSync(work, { recursive: true, force: true })
  mkdirSync(work, { recursive: true })
  cpSync(source, work, { recursive: true, filter: (p) => !p.includes('node_modules') })
  const npm = spawnSync('npm', ['install', '--omit=dev', '--no-audit', '--no-fund'], {
    cwd: work,
    stdio: ['ignore', 'ignore', 'inherit'],
  })
  if (npm.status !== 0) fail('npm install of the suite failed')
  writeFileSync(marker, source)
  return work
}

async function waitHttp(url, seconds) {
  for (let i = 0; i < seconds * 10; i++) {
    try {
      const r = await fetch(url, { signal: AbortSignal.timeout(1000) })
      await r.arrayBuffer()
      return
    } catch {
      await sleep(100)
    }
  }
  throw new Error(`nothing answered at ${url}`)
}

async function run() {
  const source = option('--suite') ?? process.env.CACHE_TESTS_DIR
  if (!source) fail('give the cache-tests checkout: CACHE_TESTS_DIR=DIR or --suite DIR')
  if (!existsSync(join(source, 'tests', 'index.mjs'))) fail(`${source}: not a cache-tests checkout`)
  const suite = prepareSuite(resolve(source))
  const testId = option('--id') ?? process.env.TEST_ID ?? ''
  const [originPort, cachePort] = [await freePort(), await freePort()]

  const originLog = []
  const origin = spawn(
    process.execPath,
    [
      '--import',
      new URL('./conformance/loopback.mjs', import.meta.url).href,
      'test-engine/server/server.mjs',
    ],
    {
      cwd: suite,
      env: {
        ...process.env,
        npm_config_protocol: 'http',
        npm_config_port: String(originPort),
        npm_config_pidfile: join(tmpdir(), `cache-tests-origin-${originPort}.pid`),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  )
  origin.stdout.on('data', (d) => originLog.push(d))
  origin.stderr.on('data', (d) => originLog.push(d))
  const originUrl = `http://127.0.0.1:${originPort}`
  let cache
  try {
    await waitHttp(`${originUrl}/state/ping`, 20)
    cache = await serve({ ...serveOptions, port: cachePort, origin: originUrl })
    const base = `http://127.0.0.1:${cachePort}`
    await waitHttp(`${base}/state/ping`, 20)
    const env = { ...process.env, npm_config_base: base, npm_config_id: testId }
    // The suite's CLI reads npm_package_config_id when npm_config_id is empty.
    env.npm_package_config_id = testId
    const cli = spawn(process.execPath, ['--no-warnings', 'test-engine/cli.mjs'], {
      cwd: suite,
      env,
      stdio: ['ignore', testId ? 'inherit' : 'pipe', 'inherit'],
    })
    const out = []
    cli.stdout?.on('data', (d) => out.push(d))
    const code = await new Promise((done) => cli.once('exit', done))
    if (testId) {
      console.log('--- origin log:')
      process.stdout.write(Buffer.concat(originLog))
      return
    }
    if (code !== 0) throw new Error(`the suite's CLI exited with ${code}`)
    const text = Buffer.concat(out).toString('utf8')
    const results = JSON.parse(text.slice(text.indexOf('{')))
    const file = option('--out')
    if (file) writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`)
    const { summarize } = await import('./conformance/summary.mjs')
    const summary = await summarize(suite, results)
    console.log(summary.text)
    const markdown = option('--markdown')
    if (markdown) writeFileSync(markdown, summary.markdown)
  } finally {
    await cache?.stop()
    origin.kill('SIGTERM')
  }
}
