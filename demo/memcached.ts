/**
 * The demo's own memcached: started on a free 127.0.0.1 port when the binary is installed and no
 * memcached answers on 127.0.0.1:11211, so the dashboard can pause and resume it. Only the PID
 * started here is ever signalled.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { accessSync, constants } from 'node:fs'
import net from 'node:net'
import { delimiter, join } from 'node:path'

/** What the dashboard needs of a memcached it may pause: the test passes its own. */
export interface PausableMemcached {
  readonly pid: number
  readonly address: string
  pause(): unknown
  resume(): unknown
}

export interface OwnMemcached extends PausableMemcached {
  stop(): Promise<void>
}

/** MEMCACHED_BIN, or `memcached` on PATH; undefined when neither exists. */
export function findMemcached(): string | undefined {
  const candidates = process.env.MEMCACHED_BIN
    ? [process.env.MEMCACHED_BIN]
    : (process.env.PATH ?? '')
        .split(delimiter)
        .filter(Boolean)
        .map((dir) => join(dir, 'memcached'))
  for (const candidate of candidates) {
    try {
      accessSync(candidate, constants.X_OK)
      return candidate
    } catch {
      // Keep looking.
    }
  }
  return undefined
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo
      server.close(() => resolve(port))
    })
  })
}

/** Answers `version` with `VERSION ...`: a memcached serves there, not just any listener. */
export function answersVersion(host: string, port: number, timeoutMs = 300): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.createConnection({ host, port })
    let reply = ''
    const done = (ok: boolean): void => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(timeoutMs, () => done(false))
    socket.once('connect', () => socket.write('version\r\n'))
    socket.on('data', (chunk) => {
      reply += chunk
      if (reply.includes('\r\n')) done(reply.startsWith('VERSION '))
    })
    socket.once('error', () => done(false))
    socket.once('close', () => done(false))
  })
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

async function startOn(bin: string, port: number): Promise<ChildProcess | undefined> {
  // -U 0: no UDP listener; memcached refuses to run as root without -u.
  const args = ['-l', '127.0.0.1', '-p', String(port), '-U', '0', '-m', '64']
  if (process.getuid?.() === 0) args.push('-u', 'nobody')
  const child = spawn(bin, args, { stdio: 'ignore' })
  child.once('error', () => {})
  const deadline = Date.now() + 5000
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) return undefined // port taken
    if (await answersVersion('127.0.0.1', port, 250)) return child
    await sleep(50)
  }
  child.kill('SIGKILL')
  return undefined
}

/** Starts memcached on a free loopback port; throws when it does not come up. */
export async function startOwnMemcached(bin: string): Promise<OwnMemcached> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort()
    const child = await startOn(bin, port)
    if (child?.pid === undefined) continue
    const pid = child.pid
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
    // A crash or process.exit() must not leave it running: SIGKILL works on a stopped process too.
    const killOnExit = (): void => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    }
    process.once('exit', killOnExit)
    return {
      pid,
      address: `127.0.0.1:${port}`,
      pause: () => process.kill(pid, 'SIGSTOP'),
      resume: () => process.kill(pid, 'SIGCONT'),
      stop: async () => {
        process.off('exit', killOnExit)
        killOnExit()
        await exited
      },
    }
  }
  throw new Error(`could not start ${bin} on a free 127.0.0.1 port`)
}
