#!/usr/bin/env node
// Tests the package as users get it: builds, packs the tarball, checks what it ships and its types
// (attw), then installs it into fixture projects made from test/package/fixtures/ (CommonJS,
// ESM, TypeScript with nodenext) on Express 4 and on Express 5, type-checks the TypeScript one with
// the repo's tsc, and runs a real request through each (MISS, then HIT).
//
// The fixture projects live in a temporary folder, never in the repo; it is removed after a green
// run and kept (its path printed) after a failure, or always with PACK_TEST_KEEP=1.
// Ends with `N passed, M failed` and exits 1 on any failure.
import { spawn } from 'node:child_process'
import { cp, mkdtemp, readdir, readFile, rename, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const fixtures = join(root, 'test', 'package', 'fixtures')
const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc')
const tsx = join(root, 'node_modules', '.bin', 'tsx')
const attw = join(root, 'node_modules', '.bin', 'attw')
const EXPRESS_MAJORS = ['4', '5']
/** Fixture folder, extra packages it installs (by Express major), and how it is checked and run. */
const FIXTURES = [
  { name: 'cjs', extra: () => [], run: ['node', 'index.js'] },
  { name: 'esm', extra: () => [], run: ['node', 'index.js'] },
  {
    name: 'ts',
    extra: (major) => [`@types/express@${major}`, '@types/node@20'],
    typecheck: true,
    run: [tsx, 'src/esm.ts'],
  },
]
/** What the tarball may hold besides dist/ (LICENSE must be there; README and CHANGELOG may be). */
const ALLOWED_TOP = new Set(['package.json', 'README.md', 'CHANGELOG.md', 'LICENSE'])
const CONCURRENCY = 3

// Environment for child processes: npm's own configuration is passed on, but not the variables
// that tie a nested npm to this repo (npm_config_local_prefix would make it install here).
const childEnv = Object.fromEntries(
  Object.entries(process.env).filter(
    ([k]) =>
      !/^npm_(package_|lifecycle_|command$|config_local_prefix$)/i.test(k) && k !== 'INIT_CWD',
  ),
)

let passed = 0
let failed = 0
const started = Date.now()
const seconds = (ms) => `${(ms / 1000).toFixed(1)}s`

/** Runs a command; resolves with its exit code and combined output, never rejects. */
function run(command, args, { cwd = root, env = {}, timeout = 120_000 } = {}) {
  return new Promise((done) => {
    const t0 = Date.now()
    const child = spawn(command, args, {
      cwd,
      env: { ...childEnv, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout,
      killSignal: 'SIGKILL',
    })
    let output = ''
    let stdout = ''
    child.stdout.on('data', (d) => {
      stdout += d
      output += d
    })
    child.stderr.on('data', (d) => {
      output += d
    })
    child.on('error', (err) => {
      output += `\n${err.stack ?? err}`
    })
    child.on('close', (code, signal) => {
      if (signal)
        output += `\n[${command} ${args.join(' ')} killed by ${signal} after ${seconds(Date.now() - t0)}]`
      done({ code: code ?? 1, output, stdout, ms: Date.now() - t0 })
    })
  })
}

class StepError extends Error {
  constructor(message, output = '') {
    super(message)
    this.output = output
  }
}

/** Runs a command as part of a test; throws with its output when it fails. */
async function must(label, command, args, options) {
  const r = await run(command, args, options)
  if (r.code !== 0) throw new StepError(`${label} exited with ${r.code}`, r.output)
  return r
}

/** Runs one named test and prints `ok` or `not ok` with the failure's details. */
async function test(name, fn) {
  const t0 = Date.now()
  try {
    const note = await fn()
    passed++
    console.log(
      `ok - ${name} (${seconds(Date.now() - t0)})${typeof note === 'string' ? ` ${note}` : ''}`,
    )
    return true
  } catch (err) {
    failed++
    console.log(`not ok - ${name} (${seconds(Date.now() - t0)})`)
    console.log(indent(err instanceof StepError ? err.message : (err?.stack ?? String(err))))
    if (err instanceof StepError && err.output) console.log(indent(tail(err.output, 60)))
    return false
  }
}

const indent = (text) => text.replace(/^/gm, '    ')
const tail = (text, lines) => text.trimEnd().split('\n').slice(-lines).join('\n')

/** Every file path that an `exports` map points at (conditions nested in any depth). */
function exportTargets(value, out = []) {
  if (typeof value === 'string') out.push(value)
  else if (value && typeof value === 'object')
    for (const v of Object.values(value)) exportTargets(v, out)
  return out
}

/** Copies a fixture, dropping the `.tmpl` suffix that keeps its sources out of the repo's checks. */
async function copyFixture(name, dest) {
  await cp(join(fixtures, name), dest, { recursive: true })
  const walk = async (dir) => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name)
      if (entry.isDirectory()) await walk(path)
      else if (entry.name.endsWith('.tmpl')) await rename(path, path.slice(0, -'.tmpl'.length))
    }
  }
  await walk(dest)
}

/** Runs async jobs with at most `limit` at a time. */
async function pool(jobs, limit) {
  const queue = [...jobs]
  const workers = Array.from({ length: Math.min(limit, queue.length) }, async () => {
    while (queue.length > 0) await queue.shift()()
  })
  await Promise.all(workers)
}

function finish(tmp) {
  const keep = failed > 0 || process.env.PACK_TEST_KEEP === '1'
  return (keep ? Promise.resolve() : rm(tmp, { recursive: true, force: true })).then(() => {
    if (keep) console.log(`# fixture projects kept in ${tmp}`)
    console.log(`# pack test took ${seconds(Date.now() - started)}`)
    console.log(`${passed} passed, ${failed} failed`)
    process.exitCode = failed > 0 ? 1 : 0
  })
}

const tmp = await mkdtemp(join(tmpdir(), 'eftc-pack-'))
console.log(`# express-ft-cache package test in ${tmp}`)

// 1. Build and pack. Packing skips the prepack script: the build just ran.
const pkg = JSON.parse(await readFile(join(root, 'package.json'), 'utf8'))
let tarball
const built = await test('build (npm run build)', () =>
  must('npm run build', 'npm', ['run', 'build']))
const packed =
  built &&
  (await test('npm pack', async () => {
    const r = await must('npm pack', 'npm', [
      'pack',
      '--json',
      '--ignore-scripts',
      '--pack-destination',
      tmp,
    ])
    const info = JSON.parse(r.stdout)[0]
    tarball = join(tmp, info.filename)
    const files = info.files.map((f) => f.path)

    const stray = files.filter((f) => !f.startsWith('dist/') && !ALLOWED_TOP.has(f))
    if (stray.length > 0) throw new Error(`tarball ships files outside dist/: ${stray.join(', ')}`)
    for (const required of ['package.json', 'LICENSE']) {
      if (!files.includes(required)) throw new Error(`tarball lacks ${required}`)
    }
    const targets = [
      ...exportTargets(pkg.exports),
      ...['main', 'module', 'types'].map((k) => pkg[k]).filter(Boolean),
    ].map((t) => t.replace(/^\.\//, ''))
    const missing = targets.filter((t) => !files.includes(t))
    if (missing.length > 0)
      throw new Error(`package.json names files the tarball lacks: ${missing.join(', ')}`)
    const maps = files.filter((f) => f.endsWith('.map')).length
    return `(${files.length} files, ${maps} source maps, ${(info.size / 1024).toFixed(0)} KiB)`
  }))

if (!packed) {
  await finish(tmp)
  process.exit()
}

// 2. The types as every module resolution sees them, and the fixture projects, side by side.
const jobs = [
  () =>
    test('types resolve for node10, node16 (CJS and ESM) and bundler (attw)', () =>
      must('attw', attw, [tarball, '--format', 'ascii', '--no-color', '--no-emoji'], {
        timeout: 60_000,
      })),
]
for (const fixture of FIXTURES) {
  for (const major of EXPRESS_MAJORS) {
    jobs.push(async () => {
      const label = `${fixture.name} project on express@${major}`
      const dir = join(tmp, `${fixture.name}-express${major}`)
      const env = { EXPECT_EXPRESS: major }
      let installed = false
      await test(`${label}: install`, async () => {
        await copyFixture(fixture.name, dir)
        const deps = [tarball, `express@${major}`, ...fixture.extra(major)]
        const args = ['install', '--no-audit', '--no-fund', '--prefer-offline', ...deps]
        await must('npm install', 'npm', args, { cwd: dir, timeout: 180_000 })
        installed = true
      })
      if (!installed) return
      if (fixture.typecheck) {
        await test(`${label}: tsc --noEmit (nodenext, strict)`, () =>
          must('tsc', process.execPath, [tsc, '--noEmit', '-p', dir], {
            cwd: dir,
            timeout: 90_000,
          }))
      }
      await test(`${label}: request MISS then HIT`, async () => {
        const [command, ...args] = fixture.run
        const r = await must(fixture.run.join(' '), command, args, {
          cwd: dir,
          env,
          timeout: 30_000,
        })
        return `(${r.stdout.trim().split('\n').at(-1)})`
      })
    })
  }
}
await pool(jobs, CONCURRENCY)
await finish(tmp)
