/** CPU time of another process, from /proc (Linux); undefined elsewhere or when it is gone. */
import { readFileSync } from 'node:fs'

/** Clock ticks per second of /proc/PID/stat times: USER_HZ, 100 on every mainstream Linux build. */
const USER_HZ = 100

/** utime + stime of `pid` in microseconds (10 ms resolution). */
export function processCpuUs(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // The command name (field 2) may contain spaces: count fields after its closing parenthesis.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    const utime = Number(fields[11])
    const stime = Number(fields[12])
    if (!Number.isFinite(utime) || !Number.isFinite(stime)) return undefined
    return ((utime + stime) * 1_000_000) / USER_HZ
  } catch {
    return undefined
  }
}
