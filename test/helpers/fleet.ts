import { type ChildProcess, fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const WORKER = fileURLToPath(new URL('../fixtures/worker.ts', import.meta.url))

/** A child app process's environment: ours plus `env`, memjs's env fallbacks scrubbed. */
export function workerEnv(env: Record<string, string>): NodeJS.ProcessEnv {
  return {
    ...process.env,
    ...env,
    MEMCACHIER_SERVERS: '',
    MEMCACHE_USERNAME: '',
    MEMCACHIER_USERNAME: '',
  }
}

export interface Worker {
  readonly port: number
  readonly child: ChildProcess
  calls(): Promise<number>
  kill(): Promise<void>
}

export interface Fleet {
  readonly workers: Worker[]
  /** Origin calls summed over the workers still alive. */
  calls(): Promise<number>
  get(i: number, path: string, headers?: Record<string, string>): Promise<Reply>
  stop(): Promise<void>
}

export interface Reply {
  readonly status: number
  readonly body: string
  readonly cache: string | null
  readonly ms: number
}

/**
 * Starts one app process from `worker` (a fixture module that reports its port over IPC, and
 * serves GET /__calls) and waits for its port.
 */
export async function spawnWorker(
  env: Record<string, string>,
  worker: string = WORKER,
): Promise<Worker> {
  const child = fork(worker, [], {
    execArgv: ['--import', 'tsx'],
    env: workerEnv(env),
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  const port = await new Promise<number>((resolve, reject) => {
    child.once('message', (m) => resolve((m as { port: number }).port))
    child.once('exit', (code) => reject(new Error(`worker exited with ${code}`)))
  })
  return {
    port,
    child,
    async calls() {
      const r = await fetch(`http://127.0.0.1:${port}/__calls`)
      return ((await r.json()) as { calls: number }).calls
    },
    async kill() {
      if (child.exitCode !== null || child.signalCode !== null) return
      const exited = new Promise((r) => child.once('exit', r))
      child.kill('SIGKILL')
      await exited
    },
  }
}

/** Starts `size` app processes (child processes sharing the memcached servers) and waits for their ports. */
export async function startFleet(size: number, env: Record<string, string>): Promise<Fleet> {
  const workers = await Promise.all(Array.from({ length: size }, () => spawnWorker(env)))
  const alive = (): Worker[] =>
    workers.filter((w) => w.child.exitCode === null && w.child.signalCode === null)
  return {
    workers,
    async calls() {
      const counts = await Promise.all(alive().map((w) => w.calls()))
      return counts.reduce((a, b) => a + b, 0)
    },
    async get(i, path, headers = {}) {
      const live = alive()
      const worker = live[i % live.length] as Worker
      const started = performance.now()
      const r = await fetch(`http://127.0.0.1:${worker.port}${path}`, { headers })
      const body = await r.text()
      return {
        status: r.status,
        body,
        cache: r.headers.get('x-cache'),
        ms: performance.now() - started,
      }
    },
    async stop() {
      await Promise.all(workers.map((w) => w.kill()))
    },
  }
}

/** Fires `n` requests spread over the fleet, each after a random delay up to `jitterMs`. */
export function burst(
  fleet: Fleet,
  n: number,
  path: string,
  jitterMs = 30,
  offset = 0,
  headers: Record<string, string> = {},
): Promise<Reply[]> {
  return Promise.all(
    Array.from({ length: n }, async (_, i) => {
      await new Promise((r) => setTimeout(r, Math.random() * jitterMs))
      return fleet.get(i + offset, path, headers)
    }),
  )
}
