/**
 * The benchmark origin: renders a ~10 KB HTML page after a fixed amount of CPU work (calibrated
 * once, at start-up, to about 2 ms on this machine). The work is a fixed iteration count, not a
 * busy-wait on the clock, so CPU contention slows every scenario alike.
 */
import { createHash } from 'node:crypto'

let iterations = 0

function work(n: number): number {
  // A hash chain: not optimisable away, no allocation-heavy garbage.
  const h = createHash('sha256')
  let acc = 0
  for (let i = 0; i < n; i++) {
    acc = (acc * 31 + i) | 0
    if ((i & 1023) === 0) h.update(String(acc))
  }
  return acc ^ h.digest()[0]!
}

/** Finds the iteration count that takes `targetMs` (median of several tries). Returns the measured ms. */
export function calibrate(targetMs = 2): { iterations: number; ms: number } {
  let n = 100_000
  for (let pass = 0; pass < 6; pass++) {
    const times: number[] = []
    for (let i = 0; i < 15; i++) {
      const t = performance.now()
      work(n)
      times.push(performance.now() - t)
    }
    times.sort((a, b) => a - b)
    const median = times[7]!
    n = Math.max(1000, Math.round((n * targetMs) / median))
  }
  iterations = n
  const times: number[] = []
  for (let i = 0; i < 31; i++) {
    const t = performance.now()
    work(n)
    times.push(performance.now() - t)
  }
  times.sort((a, b) => a - b)
  return { iterations: n, ms: times[15]! }
}

const ROWS = 116

/** A deterministic ~10 KB HTML page. `cpu` runs the calibrated work first. */
export function renderPage(title: string, cpu = true): string {
  const salt = cpu ? work(iterations) & 0 : 0
  let rows = ''
  for (let i = 0; i < ROWS; i++) {
    rows += `<tr><td>${i + salt}</td><td>item-${(i * 7919) % 10007}</td><td>${'lorem ipsum dolor sit amet '.slice(0, 20 + (i % 7))}</td><td>${(i * Math.PI).toFixed(3)}</td></tr>\n`
  }
  return `<!doctype html><html><head><title>${title}</title></head><body><h1>${title}</h1><table>\n${rows}</table></body></html>\n`
}
