/** Small statistics and Markdown helpers shared by the benchmarks. */

/** Nearest-rank quantile of an ascending array (q in [0, 1]). NaN when empty. */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return Number.NaN
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))
  return sorted[rank] as number
}

export interface LatencySummary {
  readonly count: number
  readonly p50: number
  readonly p90: number
  readonly p99: number
  readonly max: number
  readonly mean: number
}

export function summarize(values: ArrayLike<number>): LatencySummary {
  const sorted = Float64Array.from(values).sort()
  let sum = 0
  for (const v of sorted) sum += v
  return {
    count: sorted.length,
    p50: quantile(sorted, 0.5),
    p90: quantile(sorted, 0.9),
    p99: quantile(sorted, 0.99),
    max: sorted.length ? (sorted[sorted.length - 1] as number) : Number.NaN,
    mean: sorted.length ? sum / sorted.length : Number.NaN,
  }
}

export function median(values: readonly number[]): number {
  return quantile(Float64Array.from(values).sort(), 0.5)
}

export function mean(values: readonly number[]): number {
  return values.reduce((a, b) => a + b, 0) / values.length
}

/** "1.23×", or "n/a" for a non-finite ratio. */
export function ratio(x: number, digits = 2): string {
  return Number.isFinite(x) ? `${x.toFixed(digits)}×` : 'n/a'
}

/** Median ratio and its range over rounds: "0.98× (0.95–1.02)". */
export function ratioRange(values: readonly number[], digits = 2): string {
  if (values.length === 0) return 'n/a'
  const sorted = [...values].sort((a, b) => a - b)
  const lo = sorted[0] as number
  const hi = sorted[sorted.length - 1] as number
  if (values.length === 1) return ratio(lo, digits)
  return `${ratio(median(values), digits)} (${lo.toFixed(digits)}–${hi.toFixed(digits)})`
}

/** Milliseconds with sensible precision. */
export function ms(x: number): string {
  if (!Number.isFinite(x)) return 'n/a'
  if (x < 1) return `${x.toFixed(3)} ms`
  if (x < 10) return `${x.toFixed(2)} ms`
  if (x < 100) return `${x.toFixed(1)} ms`
  return `${Math.round(x)} ms`
}

/** Operations per second, rounded. */
export function perSecond(x: number): string {
  if (!Number.isFinite(x)) return 'n/a'
  return x >= 100 ? Math.round(x).toLocaleString('en-US') : x.toFixed(1)
}

export function bytes(n: number): string {
  if (n >= 1_000_000) return `${n / 1_000_000} MB`
  if (n >= 1000) return `${n / 1000} KB`
  return `${n} B`
}

/** A GitHub-flavoured Markdown table. */
export function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const line = (cells: readonly string[]): string => `| ${cells.join(' | ')} |`
  return [line(headers), line(headers.map(() => '---')), ...rows.map(line)].join('\n')
}

/** Progress goes to stderr; the report (Markdown) goes to stdout. */
export function progress(message: string): void {
  process.stderr.write(`[bench] ${message}\n`)
}

/** Reads a positive number from the environment (for shortening or lengthening a run). */
export function envNumber(name: string, fallback: number): number {
  const raw = process.env[name]
  if (raw === undefined || raw === '') return fallback
  const n = Number(raw)
  if (!(n > 0)) throw new Error(`${name} must be a positive number (got ${raw})`)
  return n
}
