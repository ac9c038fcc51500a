/**
 * Parent side of the load generator: forks ./load-worker.ts once and sends it jobs over IPC.
 * Kills only the child it started.
 */
import { type ChildProcess, fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { Job, JobResult } from './load-worker.js'

export type { BurstJob, Job, JobResult, LoadJob } from './load-worker.js'

const WORKER = fileURLToPath(new URL('./load-worker.ts', import.meta.url))

export interface LoadGenerator {
  readonly pid: number
  run(job: Job): Promise<JobResult>
  close(): Promise<void>
}

export async function startLoadGenerator(): Promise<LoadGenerator> {
  const child: ChildProcess = fork(WORKER, [], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  const pending = new Map<number, { resolve: (r: JobResult) => void; reject: (e: Error) => void }>()
  let nextId = 1
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  child.on('exit', (code, signal) => {
    for (const p of pending.values())
      p.reject(new Error(`load generator exited (${code ?? signal})`))
    pending.clear()
  })
  await new Promise<void>((resolve, reject) => {
    child.once('message', () => resolve())
    child.once('exit', (code) =>
      reject(new Error(`load generator exited during start-up (${code})`)),
    )
  })
  child.on('message', (m: { id: number; result?: JobResult; error?: string }) => {
    const p = pending.get(m.id)
    if (!p) return
    pending.delete(m.id)
    if (m.result) p.resolve(m.result)
    else p.reject(new Error(m.error ?? 'load generator failed'))
  })
  const kill = (): void => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  }
  process.once('exit', kill)
  return {
    pid: child.pid ?? -1,
    run(job) {
      const id = nextId++
      return new Promise<JobResult>((resolve, reject) => {
        pending.set(id, { resolve, reject })
        child.send({ id, job })
      })
    },
    async close() {
      if (child.exitCode !== null || child.signalCode !== null) return
      child.disconnect()
      const timer = setTimeout(kill, 2000)
      await exited
      clearTimeout(timer)
    },
  }
}
