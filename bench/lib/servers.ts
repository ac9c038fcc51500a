/**
 * Parent side of ../fixtures/peer-server.ts: forks one server process, waits for its port, and
 * stops it by disconnecting (it exits cleanly; SIGKILL after a grace period). Kills only the
 * children it started.
 */
import { type ChildProcess, fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { ContenderId } from './contenders.js'

const SERVER = fileURLToPath(new URL('../fixtures/peer-server.ts', import.meta.url))

/** Children still running, killed if this process exits first (one listener for all of them). */
const running = new Set<ChildProcess>()
process.once('exit', () => {
  for (const child of running) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  }
})

export interface ServerOptions {
  readonly contenders: readonly ContenderId[]
  readonly servers: string
  readonly prefix: string
  readonly ttlS: number
  readonly originMs: number
  /** Extra node flags, e.g. `--cpu-prof`. */
  readonly nodeArgs?: readonly string[]
}

export interface PeerServer {
  readonly port: number
  readonly pid: number
  /** Contenders that declined to start, with the reason. */
  readonly skipped: Readonly<Record<string, string>>
  /** Origin calls per URL since the previous call. */
  calls(): Promise<Record<string, number>>
  /** CPU time the process used so far (µs) and the requests it served (this one included). */
  cpu(): Promise<{ cpuUs: number; served: number }>
  /** Waits for the server's pending cache writes. */
  settled(): Promise<void>
  stop(): Promise<void>
}

export async function startServer(o: ServerOptions): Promise<PeerServer> {
  const child: ChildProcess = fork(SERVER, [], {
    execArgv: ['--import', 'tsx', ...(o.nodeArgs ?? [])],
    env: {
      ...process.env,
      // apicache adds two debug headers per response outside production; users deploy with this.
      NODE_ENV: 'production',
      BENCH_CONTENDERS: o.contenders.join(','),
      BENCH_SERVERS: o.servers,
      BENCH_PREFIX: o.prefix,
      BENCH_TTL_S: String(o.ttlS),
      BENCH_ORIGIN_MS: String(o.originMs),
      MEMCACHIER_SERVERS: '',
      MEMCACHE_USERNAME: '',
      MEMCACHIER_USERNAME: '',
    },
    // The server's stdout goes to our stderr: our stdout is the report.
    stdio: ['ignore', 2, 2, 'ipc'],
  })
  const kill = (): void => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  }
  running.add(child)
  const exited = new Promise<void>((resolve) =>
    child.once('exit', () => {
      running.delete(child)
      resolve()
    }),
  )
  const ready = await new Promise<{ port: number; skipped: Record<string, string> }>(
    (resolve, reject) => {
      child.once('message', (m) => resolve(m as { port: number; skipped: Record<string, string> }))
      child.once('exit', (code) => reject(new Error(`peer server exited with ${code}`)))
    },
  )
  const base = `http://127.0.0.1:${ready.port}`
  return {
    port: ready.port,
    pid: child.pid ?? -1,
    skipped: ready.skipped,
    async calls() {
      const r = await fetch(`${base}/__calls`)
      return (await r.json()) as Record<string, number>
    },
    async cpu() {
      const r = await fetch(`${base}/__cpu`)
      return (await r.json()) as { cpuUs: number; served: number }
    },
    async settled() {
      await (await fetch(`${base}/__settled`)).arrayBuffer()
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return
      child.disconnect()
      const timer = setTimeout(kill, 5000)
      await exited
      clearTimeout(timer)
    },
  }
}
