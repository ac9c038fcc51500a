/**
 * CPU pinning for the throughput runs: the server under test alone on CPU 0, the load generator
 * and memcached on the other CPUs. Every contender then runs in the same place (without it, where
 * the scheduler happens to put each server process biases its figures for a whole run), and
 * memcached does not share the server's CPU, as in production where it runs on its own machine.
 * Linux only (util-linux `taskset`); elsewhere, or on one CPU, nothing is pinned and the report
 * says so.
 */
import { spawnSync } from 'node:child_process'
import { availableParallelism } from 'node:os'

export interface Pinning {
  /** CPU list of the server under test, e.g. '0'. */
  readonly server: string
  /** CPU list of the load generator and memcached, e.g. '1' or '1-3'. */
  readonly others: string
}

/** The pinning this machine allows, or undefined (one CPU, no taskset, BENCH_PIN=0). */
export function pinning(): Pinning | undefined {
  if (process.env.BENCH_PIN === '0' || process.platform !== 'linux') return undefined
  const n = availableParallelism()
  if (n < 2) return undefined
  if (spawnSync('taskset', ['--version'], { stdio: 'ignore' }).status !== 0) return undefined
  return { server: '0', others: n === 2 ? '1' : `1-${n - 1}` }
}

/** Pins every thread of a running process to `cpus`; false when taskset refused. */
export function pin(pid: number, cpus: string): boolean {
  return (
    spawnSync('taskset', ['-a', '-p', '-c', cpus, String(pid)], { stdio: 'ignore' }).status === 0
  )
}

/** One line for the report. */
export function describePinning(p: Pinning | undefined): string {
  return p === undefined
    ? 'Processes not pinned to CPUs (taskset unavailable, one CPU, or BENCH_PIN=0).'
    : `Pinned with taskset: each server under test on CPU ${p.server}, the load generator and memcached on CPU ${p.others}.`
}
