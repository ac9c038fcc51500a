/**
 * Every ```js / ```ts block of the README is accounted for, so what users copy works:
 *
 * - `<!-- example: NAME -->` before a block: a complete program. It is written to a temporary
 *   directory and run as users would run it (`node --import tsx`, ESM), on Express 5 and Express 4,
 *   with the `express-ft-cache` specifier mapped to this repository's src/index.ts through a tsx
 *   tsconfig `paths` entry, so the block's text is run verbatim. The test starts memcached on a free
 *   port (MEMCACHE_SERVERS), sets PORT, waits for the program's "Listening on" line, requests its
 *   routes (checks per NAME below), and stops it by its pid. The fuller setup also runs as
 *   CommonJS, its imports rewritten to require().
 * - `<!-- fragment -->` before a block: an option snippet, not a program. Fragments are
 *   type-checked (never run) with the TypeScript compiler against the package's types, with a
 *   prelude declaring the `app`, `cache` and handlers they refer to.
 * - Any other js/ts block fails this test: mark it.
 */
import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import {
  mkdirSync,
  mkdtempSync,
  readFileSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'
import { freePort, type MemcachedProcess, startMemcached } from './helpers/memcached.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const README = readFileSync(join(ROOT, 'README.md'), 'utf8')
const SRC_INDEX = join(ROOT, 'src', 'index.ts')
/** Generous: tsx compiles src on first import, and CI boxes are loaded. */
const START_TIMEOUT_MS = 60_000
const EXIT_TIMEOUT_MS = 30_000

interface Block {
  readonly lang: string
  readonly code: string
  /** 1-based line of the opening fence, for messages. */
  readonly line: number
  readonly marker: { kind: 'example'; name: string } | { kind: 'fragment' } | undefined
}

/** Fenced code blocks, each with the HTML comment on the line before its fence, if any. */
function codeBlocks(markdown: string): Block[] {
  const lines = markdown.split('\n')
  const blocks: Block[] = []
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\w*)\s*$/.exec(lines[i] ?? '')
    if (open === null) continue
    const start = i
    const body: string[] = []
    for (i++; i < lines.length && !/^```\s*$/.test(lines[i] ?? ''); i++) body.push(lines[i] ?? '')
    const before = (lines[start - 1] ?? '').trim()
    const example = /^<!--\s*example:\s*([\w-]+)\s*-->$/.exec(before)
    const marker = example
      ? { kind: 'example' as const, name: example[1] ?? '' }
      : /^<!--\s*fragment\s*-->$/.test(before)
        ? { kind: 'fragment' as const }
        : undefined
    blocks.push({ lang: open[1] ?? '', code: `${body.join('\n')}\n`, line: start + 1, marker })
  }
  return blocks
}

const JS_LANGS = new Set(['js', 'javascript', 'mjs', 'cjs', 'ts', 'typescript'])
const blocks = codeBlocks(README).filter((b) => JS_LANGS.has(b.lang))
const examples = new Map<string, Block>()
for (const b of blocks) if (b.marker?.kind === 'example') examples.set(b.marker.name, b)
const fragments = blocks.filter((b) => b.marker?.kind === 'fragment')

/** The temporary workspace: node_modules linked to this repository's, one tsconfig per Express. */
let work = ''
const tsconfigs = { 5: '', 4: '' }

before(() => {
  work = mkdtempSync(join(tmpdir(), 'eftc-readme-'))
  const modules = realpathSync(join(ROOT, 'node_modules'))
  for (const [dir, type] of [
    ['esm', 'module'],
    ['cjs', 'commonjs'],
    ['types', 'module'],
  ] as const) {
    mkdirSync(join(work, dir))
    symlinkSync(modules, join(work, dir, 'node_modules'), 'dir')
    // The type a user's project would have: ESM for the examples as written, CJS for the variant.
    writeFileSyncJson(join(work, dir, 'package.json'), { type })
  }
  for (const major of [5, 4] as const) {
    const paths: Record<string, string[]> = { 'express-ft-cache': [SRC_INDEX] }
    if (major === 4) paths.express = [join(modules, 'express4', 'index.js')]
    tsconfigs[major] = join(work, `tsconfig.express${major}.json`)
    writeFileSyncJson(tsconfigs[major], { compilerOptions: { paths } })
  }
})

after(() => {
  for (const child of running) if (child.exitCode === null && child.signalCode === null) kill(child)
  if (work !== '') rmSync(work, { recursive: true, force: true })
})

/** Synchronous on purpose: the workspace must exist before any test starts. */
function writeFileSyncJson(path: string, value: unknown): void {
  writeFileSync(path, `${JSON.stringify(value, null, 2)}\n`)
}

const running = new Set<ChildProcess>()

function kill(child: ChildProcess, signal: NodeJS.Signals = 'SIGKILL'): void {
  if (child.pid !== undefined && child.exitCode === null && child.signalCode === null)
    process.kill(child.pid, signal)
}

interface Program {
  readonly child: ChildProcess
  readonly base: string
  readonly stdout: () => string
  readonly stderr: () => string
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

/** Runs one README program with PORT (and MEMCACHE_SERVERS) set; resolves once it listens. */
async function start(file: string, major: 4 | 5, env: Record<string, string>): Promise<Program> {
  const port = await freePort()
  const child = spawn(process.execPath, ['--import', 'tsx', file], {
    cwd: join(file, '..'),
    env: {
      ...process.env,
      NODE_ENV: 'test',
      MEMCACHIER_SERVERS: '',
      TSX_TSCONFIG_PATH: tsconfigs[major],
      PORT: String(port),
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  running.add(child)
  let stdout = ''
  let stderr = ''
  child.stdout?.on('data', (c: Buffer) => {
    stdout += c
  })
  child.stderr?.on('data', (c: Buffer) => {
    stderr += c
  })
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => {
      running.delete(child)
      resolve({ code, signal })
    }),
  )
  const output = (): string => `stdout:\n${stdout}\nstderr:\n${stderr}`
  const deadline = Date.now() + START_TIMEOUT_MS
  while (!stdout.includes(`Listening on http://127.0.0.1:${port}/`)) {
    if (child.exitCode !== null) assert.fail(`${file} exited before listening\n${output()}`)
    if (Date.now() > deadline) {
      kill(child)
      assert.fail(`${file} did not print "Listening on" within ${START_TIMEOUT_MS} ms\n${output()}`)
    }
    await new Promise((r) => setTimeout(r, 50))
  }
  return {
    child,
    base: `http://127.0.0.1:${port}`,
    stdout: () => stdout,
    stderr: () => stderr,
    exited,
  }
}

/** Stops a program by its pid and waits for it to exit. */
async function stop(p: Program): Promise<void> {
  kill(p.child, 'SIGKILL')
  await p.exited
}

async function get(
  p: Program,
  path: string,
): Promise<{ status: number; xCache: string | null; cacheStatus: string | null; body: string }> {
  const res = await fetch(p.base + path)
  return {
    status: res.status,
    xCache: res.headers.get('x-cache'),
    cacheStatus: res.headers.get('cache-status'),
    body: await res.text(),
  }
}

/** Waits (bounded, generously) until `done()` holds; the assertion after it says what was missing. */
async function eventually(done: () => boolean, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!done() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
}

/** A fresh HIT, or one coalesced with the first request's render (its write may still be going). */
const HIT_STATUS = /^express-ft-cache; hit; ttl=\d+(; detail=coalesced)?$/

/** GET twice: rendered (MISS, to be stored), then answered from memcached (HIT, same body). */
async function missThenHit(p: Program, path: string): Promise<void> {
  const first = await get(p, path)
  assert.equal(first.status, 200, first.body)
  assert.equal(first.xCache, 'MISS')
  assert.equal(first.cacheStatus, 'express-ft-cache; fwd=miss; fwd-status=200')
  const second = await get(p, path)
  assert.equal(second.status, 200)
  assert.equal(second.xCache, 'HIT', `second GET ${path}: ${second.cacheStatus}`)
  assert.match(second.cacheStatus ?? '', HIT_STATUS)
  assert.equal(second.body, first.body, 'the HIT replays the rendered body')
}

function example(name: string): Block {
  const b = examples.get(name)
  assert.ok(b, `the README has a block marked <!-- example: ${name} -->`)
  return b
}

/** Writes a block to the workspace under `dir` and returns its path. */
async function save(dir: 'esm' | 'cjs', name: string, code: string): Promise<string> {
  const file = join(work, dir, name)
  await writeFile(file, code)
  return file
}

/** The CommonJS form of an ESM example: its import lines as require() calls, nothing else. */
function toCommonJs(code: string): string {
  const out = code
    .replace(/^import (\w+) from '([^']+)'$/gm, "const $1 = require('$2')")
    .replace(/^import \{ ([^}]+) \} from '([^']+)'$/gm, "const { $1 } = require('$2')")
  assert.doesNotMatch(out, /^import /m, 'every import has a require() form')
  return out
}

/** What each README program must do, given a running instance of it. */
const CHECKS: Record<string, (p: Program, mc: MemcachedProcess) => Promise<void>> = {
  'quick-start': async (p) => {
    await missThenHit(p, '/')
  },
  'full-setup': async (p) => {
    await missThenHit(p, '/news')
    for (let i = 0; i < 2; i++) {
      const me = await get(p, '/me')
      assert.equal(me.xCache, 'BYPASS')
      assert.equal(me.cacheStatus, 'express-ft-cache; fwd=bypass; detail=disabled')
    }
    // pino-http's completion line carries the outcome (it reaches our pipe a little later).
    await eventually(() => /"cache":"HIT"/.test(p.stdout()))
    assert.match(p.stdout(), /"cache":"HIT"/)
    // SIGTERM: the server closes, cache.close() runs, and the process exits by itself.
    kill(p.child, 'SIGTERM')
    const timer = setTimeout(() => kill(p.child), EXIT_TIMEOUT_MS)
    const { code, signal } = await p.exited
    clearTimeout(timer)
    assert.deepEqual(
      { code, signal },
      { code: 0, signal: null },
      `exits cleanly after SIGTERM\n${p.stderr()}`,
    )
  },
  prometheus: async (p, mc) => {
    await missThenHit(p, '/')
    const res = await fetch(`${p.base}/metrics`)
    assert.equal(res.status, 200)
    assert.equal(res.headers.get('x-cache'), null, '/metrics is mounted before the cache')
    const text = await res.text()
    for (const line of [
      '# TYPE eftc_requests_total counter',
      'eftc_requests_total{outcome="miss"} 1',
      'eftc_requests_total{outcome="hit"} 1',
      'eftc_renders_total 1',
      '# TYPE eftc_breaker_open gauge',
      `eftc_breaker_open{server="${mc.address}"} 0`,
    ]) {
      assert.ok(text.split('\n').includes(line), `/metrics has "${line}":\n${text}`)
    }
  },
}

describe('README code blocks', () => {
  it('marks every js/ts block as an example or a fragment, and knows how to check each example', () => {
    assert.ok(blocks.length > 0)
    for (const b of blocks) {
      assert.ok(
        b.marker !== undefined,
        `README.md:${b.line}: mark this block with <!-- example: NAME --> (a complete program) or <!-- fragment -->`,
      )
    }
    assert.deepEqual([...examples.keys()].sort(), Object.keys(CHECKS).sort())
  })

  it('writes programs that listen on process.env.PORT', () => {
    for (const [name, b] of examples) assert.match(b.code, /process\.env\.PORT \?\? 3000/, name)
  })
})

for (const major of [5, 4] as const) {
  describe(`README programs (express ${major})`, () => {
    let mc: MemcachedProcess
    before(async () => {
      mc = await startMemcached()
    })
    after(async () => {
      await mc?.stop()
    })

    for (const name of Object.keys(CHECKS)) {
      it(`${name} runs as written (ESM)`, async () => {
        // A fresh memcached namespace per program: the examples share paths such as `/`.
        await mc.restart()
        const file = await save('esm', `${name}.mjs`, example(name).code)
        const p = await start(file, major, { MEMCACHE_SERVERS: mc.address })
        try {
          await CHECKS[name]?.(p, mc)
        } finally {
          await stop(p)
        }
      })
    }

    it('full-setup runs as CommonJS', async () => {
      await mc.restart()
      const code = toCommonJs(example('full-setup').code)
      const file = await save('cjs', 'full-setup.cjs', code)
      const p = await start(file, major, { MEMCACHE_SERVERS: mc.address })
      try {
        await CHECKS['full-setup']?.(p, mc)
      } finally {
        await stop(p)
      }
    })
  })
}

describe('README quick start without memcached', () => {
  it('answers every request uncached and warns once that memcached is unreachable', async () => {
    // A port nothing listens on: what a user without memcached has at 127.0.0.1:11211.
    const nobody = `127.0.0.1:${await freePort()}`
    const file = await save('esm', 'quick-start-no-memcached.mjs', example('quick-start').code)
    const p = await start(file, 5, { MEMCACHE_SERVERS: nobody })
    try {
      for (let i = 0; i < 3; i++) {
        const res = await get(p, '/')
        assert.equal(res.status, 200)
        assert.equal(res.xCache, 'MISS')
      }
      await eventually(() => p.stderr().includes('EFTC_MEMCACHED_UNREACHABLE'))
      const warnings = p.stderr().match(/"code":"EFTC_MEMCACHED_UNREACHABLE"/g) ?? []
      assert.equal(warnings.length, 1, `one unreachable warning on stderr:\n${p.stderr()}`)
      assert.ok(
        p.stderr().includes(`memcached is unreachable at ${nobody}`),
        'the warning names the server',
      )
    } finally {
      await stop(p)
    }
  })
})

/**
 * Declarations the fragments use without defining: the app, the cache, handlers and helpers a
 * real app would have. A fragment's own declarations shadow these (each fragment is a module).
 */
const PRELUDE = `
declare const app: import('express').Express
declare const cache: import('express-ft-cache').ResponseCache
declare const responseCache: typeof import('express-ft-cache').responseCache
declare const MemoryStore: typeof import('express-ft-cache').MemoryStore
type CacheStats = import('express-ft-cache').CacheStats
declare const dashboard: import('express').RequestHandler
declare const tenantHome: import('express').RequestHandler
declare const productPage: import('express').RequestHandler
declare const pricingPage: import('express').RequestHandler
declare function renderCatalog(): string
declare function savePrice(id: string | undefined, body: unknown): Promise<void>
/** What passport and similar middleware add. */
declare namespace Express {
  interface Request {
    user?: { id: string }
  }
}
`

describe('README fragments', () => {
  it('type-check against the package types (strict, noUncheckedIndexedAccess)', async () => {
    assert.ok(fragments.length > 0)
    const dir = join(work, 'types')
    const prelude = join(dir, 'prelude.d.ts')
    await writeFile(prelude, PRELUDE)
    const files = new Map<string, Block>()
    for (const [i, b] of fragments.entries()) {
      const file = join(dir, `fragment-${i}.ts`)
      // `export {}` makes every fragment a module: top-level await works and names stay local.
      await writeFile(file, `${b.code}export {}\n`)
      files.set(file, b)
    }
    const program = ts.createProgram({
      rootNames: [prelude, ...files.keys()],
      options: {
        target: ts.ScriptTarget.ES2022,
        module: ts.ModuleKind.NodeNext,
        moduleResolution: ts.ModuleResolutionKind.NodeNext,
        lib: ['lib.es2023.d.ts'],
        types: ['node'],
        strict: true,
        noUncheckedIndexedAccess: true,
        skipLibCheck: true,
        noEmit: true,
        paths: { 'express-ft-cache': [SRC_INDEX] },
      },
    })
    const problems: string[] = []
    for (const d of ts.getPreEmitDiagnostics(program)) {
      const block = d.file === undefined ? undefined : files.get(d.file.fileName)
      if (d.file !== undefined && block === undefined && d.file.fileName !== prelude) continue
      const where =
        d.file !== undefined && d.start !== undefined && block !== undefined
          ? `README.md:${block.line + 1 + d.file.getLineAndCharacterOfPosition(d.start).line}`
          : (d.file?.fileName ?? 'program')
      problems.push(`${where}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`)
    }
    assert.deepEqual(problems, [])
  })
})
