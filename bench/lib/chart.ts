/**
 * A hand-written SVG bar chart for the peer benchmark: grouped bars of the req/s ratio to plain
 * Express per body size and contender, and a second panel for the slow origin (ratios two orders of
 * magnitude larger, so on their own axis). No dependency; the output is static and diff-friendly.
 */

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

interface Panel {
  readonly x: number
  readonly width: number
  readonly groups: readonly { label: string; values: Readonly<Record<string, number>> }[]
  readonly heading: string
  /** Draw a dashed reference line at 1.0. */
  readonly unitLine: boolean
}

export function renderChart(input: ChartInput): string {
  const W = 980
  const top = 64
  const bottom = 360
  const perRow = 2
  const legendRows = Math.ceil(input.contenders.length / perRow)
  const H = bottom + 48 + legendRows * 22 + (input.note ? 18 : 0)
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
      width: 640,
      groups: input.groups,
      heading: 'cache hit, by body size (higher is faster; 1.0 = plain Express)',
      unitLine: true,
    },
    {
      x: 780,
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
          `<text x="${(bx + barW / 2).toFixed(1)}" y="${(by - 4).toFixed(1)}" text-anchor="middle" font-size="9" fill="#333">${esc(fmt(v))}</text>`,
        )
      }
      parts.push(
        `<text x="${(p.x + gi * groupW + groupW / 2).toFixed(1)}" y="${bottom + 18}" text-anchor="middle" fill="#222">${esc(g.label)}</text>`,
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
    const lx = 60 + (i % perRow) * 440
    const ly = bottom + 48 + Math.floor(i / perRow) * 22
    const label = c.skipped ? `${c.label}: not run` : c.label
    parts.push(
      `<rect x="${lx}" y="${ly - 10}" width="12" height="12" fill="${c.skipped ? 'none' : (COLORS[c.id] ?? '#999')}" stroke="${COLORS[c.id] ?? '#999'}"/>`,
      `<text x="${lx + 18}" y="${ly}" fill="${c.skipped ? '#999' : '#222'}">${esc(label)}</text>`,
    )
  }
  if (input.note) {
    parts.push(`<text x="60" y="${H - 10}" font-size="11" fill="#666">${esc(input.note)}</text>`)
  }
  parts.push('</svg>')
  return `${parts.join('\n')}\n`
}
