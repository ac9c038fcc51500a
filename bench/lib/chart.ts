/**
 * A hand-written SVG bar chart for the peer benchmark: grouped bars of the req/s ratio to plain
 * Express per body size and contender, and a second panel for the slow origin (ratios two orders of
 * magnitude larger, so on their own axis). No dependency; the output is static and diff-friendly.
 * Drawn from results.json ({@link chartFromResults}), so `npm run bench chart` can redraw it
 * without measuring again.
 */

/** The parts of results.json (../peers.ts, ./peer-report.ts) the chart reads. */
export interface ChartSource {
  readonly machine: {
    readonly cores: number
    readonly cpuModel: string
    readonly node: string
    readonly memcached: string
    readonly loadAverage1m?: number
    readonly loadAverage1mBefore?: number
  }
  readonly method: {
    readonly quick: boolean
    readonly mode: string
    readonly rounds: number
    readonly measuredMs: number
    readonly connections: number
    readonly originMs: number
  }
  readonly contenders: readonly { id: string; label: string; skipped?: string }[]
  readonly throughput:
    | readonly {
        readonly id: string
        readonly label: string
        readonly results: Readonly<Record<string, { readonly ratio: number }>>
      }[]
    | null
}

/** The chart of a results.json document; undefined when it holds no throughput results. */
export function chartFromResults(r: ChartSource): string | undefined {
  if (r.throughput === null || r.throughput.length === 0) return undefined
  const ratios = (sc: NonNullable<ChartSource['throughput']>[number]): Record<string, number> =>
    Object.fromEntries(Object.entries(sc.results).map(([id, x]) => [id, x.ratio]))
  const m = r.method
  const load =
    r.machine.loadAverage1m === undefined
      ? ''
      : ` · load average ${r.machine.loadAverage1mBefore ?? '?'} before, ${r.machine.loadAverage1m} after`
  return renderChart({
    title: `req/s relative to plain Express · ${r.machine.cores} × ${r.machine.cpuModel} · Node ${r.machine.node}`,
    note:
      `bench/peers.ts · ${m.connections} keep-alive connections unless a group says otherwise, closed loop` +
      `${m.mode === 'paired' ? ', each contender side by side with plain Express on one CPU' : ''}` +
      ` · median of ${m.rounds} rounds of ${m.measuredMs} ms · ${r.machine.memcached} on loopback${load}` +
      `${m.quick ? ' · QUICK MODE' : ''}`,
    contenders: r.contenders.map((c) => ({
      id: c.id,
      label: c.label,
      skipped: c.skipped !== undefined,
    })),
    groups: r.throughput
      .filter((sc) => sc.id !== 'slow')
      .map((sc) => ({ label: sc.label, values: ratios(sc) })),
    slow: {
      label: `slow origin (${m.originMs} ms)`,
      values: ratios(
        r.throughput.find((sc) => sc.id === 'slow') ?? { id: '', label: '', results: {} },
      ),
    },
  })
}

export interface ChartInput {
  readonly title: string
  /** A line under the legend: method, run size. */
  readonly note?: string
  readonly contenders: readonly { id: string; label: string; skipped: boolean }[]
  /** Left panel: one group per body size; values by contender id (missing: not run). */
  readonly groups: readonly { label: string; values: Readonly<Record<string, number>> }[]
  /** Right panel: one group. */
  readonly slow: { label: string; values: Readonly<Record<string, number>> }
}

const COLORS: Readonly<Record<string, string>> = {
  plain: '#8c8c8c',
  ceiling: '#c7c7c7',
  eftc: '#1f5fa8',
  'eftc-hot': '#6baed6',
  apicache: '#e6761b',
  'route-cache': '#3a9a3a',
}

const esc = (s: string): string =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')

const fmt = (x: number): string => (x >= 10 ? x.toFixed(0) : x.toFixed(2))
/** Axis ticks: as few digits as the step needs (0.5×, 1×, 1.5×). */
const tick = (x: number): string => String(Number(x.toFixed(2)))

/** A round axis maximum and tick step covering `max`. */
function axis(max: number): { top: number; step: number } {
  const raw = Math.max(max, 1e-9) / 5
  const mag = 10 ** Math.floor(Math.log10(raw))
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag
  return { top: Math.ceil((max * 1.08) / step) * step, step }
}

/** A bar's value above it: upright when the bar is wide enough for it, else turned a quarter. */
function valueLabel(x: number, barTop: number, text: string, barW: number): string {
  if (barW >= 6 * text.length) {
    return `<text x="${x.toFixed(1)}" y="${(barTop - 4).toFixed(1)}" text-anchor="middle" font-size="9" fill="#333">${esc(text)}</text>`
  }
  const y = (barTop - 4).toFixed(1)
  return `<text x="${(x + 3).toFixed(1)}" y="${y}" transform="rotate(-90 ${(x + 3).toFixed(1)} ${y})" font-size="9" fill="#333">${esc(text)}</text>`
}

/** Splits a note at its ` · ` separators into lines of at most about `max` characters. */
function wrap(text: string, max: number): string[] {
  const lines: string[] = []
  for (const part of text.split(' · ')) {
    const last = lines.at(-1)
    if (last !== undefined && last.length + 3 + part.length <= max)
      lines[lines.length - 1] = `${last} · ${part}`
    else lines.push(part)
  }
  return lines
}

interface Panel {
  readonly x: number
  readonly width: number
  readonly groups: readonly { label: string; values: Readonly<Record<string, number>> }[]
  readonly heading: string
  /** Draw a dashed reference line at 1.0. */
  readonly unitLine: boolean
}

export function renderChart(input: ChartInput): string {
  const W = 1100
  const top = 64
  const bottom = 360
  const perRow = 2
  const legendRows = Math.ceil(input.contenders.length / perRow)
  const noteLines = input.note === undefined ? [] : wrap(input.note, 170)
  const H = bottom + 62 + legendRows * 22 + noteLines.length * 15
  const ids = input.contenders.filter((c) => !c.skipped).map((c) => c.id)
  const parts: string[] = []
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" aria-labelledby="chart-title" font-family="system-ui, -apple-system, 'Segoe UI', sans-serif" font-size="12">`,
    `<title id="chart-title">${esc(input.title)}</title>`,
    `<rect width="${W}" height="${H}" fill="#ffffff"/>`,
    `<text x="${W / 2}" y="22" text-anchor="middle" font-size="15" font-weight="600">${esc(input.title)}</text>`,
  )
  const panels: Panel[] = [
    {
      x: 60,
      width: 760,
      groups: input.groups,
      heading: 'cache hit, by body size (higher is faster; 1.0 = plain Express)',
      unitLine: true,
    },
    {
      x: 900,
      width: 180,
      groups: [input.slow],
      heading: 'vs no cache, 100 ms origin',
      unitLine: false,
    },
  ]
  for (const p of panels) {
    const max = Math.max(0, ...p.groups.flatMap((g) => ids.map((id) => g.values[id] ?? 0)))
    const { top: yTop, step } = axis(max)
    const y = (v: number): number => bottom - ((bottom - top) * v) / yTop
    parts.push(
      `<text x="${p.x + p.width / 2}" y="${top - 18}" text-anchor="middle" font-size="12" fill="#333">${esc(p.heading)}</text>`,
    )
    for (let v = 0; v <= yTop + 1e-9; v += step) {
      const yy = y(v).toFixed(1)
      parts.push(
        `<line x1="${p.x}" x2="${p.x + p.width}" y1="${yy}" y2="${yy}" stroke="#e5e5e5"/>`,
        `<text x="${p.x - 6}" y="${yy}" dy="4" text-anchor="end" fill="#555">${esc(tick(v))}×</text>`,
      )
    }
    const groupW = p.width / p.groups.length
    const barW = Math.min(28, (groupW * 0.8) / Math.max(1, ids.length))
    for (const [gi, g] of p.groups.entries()) {
      const gx = p.x + gi * groupW + (groupW - barW * ids.length) / 2
      for (const [i, id] of ids.entries()) {
        const v = g.values[id]
        if (v === undefined || !Number.isFinite(v)) continue
        const bx = gx + i * barW
        const by = y(v)
        parts.push(
          `<rect x="${(bx + 1).toFixed(1)}" y="${by.toFixed(1)}" width="${(barW - 2).toFixed(1)}" height="${(bottom - by).toFixed(1)}" fill="${COLORS[id] ?? '#999'}"><title>${esc(`${g.label}, ${id}: ${fmt(v)}×`)}</title></rect>`,
          valueLabel(bx + barW / 2, by, fmt(v), barW),
        )
      }
      // "10 KB, 100 connections": the qualifier on a second line, so neighbours do not overlap.
      const [first, ...rest] = g.label.split(', ')
      const gxm = (p.x + gi * groupW + groupW / 2).toFixed(1)
      parts.push(
        `<text x="${gxm}" y="${bottom + 18}" text-anchor="middle" fill="#222">${esc(first ?? '')}${rest.length > 0 ? `<tspan x="${gxm}" dy="14">${esc(rest.join(', '))}</tspan>` : ''}</text>`,
      )
    }
    if (p.unitLine && yTop >= 1) {
      const yy = y(1).toFixed(1)
      parts.push(
        `<line x1="${p.x}" x2="${p.x + p.width}" y1="${yy}" y2="${yy}" stroke="#444" stroke-dasharray="4 3"/>`,
      )
    }
    parts.push(
      `<line x1="${p.x}" x2="${p.x + p.width}" y1="${bottom}" y2="${bottom}" stroke="#444"/>`,
    )
  }
  // Legend, two to a row.
  for (const [i, c] of input.contenders.entries()) {
    const lx = 60 + (i % perRow) * 500
    const ly = bottom + 62 + Math.floor(i / perRow) * 22
    const label = c.skipped ? `${c.label}: not run` : c.label
    parts.push(
      `<rect x="${lx}" y="${ly - 10}" width="12" height="12" fill="${c.skipped ? 'none' : (COLORS[c.id] ?? '#999')}" stroke="${COLORS[c.id] ?? '#999'}"/>`,
      `<text x="${lx + 18}" y="${ly}" fill="${c.skipped ? '#999' : '#222'}">${esc(label)}</text>`,
    )
  }
  for (const [i, line] of noteLines.entries()) {
    const ly = H - 10 - (noteLines.length - 1 - i) * 15
    parts.push(`<text x="60" y="${ly}" font-size="11" fill="#666">${esc(line)}</text>`)
  }
  parts.push('</svg>')
  return `${parts.join('\n')}\n`
}
