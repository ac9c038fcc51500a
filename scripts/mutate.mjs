#!/usr/bin/env node
// Mutation check: applies known mutations to src files one at a time (exact string replacements,
// each matching exactly once), runs the test files that should notice, and reports which mutants
// were killed (a test failed) and which survived. The file is restored after each mutant, and on
// Ctrl-C, SIGTERM or any error.
//
//   npm run mutate                  every mutant (baseline first: the chosen tests must pass)
//   npm run mutate -- --list        the mutants and their tests
//   npm run mutate -- cookie stale  only mutants whose name contains one of these words
//   npm run mutate -- --no-baseline skip the unmutated run
import { spawn, spawnSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { testEnv } from './test-env.mjs'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const PER_MUTANT_TIMEOUT_MS = 120_000

const unit = (name) => `test/unit/${name}.test.ts`
const SAFETY = 'test/http/safety.test.ts'
const SEMANTICS = 'test/http/semantics.test.ts'
const CORE = 'test/http/core.test.ts'

/**
 * name, file (under src/), from -> to, the test files to run, and an optional name pattern
 * (node --test-name-pattern, a regular expression; suite names match too) that narrows them.
 */
const MUTANTS = [
  {
    name: 'mint: release a lock without checking the CAS',
    file: 'mint.ts',
    from: 's.compareAndDelete(lock.key, lock.cas)',
    to: 's.delete(lock.key)',
    tests: [unit('release')],
  },
  {
    name: 'decide: serve stale past graceUntil',
    file: 'engine/decide.ts',
    from: 'if (now < entry.graceUntil) {',
    to: 'if (true) {',
    tests: [unit('decide')],
  },
  {
    name: 'decide: regenerate again while this process regenerates',
    file: 'engine/decide.ts',
    from: 'facts.regenerating || facts.lockLost',
    to: 'facts.lockLost',
    tests: [unit('decide')],
  },
  {
    name: 'decide: answer a credentialed request from an unshared entry',
    file: 'engine/decide.ts',
    from: 'if (entry !== undefined && (!facts.credentialed || entry.shared)) {',
    to: 'if (entry !== undefined) {',
    tests: [SAFETY],
    pattern: 'cookies',
  },
  {
    name: 'coordinate: serve a coalesced waiter whatever its Vary values',
    file: 'engine/coordinate.ts',
    from: 'if (mine.every((v, i) => v === result.varyValues[i])) {',
    to: 'if (true) {',
    tests: [SAFETY],
    pattern: 'Vary values',
  },
  {
    name: 'coordinate: a lost lock speaks for whatever copy is stored later',
    file: 'engine/coordinate.ts',
    from: 'if (now < lost.until && lost.copy === cachedAtOf(copy)) return true',
    to: 'if (now < lost.until) return true',
    tests: ['test/http/invalidation.test.ts'],
    pattern: 'right after this process lost',
  },
  {
    name: 'key: the raw-origin memo ignores TLS',
    file: 'key.ts',
    from: 'return (req.socket as { encrypted?: boolean } | undefined)?.encrypted === true',
    to: 'return false',
    tests: [SEMANTICS],
    pattern: 'http and https',
  },
  {
    name: "guard: drop the guard's own deadline",
    file: 'guard.ts',
    from: 'setImmediate(() => {\n          if (settled) return',
    to: 'setImmediate(() => {\n          if (true) return',
    tests: [unit('guard')],
  },
  {
    name: 'render: store truncated bodies',
    file: 'engine/render.ts',
    from: 'if (declared !== undefined && Number(declared) !== captured.size) {',
    to: 'if (false) {',
    tests: [SAFETY],
    pattern: 'truncated',
  },
  {
    name: 'render: store a response the client never fully got',
    file: 'engine/render.ts',
    from: 'if (verdict?.store !== true || state.abandoned || !captured.finished) return',
    to: 'if (verdict?.store !== true || state.abandoned) return',
    tests: [SAFETY],
    pattern: 'aborted',
  },
  {
    name: 'render: keep per-request headers (drop set)',
    file: 'engine/render.ts',
    from: 'const drop = new Set([...verdict.drop, ...this.d.cfg.perRequestHeaders])',
    to: 'const drop = new Set([...verdict.drop])',
    tests: [SAFETY],
    pattern: 'request-scoped',
  },
  {
    name: 'render: skip the invalidation check before write-back (admits)',
    file: 'engine/render.ts',
    from: 'if (!(await d.invalidations.admits(entry.tags, entry.startedAt, inFlight))) return',
    to: '',
    tests: [SAFETY],
    pattern: 'invalidation during a render',
  },
  {
    name: 'render: store a cookie request’s unshared page',
    file: 'engine/render.ts',
    from: "if (plan.credential === 'cookie' && !sharedByResponse(headers))",
    to: 'if (false)',
    tests: [SAFETY],
    pattern: 'cookies',
  },
  {
    name: 'render: hit-for-miss marker at the primary key, not the variant',
    file: 'engine/render.ts',
    from: 'const key = state.plan.entryKey',
    to: 'const key = state.plan.primary',
    tests: [SAFETY],
    pattern: 'hit-for-miss',
  },
  {
    name: 'render: a declared oversized body holds waiters until it ends',
    file: 'engine/render.ts',
    from: 'if (declared > Math.min(state.route.maxBodySize, maxValueBytes))',
    to: 'if (false)',
    tests: [SAFETY],
    pattern: 'above maxBodySize',
  },
  {
    name: 'render: memcached TTL ends at staleAt (no stale window)',
    file: 'engine/render.ts',
    from: 'entry.staleAt + keepMs - entry.cachedAt',
    to: 'entry.staleAt - entry.cachedAt',
    tests: [CORE],
    pattern: 'STALE|stale copy',
  },
  {
    name: 'classify: ignore the cookie rule',
    file: 'engine/classify.ts',
    from: "cookie !== undefined && route.cookies === 'private' && counts(cookie, route)",
    to: 'false',
    tests: [SAFETY],
    pattern: 'cookies',
  },
  {
    name: 'capture: a second writeHead after the head went out reaches Node',
    file: 'capture.ts',
    from: 'if (res.headersSent) return this',
    to: '',
    tests: [SAFETY],
    pattern: 'second writeHead',
  },
  {
    name: 'capture: keep bodies above maxBodySize',
    file: 'capture.ts',
    from: 'if (kept + length > hooks.maxBytes) {',
    to: 'if (false) {',
    tests: [SAFETY],
    pattern: 'chunked body above maxBodySize',
  },
  {
    name: 'capture: raw header arrays join multi-values into one line',
    file: 'capture.ts',
    from: 'if (Array.isArray(value)) for (const v of value) list.push(String(v))',
    to: 'list.push(String(value))',
    tests: [SAFETY],
    pattern: 'raw header arrays',
  },
  {
    name: 'capture: a closed (aborted) response counts as finished',
    file: 'capture.ts',
    from: 'settle(res.writableFinished, undefined)',
    to: 'settle(true, undefined)',
    tests: [SAFETY],
    pattern: 'aborted',
  },
  {
    name: 'capture: keep a view of the handler’s buffer, not a copy',
    file: 'capture.ts',
    from: "typeof chunk === 'string' ? Buffer.from(chunk, encoding ?? 'utf8') : Buffer.from(chunk)",
    to: "typeof chunk === 'string' ? Buffer.from(chunk, encoding ?? 'utf8') : (chunk as Buffer)",
    tests: [SEMANTICS],
    pattern: 'reuses its buffer',
  },
  {
    name: 'respond: Age ignores the age the response arrived with',
    file: 'engine/respond.ts',
    from: 'String(entry.initialAge + Math.max(0, Math.floor((now - entry.cachedAt) / 1000)))',
    to: 'String(Math.max(0, Math.floor((now - entry.cachedAt) / 1000)))',
    tests: [SAFETY],
    pattern: 'Age counts',
  },
  {
    name: 'respond: a 304 carries every stored field',
    file: 'engine/respond.ts',
    from: 'stored.filter(([name]) => NOT_MODIFIED_FIELDS.has(name))',
    to: 'stored',
    tests: [SAFETY],
    pattern: 'a 304 from the cache',
  },
  {
    name: 'respond: answer conditions for a stored non-200',
    file: 'engine/respond.ts',
    from: 'entry.status === 200 && conditional &&',
    to: 'conditional &&',
    tests: [SAFETY],
    pattern: 'stored 404',
  },
  {
    name: 'respond: no Content-Length on replay',
    file: 'engine/respond.ts',
    from: "if (hasBody) res.setHeader('content-length', String(entry.body.length))",
    to: '',
    tests: [CORE],
    pattern: 'HEAD|byte for byte',
  },
  {
    name: 'policy: store private responses',
    file: 'http/policy.ts',
    from: "if (cc.has('private') && privateFields.length === 0) return refuse('private')",
    to: '',
    tests: [unit('policy')],
  },
  {
    name: 'policy: store Set-Cookie responses',
    file: 'http/policy.ts',
    from: "if (!route.stripSetCookie) return refuse('set-cookie')",
    to: '',
    tests: [unit('policy')],
  },
  {
    name: 'policy: store Vary: *',
    file: 'http/policy.ts',
    from: "if (vary.includes('*')) return refuse('vary *')",
    to: '',
    tests: [unit('policy')],
  },
  {
    name: 'policy: ignore the request’s no-store',
    file: 'http/policy.ts',
    from: "if (request.noStore) return refuse('request no-store', true)",
    to: '',
    tests: [unit('policy')],
  },
  {
    name: 'policy: freshness ignores the Age the response arrived with',
    file: 'http/policy.ts',
    from: 'const remaining = noCache ? 0 : Math.max(0, lifetimeMs - initialAge * 1000)',
    to: 'const remaining = noCache ? 0 : Math.max(0, lifetimeMs)',
    tests: [unit('policy')],
  },
  {
    name: 'invalidate: an error response to an unsafe method invalidates',
    file: 'engine/invalidate.ts',
    from: 'if (status < 200 || status >= 400) return',
    to: 'if (status < 200) return',
    tests: [SAFETY],
    pattern: 'unsafe methods',
  },
  {
    name: 'invalidate: an unsafe request may invalidate twice',
    file: 'engine/invalidate.ts',
    from: '    if (done) return\n',
    to: '',
    tests: [SAFETY],
    pattern: 'unsafe methods',
  },
  {
    name: 'hot tier: refresh ahead copies hit only now and then',
    file: 'engine/hot-tier.ts',
    from: ' || slot.hits < REFRESH_MIN_HITS) return false',
    to: ') return false',
    tests: ['test/http/hot-tier.test.ts'],
    pattern: 'refresh-ahead',
  },
  {
    name: 'hot tier: no refresh-ahead (copies just expire)',
    file: 'engine/hot-tier.ts',
    from: 'slot.refreshAt = Number.POSITIVE_INFINITY\n    return true',
    to: 'slot.refreshAt = Number.POSITIVE_INFINITY\n    return false',
    tests: ['test/http/hot-tier.test.ts'],
    pattern: 'refresh-ahead',
  },
  {
    name: 'lookup: the re-read after a lock add joins a read in flight',
    file: 'engine/lookup.ts',
    from: 'return shared ? this.reads.read(key, deadline, send) : send()',
    to: 'return this.reads.read(key, deadline, send)',
    tests: ['test/faults/coalescing.test.ts'],
    pattern: 'sharing a read',
  },
  {
    name: 'lookup: concurrent requests never share a read',
    file: 'engine/lookup.ts',
    from: 'return shared ? this.reads.read(key, deadline, send) : send()',
    to: 'return send()',
    tests: ['test/faults/coalescing.test.ts'],
    pattern: 'sharing a read',
  },
  {
    name: 'shared reads: join a read that gives up after the request’s own deadline',
    file: 'engine/shared-reads.ts',
    from: 'return readDeadline <= deadline && ',
    to: 'return ',
    tests: ['test/unit/shared-reads.test.ts'],
  },
  {
    name: 'shared reads: join a read whose budget is nearly spent',
    file: 'engine/shared-reads.ts',
    from: ' && readDeadline - now >= (deadline - now) / 2',
    to: '',
    tests: ['test/unit/shared-reads.test.ts'],
  },
  {
    name: 'hot tier: an older read replaces a newer copy',
    file: 'engine/hot-tier.ts',
    from: 'if (held !== undefined && now < held.expiresAt && entry.cachedAt < held.entry.cachedAt) return',
    to: '',
    tests: ['test/unit/hot-tier.test.ts'],
  },
  {
    name: 'hot tier: a copy that reuses the held body keeps the held freshness',
    file: 'engine/hot-tier.ts',
    from: 'entry: { ...entry, body: same ? held.entry.body : Buffer.from(entry.body) },',
    to: 'entry: same ? held.entry : { ...entry, body: Buffer.from(entry.body) },',
    tests: ['test/unit/hot-tier.test.ts'],
  },
]

// ---------------------------------------------------------------------------------------------

const args = process.argv.slice(2)
const words = args.filter((a) => !a.startsWith('--'))
const selected = MUTANTS.filter(
  (m) => words.length === 0 || words.some((w) => m.name.toLowerCase().includes(w.toLowerCase())),
)

if (args.includes('--list')) {
  for (const m of selected)
    console.log(
      `${m.name}\n    src/${m.file}; ${m.tests.join(' ')}${m.pattern ? ` /${m.pattern}/` : ''}`,
    )
  process.exit(0)
}

/** Originals of files currently mutated: restored on every way out. */
const originals = new Map()
let child
function restoreAll() {
  for (const [path, text] of originals) writeFileSync(path, text)
  originals.clear()
}
process.on('exit', restoreAll)
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.once(signal, () => {
    restoreAll()
    if (child?.pid !== undefined) {
      try {
        process.kill(-child.pid, 'SIGKILL')
      } catch {
        // Already gone.
      }
    }
    console.error(`\ninterrupted (${signal}); sources restored`)
    process.exit(130)
  })
}
process.on('uncaughtException', (err) => {
  restoreAll()
  console.error(err)
  process.exit(1)
})

const count = (text, part) => text.split(part).length - 1

// A mutant left behind by a killed run would make every "from" fail to match, or worse, make the
// baseline run a mutant: refuse to start on modified sources.
const dirty = spawnSync('git', ['status', '--porcelain', '--', 'src'], {
  cwd: root,
  encoding: 'utf8',
})
if (dirty.status === 0 && dirty.stdout.trim() !== '' && !args.includes('--force')) {
  console.error(
    `src/ has uncommitted changes (a mutant left by an interrupted run?):\n${dirty.stdout}` +
      'commit or restore them first (or pass --force).',
  )
  process.exit(1)
}

for (const m of selected) {
  const text = readFileSync(join(root, 'src', m.file), 'utf8')
  const n = count(text, m.from)
  if (n !== 1) {
    console.error(`mutant "${m.name}": expected exactly one match in src/${m.file}, found ${n}`)
    process.exit(1)
  }
}

/** Runs test files in a child (its own process group, so it can be killed whole). */
function runTests(files, patterns) {
  const flags = ['--import', 'tsx', '--test', '--test-concurrency=2', '--test-reporter=dot']
  for (const p of patterns) flags.push(`--test-name-pattern=${p}`)
  return new Promise((resolve) => {
    const started = Date.now()
    let output = ''
    child = spawn(process.execPath, [...flags, ...files], {
      cwd: root,
      env: testEnv(),
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    child.stdout.on('data', (d) => {
      output += d
    })
    child.stderr.on('data', (d) => {
      output += d
    })
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid, 'SIGKILL')
      } catch {
        // Already gone.
      }
    }, PER_MUTANT_TIMEOUT_MS)
    child.once('close', (code, signal) => {
      clearTimeout(timer)
      child = undefined
      resolve({ ok: code === 0, code, signal, ms: Date.now() - started, output })
    })
  })
}

const unique = (list) => [...new Set(list)]
const started = Date.now()

if (!args.includes('--no-baseline')) {
  // Unmutated, the chosen tests must pass: otherwise "killed" would mean nothing.
  const plain = unique(selected.filter((m) => !m.pattern).flatMap((m) => m.tests))
  const narrowed = selected.filter((m) => m.pattern)
  const runs = [
    [plain, []],
    [unique(narrowed.flatMap((m) => m.tests)), unique(narrowed.map((m) => m.pattern))],
  ].filter(([files]) => files.length > 0)
  for (const [files, patterns] of runs) {
    process.stdout.write(`baseline: ${files.join(' ')} ... `)
    const r = await runTests(files, patterns)
    console.log(r.ok ? `ok (${(r.ms / 1000).toFixed(1)} s)` : 'FAILED')
    if (!r.ok) {
      console.error(r.output.slice(-4000))
      console.error('the baseline fails: fix the tests before reading mutation results')
      process.exit(1)
    }
  }
}

const results = []
for (const [i, m] of selected.entries()) {
  const path = join(root, 'src', m.file)
  const text = readFileSync(path, 'utf8')
  originals.set(path, text)
  let r
  try {
    writeFileSync(path, text.replace(m.from, m.to))
    process.stdout.write(`[${i + 1}/${selected.length}] ${m.name} ... `)
    r = await runTests(m.tests, m.pattern ? [m.pattern] : [])
  } finally {
    writeFileSync(path, text)
    originals.delete(path)
  }
  const verdict = r.ok ? 'SURVIVED' : r.signal ? 'killed (timeout)' : 'killed'
  console.log(`${verdict} (${(r.ms / 1000).toFixed(1)} s)`)
  results.push({ name: m.name, killed: !r.ok })
}

const killed = results.filter((r) => r.killed).length
const survivors = results.filter((r) => !r.killed)
console.log(
  `\nmutation score: ${killed}/${results.length} killed (${Math.round((killed / results.length) * 100)}%) in ${((Date.now() - started) / 1000).toFixed(0)} s`,
)
if (survivors.length > 0) {
  console.log('survivors:')
  for (const s of survivors) console.log(`  - ${s.name}`)
}
process.exit(survivors.length > 0 ? 1 : 0)
