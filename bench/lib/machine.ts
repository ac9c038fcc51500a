/** The machine a benchmark ran on, for the report: numbers only mean something next to it. */
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { arch, cpus, loadavg, release, totalmem, type } from 'node:os'
import { memcachedBinary } from '../../test/helpers/memcached.js'

export interface Machine {
  readonly cores: number
  readonly cpuModel: string
  readonly node: string
  readonly memcached: string
  readonly os: string
  readonly memoryGiB: number
  readonly loadAverage1m: number
}

/** `model name` from /proc/cpuinfo (Linux), else what os.cpus() says. */
function cpuModel(): string {
  try {
    const line = readFileSync('/proc/cpuinfo', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('model name'))
    const model = line?.split(':')[1]?.trim()
    if (model) return model
  } catch {
    // Not Linux.
  }
  return cpus()[0]?.model ?? 'unknown'
}

export function describeMachine(): Machine {
  let memcached = 'unknown'
  try {
    const r = spawnSync(memcachedBinary(), ['-V'], { encoding: 'utf8' })
    if (r.status === 0) memcached = r.stdout.trim()
  } catch {
    // Reported as unknown.
  }
  return {
    cores: cpus().length,
    cpuModel: cpuModel(),
    node: process.version,
    memcached,
    os: `${type()} ${release()} ${arch()}`,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    loadAverage1m: Number(loadavg()[0]?.toFixed(2)),
  }
}

export function machineLine(m: Machine): string {
  return `${m.cores} × ${m.cpuModel} · ${m.memoryGiB} GiB · ${m.os} · Node ${m.node} · ${m.memcached}`
}
