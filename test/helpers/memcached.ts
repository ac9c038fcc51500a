/**
 * Real memcached processes for tests.
 *
 * Each server listens on 127.0.0.1 on a free port, is started as
 * `memcached -l 127.0.0.1 -p PORT -U 0 -m 64` (+ `-u nobody` as root), and is ready when a TCP
 * connect succeeds and it answers `version`: the start-up is probed, never slept on. Only the PIDs
 * started here are ever signalled, and whatever is still running when the test process exits is
 * killed.
 *
 * Faults: `pause()` (SIGSTOP: connects still complete in the kernel's backlog, nothing answers),
 * `stop()` (SIGKILL: connections refused), `restart()` (same port), `maxConnections` + idle sockets
 * (connection limit), `itemSize` (-I), `noEvict` (-M: out-of-memory errors instead of eviction), and
 * {@link blackholeServer} (accepts, never answers).
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { accessSync, constants, readFileSync } from 'node:fs'
import { createConnection, createServer, type Server, type Socket } from 'node:net'
import { delimiter, join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'

export interface MemcachedProcess {
  readonly port: number
  /** PID of the current process (changes after `restart()`). */
  readonly pid: number
  /** '127.0.0.1:PORT' */
  readonly address: string
  /** SIGKILL this pid and wait for it to exit. */
  stop(): Promise<void>
  /** SIGSTOP, then wait until the process is seen stopped (signal delivery is asynchronous). */
  pause(): Promise<void>
  /** SIGCONT. */
  resume(): Promise<void>
  /** Kill, start again on the same port, wait until it accepts connections. */
  restart(): Promise<void>
}

export interface StartMemcachedOptions {
  /** -m, megabytes of item memory (default 64). */
  memoryMb?: number
  /** -c, maximum simultaneous connections. */
  maxConnections?: number
  /** -I, largest item size, e.g. '1m', '2m', '512k'. */
  itemSize?: string
  /** -M: return errors when memory is exhausted instead of evicting. */
  noEvict?: boolean
  /** Further arguments, appended as given. */
  extraArgs?: string[]
}

const START_TIMEOUT_MS = 5000
const STOP_TIMEOUT_MS = 5000
const PORT_ATTEMPTS = 5

/** PIDs started by this module and still running: the only ones it will ever kill. */
const running = new Set<number>()

function killAll(): void {
  for (const pid of running) {
    try {
      process.kill(pid, 'SIGKILL')
    } catch {
      // Already gone.
    }
  }
  running.clear()
}

process.on('exit', killAll)
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    killAll()
    // Re-raise with the default disposition now that our listener is gone.
    process.kill(process.pid, signal)
  })
}

/** `MEMCACHED_BIN`, or `memcached` found on PATH. Throws a clear error when neither exists. */
export function memcachedBinary(): string {
  const fromEnv = process.env.MEMCACHED_BIN
  if (fromEnv) {
    try {
      accessSync(fromEnv, constants.X_OK)
      return fromEnv
    } catch {
      throw new Error(`MEMCACHED_BIN=${fromEnv} is not an executable file`)
    }
  }
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue
    const candidate = join(dir, 'memcached')
    try {
      accessSync(candidate, constants.X_OK)
      return candidate
    } catch {
      // Keep looking.
    }
  }
  throw new Error(
    'memcached is not installed or not on PATH: install it (Debian/Ubuntu: `apt-get install -y memcached`, ' +
      'macOS: `brew install memcached`) or set MEMCACHED_BIN to its path',
  )
}

/** A port that was free a moment ago: bind 127.0.0.1:0, read the port, close. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      const port = typeof address === 'object' && address ? address.port : 0
      server.close(() => (port ? resolve(port) : reject(new Error('could not read a free port'))))
    })
  })
}

/**
 * One readiness probe: connect, send `version`, expect `VERSION ...`. Answering the command (not just
 * accepting the connection) proves it is our memcached serving, not another process that took the
 * port in between.
 */
function probe(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port })
    let reply = ''
    const done = (ok: boolean) => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(250, () => done(false))
    socket.once('connect', () => socket.write('version\r\n'))
    socket.on('data', (chunk) => {
      reply += chunk
      if (reply.includes('\r\n')) done(reply.startsWith('VERSION '))
    })
    socket.once('error', () => done(false))
    socket.once('close', () => done(false))
  })
}

interface Launched {
  child: ChildProcess
  exited: Promise<void>
  stderr: () => string
}

function launch(bin: string, args: string[]): Launched {
  const child = spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr?.setEncoding('utf8')
  child.stderr?.on('data', (chunk: string) => {
    if (stderr.length < 10_000) stderr += chunk
  })
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => {
      if (child.pid !== undefined) running.delete(child.pid)
      resolve()
    })
    // A spawn failure emits 'error' (and maybe no 'exit').
    child.once('error', () => {
      if (child.pid !== undefined) running.delete(child.pid)
      resolve()
    })
  })
  if (child.pid !== undefined) running.add(child.pid)
  // A forgotten server must not keep the test process alive: the 'exit' hook above kills it.
  child.unref()
  ;(child.stderr as Socket | null)?.unref()
  return { child, exited, stderr: () => stderr }
}

/** Waits until memcached answers on 127.0.0.1:port, or the process exits, or START_TIMEOUT_MS passes. */
async function waitReady(launched: Launched, port: number): Promise<'ready' | 'exited'> {
  const { child } = launched
  let exited = false
  void launched.exited.then(() => {
    exited = true
  })
  child.ref() // keep the loop alive while we wait for it
  try {
    const deadline = Date.now() + START_TIMEOUT_MS
    let delay = 5
    while (Date.now() < deadline) {
      if (exited) return 'exited'
      if (await probe(port)) return 'ready'
      await sleep(delay)
      delay = Math.min(delay * 2, 100)
    }
  } finally {
    child.unref()
  }
  child.kill('SIGKILL')
  throw new Error(
    `memcached on port ${port} did not accept connections within ${START_TIMEOUT_MS} ms; stderr:\n${launched.stderr()}`,
  )
}

async function kill(launched: Launched): Promise<void> {
  const { child } = launched
  if (child.exitCode !== null || child.signalCode !== null) return
  child.ref()
  try {
    child.kill('SIGKILL')
    const timeout = sleep(STOP_TIMEOUT_MS, 'timeout' as const, { ref: false })
    if (
      (await Promise.race([launched.exited.then(() => 'exited' as const), timeout])) !== 'exited'
    ) {
      throw new Error(
        `memcached pid ${child.pid} did not exit within ${STOP_TIMEOUT_MS} ms of SIGKILL`,
      )
    }
  } finally {
    child.unref()
  }
}

/** Linux: the process state letter from /proc/PID/stat ('T' = stopped); undefined elsewhere. */
function processState(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3)
  } catch {
    return undefined
  }
}

function buildArgs(port: number, opts: StartMemcachedOptions): string[] {
  const args = ['-l', '127.0.0.1', '-p', String(port), '-U', '0', '-m', String(opts.memoryMb ?? 64)]
  if (process.getuid?.() === 0) args.push('-u', 'nobody')
  if (opts.maxConnections !== undefined) args.push('-c', String(opts.maxConnections))
  if (opts.itemSize !== undefined) args.push('-I', opts.itemSize)
  if (opts.noEvict) args.push('-M')
  if (opts.extraArgs) args.push(...opts.extraArgs)
  return args
}

/** Starts memcached on a free 127.0.0.1 port and resolves once it accepts connections. */
export async function startMemcached(opts: StartMemcachedOptions = {}): Promise<MemcachedProcess> {
  const bin = memcachedBinary()

  async function startOn(port: number): Promise<Launched | undefined> {
    const launched = launch(bin, buildArgs(port, opts))
    const result = await waitReady(launched, port)
    if (result === 'ready') return launched
    // Exited: the port was taken in between (EADDRINUSE) or the arguments are wrong.
    if (/address already in use|bind\(\)|failed to listen/i.test(launched.stderr()))
      return undefined
    throw new Error(
      `memcached exited during start-up (${bin} ${buildArgs(port, opts).join(' ')}); stderr:\n${launched.stderr()}`,
    )
  }

  let current: Launched | undefined
  let port = 0
  for (let attempt = 0; attempt < PORT_ATTEMPTS && !current; attempt++) {
    port = await freePort()
    current = await startOn(port)
  }
  if (!current)
    throw new Error(`could not start memcached on a free port in ${PORT_ATTEMPTS} attempts`)

  const address = `127.0.0.1:${port}`
  const pidOf = (launched: Launched): number => launched.child.pid ?? -1
  let live: Launched = current

  return {
    port,
    address,
    get pid() {
      return pidOf(live)
    },
    async stop() {
      await kill(live)
    },
    async pause() {
      process.kill(pidOf(live), 'SIGSTOP')
      // Delivery is asynchronous: wait until /proc shows the process stopped (bounded), or ~30 ms
      // where /proc is not available.
      if (processState(pidOf(live)) === undefined) {
        await sleep(30)
        return
      }
      const deadline = Date.now() + 1000
      while (processState(pidOf(live)) !== 'T' && Date.now() < deadline) await sleep(2)
    },
    async resume() {
      process.kill(pidOf(live), 'SIGCONT')
    },
    async restart() {
      await kill(live)
      const next = await startOn(port)
      if (!next) throw new Error(`port ${port} was taken while memcached was restarting`)
      live = next
    },
  }
}

export interface BlackholeServer {
  /** '127.0.0.1:PORT' */
  readonly address: string
  /** Connections accepted so far. */
  readonly connections: number
  close(): Promise<void>
}

/**
 * A TCP server on 127.0.0.1 that accepts connections and never reads or answers: memjs connects,
 * writes its request into the socket buffer and waits forever (only deadlines end the wait).
 * (A listener that never accepts is not possible in Node: it always accepts. The kernel would also
 * complete the handshake from its backlog, so the effect on the client is the same.)
 */
export async function blackholeServer(): Promise<BlackholeServer> {
  const sockets = new Set<Socket>()
  let connections = 0
  const server: Server = createServer({ pauseOnConnect: true }, (socket) => {
    connections++
    sockets.add(socket)
    socket.unref()
    socket.on('error', () => {})
    socket.once('close', () => sockets.delete(socket))
  })
  server.unref()
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve())
  })
  const info = server.address()
  const port = typeof info === 'object' && info ? info.port : 0
  return {
    address: `127.0.0.1:${port}`,
    get connections() {
      return connections
    },
    close() {
      for (const socket of sockets) socket.destroy()
      return new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}
