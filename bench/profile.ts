/**
 * CPU profile of the express-ft-cache HIT path: the memcached contender of the peer benchmark
 * (10 KB body, entry fresh) under load, its server run with `node --cpu-prof`; then the top
 * functions by self time, and self time per module (src file, package or Node internals).
 *
 * Run: node --import tsx bench/profile.ts                    (profile, then summarise)
 *      node --import tsx bench/profile.ts FILE.cpuprofile    (summarise an existing profile)
 * Environment: BENCH_PROFILE_MS (load duration, default 8000), BENCH_PROFILE_PATH (default /b/10),
 * BENCH_PROFILE_CONTENDER (default eftc), BENCH_CONCURRENCY (default 8).
 */
import { mkdirSync, readdirSync, readFileSync } from 'node:fs'
import { findSourceMap, SourceMap } from 'node:module'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { startMemcached } from '../test/helpers/memcached.js'
import { CONTENDERS, type ContenderId } from './lib/contenders.js'
import { startLoadGenerator } from './lib/load.js'
import { describeMachine, machineLine } from './lib/machine.js'
import { startServer } from './lib/servers.js'
import { envNumber, perSecond, progress, table } from './lib/stats.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const TOP = 25

/** The parts of V8's .cpuprofile format (Chrome DevTools protocol `Profiler.Profile`) used here. */
interface CpuProfile {
  readonly nodes: readonly {
    readonly id: number
    readonly children?: readonly number[]
    readonly callFrame: {
      readonly functionName: string
      readonly url: string
      readonly lineNumber: number
      readonly columnNumber: number
    }
  }[]
  readonly startTime: number
  readonly endTime: number
  readonly samples: readonly number[]
  /** Microseconds since the previous sample. */
  readonly timeDeltas: readonly number[]
}

/** A file URL as a path relative to the repository, node_modules shortened to the package. */
function where(url: string): string {
  if (url === '') return '(native)'
  if (url.startsWith('node:')) return url
  const path = url.startsWith('file://') ? fileURLToPath(url) : url
  const nm = path.lastIndexOf('node_modules/')
  if (nm !== -1) return path.slice(nm)
  return path.startsWith(ROOT) ? relative(ROOT, path) : path
}

/** What a location belongs to: `node` internals, a package, or a project file. */
function moduleOf(url: string): string {
  if (url === '') return '(native / V8)'
  if (url.startsWith('node:')) return 'node internals'
  const w = where(url)
  if (w.startsWith('node_modules/')) {
    const parts = w.slice('node_modules/'.length).split('/')
    return parts[0]?.startsWith('@') ? `${parts[0]}/${parts[1]}` : (parts[0] ?? w)
  }
  return w
}

/** dist/index.js's source map (the benchmarks load the built library), read once. */
let distMap: SourceMap | null | undefined
const DIST = join(ROOT, 'dist', 'index.js')

/**
 * Where a frame's code was written: a position in the built dist/index.js maps back through its
 * source map to the src/ file and line (1-based); other frames keep their URL, with the line
 * mapped as {@link sourceLine} does.
 */
async function located(
  url: string,
  line: number,
  column: number,
): Promise<{ url: string; line: number }> {
  if (url.startsWith('file://') && fileURLToPath(url) === DIST) {
    if (distMap === undefined) {
      try {
        distMap = new SourceMap(JSON.parse(readFileSync(`${DIST}.map`, 'utf8')))
      } catch {
        distMap = null
      }
    }
    const entry = distMap?.findEntry(line, column)
    if (entry !== undefined && 'originalSource' in entry) {
      return { url: new URL(entry.originalSource, url).href, line: entry.originalLine + 1 }
    }
    return { url, line: line + 1 }
  }
  return { url, line: await sourceLine(url, line, column) }
}

/**
 * tsx strips whitespace, so the profile's positions are columns on one line. Importing the same
 * src module here makes tsx transpile it identically and register its source map, which maps the
 * position back to the .ts line. Only src/ is imported: it has no side effects at import time.
 */
async function sourceLine(url: string, line: number, column: number): Promise<number> {
  const src = join(ROOT, 'src')
  if (!url.startsWith('file://') || !fileURLToPath(url).startsWith(src)) return line + 1
  try {
    await import(url)
    const entry = findSourceMap(url)?.findEntry(line, column)
    return entry !== undefined && 'originalLine' in entry ? entry.originalLine + 1 : line + 1
  } catch {
    return line + 1
  }
}

/**
 * `lastMs`: count only the samples of the profile's last `lastMs` (the load, not the start-up, whose
 * module loading would otherwise fill the top of the list).
 */
export async function summarise(profile: CpuProfile, lastMs?: number): Promise<string> {
  const byNode = new Map(profile.nodes.map((n) => [n.id, n]))
  const self = new Map<number, number>()
  const from = lastMs === undefined ? Number.NEGATIVE_INFINITY : profile.endTime - lastMs * 1000
  let t = profile.startTime
  let counted = 0
  // V8 stamps each sample with the time since the previous one: that interval belongs to the
  // sample that ends it.
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i]!
    const delta = profile.timeDeltas[i] ?? 0
    t += delta
    if (t < from) continue
    counted++
    self.set(id, (self.get(id) ?? 0) + delta)
  }
  const fns = new Map<string, { name: string; at: string; module: string; us: number }>()
  const modules = new Map<string, number>()
  let total = 0
  let idle = 0
  for (const [id, us] of self) {
    const frame = byNode.get(id)?.callFrame
    if (frame === undefined) continue
    if (frame.functionName === '(idle)') {
      idle += us
      continue
    }
    total += us
    const loc =
      frame.url === '' ? undefined : await located(frame.url, frame.lineNumber, frame.columnNumber)
    const at = loc === undefined ? '' : `${where(loc.url)}:${loc.line}`
    const key = `${frame.functionName}@${at}`
    const m = moduleOf(loc?.url ?? '')
    const f = fns.get(key) ?? { name: frame.functionName || '(anonymous)', at, module: m, us: 0 }
    f.us += us
    fns.set(key, f)
    modules.set(m, (modules.get(m) ?? 0) + us)
  }
  const pct = (us: number): string => `${((100 * us) / total).toFixed(1)}%`
  const msOf = (us: number): string => (us / 1000).toFixed(0)
  const out: string[] = []
  const wall = (profile.endTime - Math.max(profile.startTime, from)) / 1000
  out.push(
    `Profile${lastMs === undefined ? '' : ' (its last part, under load)'}: ${(wall / 1000).toFixed(1)} s wall, ` +
      `${(total / 1000).toFixed(0)} ms on CPU (idle ${(idle / 1000).toFixed(0)} ms not counted), ${counted} samples. ` +
      'Locations: the line where the function starts (dist/ mapped back to src/ through its source map).',
  )
  out.push('')
  out.push(`### Top ${TOP} functions by self time`)
  out.push('')
  out.push(
    table(
      ['#', 'self ms', 'self %', 'function', 'location'],
      [...fns.values()]
        .sort((a, b) => b.us - a.us)
        .slice(0, TOP)
        .map((f, i) => [String(i + 1), msOf(f.us), pct(f.us), `\`${f.name}\``, f.at || '(native)']),
    ),
  )
  // Inclusive time of the project's own functions: where the library's share of the CPU goes,
  // including what it calls (Node's http, memjs, crypto).
  const parent = new Map<number, number>()
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
  const ownKey = async (id: number): Promise<string | undefined> => {
    const f = byNode.get(id)?.callFrame
    if (f === undefined || !f.url.startsWith('file://') || f.url.includes('/node_modules/'))
      return undefined
    const loc = await located(f.url, f.lineNumber, f.columnNumber)
    const path = where(loc.url)
    if (!path.startsWith('src/')) return undefined
    return `\`${f.functionName || '(anonymous)'}\` ${path}:${loc.line}`
  }
  const keyOf = new Map<number, string | undefined>()
  for (const n of profile.nodes) keyOf.set(n.id, await ownKey(n.id))
  const inclusive = new Map<string, number>()
  let underSrc = 0
  for (const [id, us] of self) {
    const seen = new Set<string>()
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const k = keyOf.get(at)
      if (k !== undefined) seen.add(k)
    }
    if (seen.size > 0) underSrc += us
    for (const k of seen) inclusive.set(k, (inclusive.get(k) ?? 0) + us)
  }
  out.push('')
  out.push(
    `### express-ft-cache functions by inclusive time (self + callees; ${pct(underSrc)} of the CPU has one on the stack)`,
  )
  out.push('')
  out.push(
    table(
      ['function', 'inclusive ms', 'inclusive %'],
      [...inclusive.entries()]
        .sort((a, b) => b[1] - a[1])
        .slice(0, 15)
        .map(([k, us]) => [k, msOf(us), pct(us)]),
    ),
  )
  out.push('')
  out.push('### Self time by module')
  out.push('')
  out.push(
    table(
      ['module', 'self ms', 'self %'],
      [...modules.entries()]
        .sort((a, b) => b[1] - a[1])
        .slice(0, 20)
        .map(([m, us]) => [m, msOf(us), pct(us)]),
    ),
  )
  return `${out.join('\n')}\n`
}

async function profileNow(): Promise<string> {
  const contender = (process.env.BENCH_PROFILE_CONTENDER ?? 'eftc') as ContenderId
  if (!CONTENDERS.includes(contender)) throw new Error(`unknown contender ${contender}`)
  const path = process.env.BENCH_PROFILE_PATH ?? '/b/10'
  const durationMs = envNumber('BENCH_PROFILE_MS', 8000)
  const connections = envNumber('BENCH_CONCURRENCY', 8)
  const dir = join(ROOT, '.tmp', 'profile', `${Date.now().toString(36)}`)
  mkdirSync(dir, { recursive: true })
  const mc = await startMemcached({ memoryMb: 64 })
  const load = await startLoadGenerator()
  try {
    const server = await startServer({
      contenders: [contender],
      servers: mc.address,
      prefix: `prof${Date.now().toString(36)}`,
      ttlS: 3600,
      originMs: 100,
      nodeArgs: ['--cpu-prof', '--cpu-prof-dir', dir, '--cpu-prof-interval', '250'],
    })
    if (server.skipped[contender] !== undefined) {
      await server.stop()
      throw new Error(`${contender}: ${server.skipped[contender]}`)
    }
    // Not pinned to CPUs as the peer benchmark is: the profiler's sampling thread would share the
    // main thread's CPU and slow it down by half.
    for (let i = 0; i < 2; i++) {
      await fetch(`http://127.0.0.1:${server.port}${path}`).then((r) => r.arrayBuffer())
      await server.settled()
    }
    progress(`profile: ${contender} ${path}, ${connections} connections, ${durationMs} ms`)
    const loadStart = performance.now()
    const r = await load.run({
      kind: 'load',
      port: server.port,
      method: 'GET',
      path,
      concurrency: connections,
      warmupMs: 500,
      durationMs,
    })
    await server.stop()
    const underLoadMs = performance.now() - loadStart
    // One file per thread (CPU.date.time.pid.thread.seq.cpuprofile): tsx's module hooks run on a
    // worker thread; the server runs on thread 0.
    const file = readdirSync(dir)
      .filter((f) => /\.0\.\d+\.cpuprofile$/.test(f))
      .map((f) => join(dir, f))[0]
    if (file === undefined) throw new Error(`no main-thread .cpuprofile written in ${dir}`)
    const xCache = Object.entries(r.cache)
      .map(([k, v]) => `${k} ×${v}`)
      .join(', ')
    const head = [
      `## CPU profile: ${contender} HIT path, GET ${path} (bench/profile.ts)`,
      '',
      `Machine: ${machineLine(describeMachine())}. Server under \`node --cpu-prof\` (250 µs sampling); ` +
        `${connections} keep-alive connections from a separate process; ${perSecond(r.completed / (durationMs / 1000))} req/s ` +
        `while profiled; X-Cache: ${xCache}; errors: ${r.errors}. Profile: ${relative(ROOT, file)}.`,
      '',
    ].join('\n')
    return (
      head + (await summarise(JSON.parse(readFileSync(file, 'utf8')) as CpuProfile, underLoadMs))
    )
  } finally {
    await load.close()
    await mc.stop()
  }
}

async function main(): Promise<void> {
  const file = process.argv[2]
  const text =
    file === undefined
      ? await profileNow()
      : await summarise(JSON.parse(readFileSync(file, 'utf8')) as CpuProfile)
  process.stdout.write(text)
}

main().catch((error: unknown) => {
  console.error(error)
  process.exitCode = 1
})
