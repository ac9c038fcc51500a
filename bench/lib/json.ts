/**
 * JSON text laid out the way the project's formatter (Biome) lays it out, so a committed results
 * file stays lint-clean after a run: objects one member per line, arrays of scalars on one line when
 * they fit in 100 columns, numbers otherwise filled line by line, anything else one per line.
 */
const WIDTH = 100

type Json = null | boolean | number | string | readonly Json[] | { readonly [k: string]: Json }

/** `head` is what precedes the value on its line (indent and key); `tail` what follows (a comma). */
function write(value: Json, indent: string, head: number, tail: number): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value)
  const inner = `${indent}  `
  if (Array.isArray(value)) {
    const items = value as readonly Json[]
    if (items.length === 0) return '[]'
    if (items.every((v) => v === null || typeof v !== 'object')) {
      const parts = items.map((v) => JSON.stringify(v))
      const inline = `[${parts.join(', ')}]`
      if (head + inline.length + tail <= WIDTH) return inline
      if (items.every((v) => typeof v === 'number')) {
        const lines: string[] = []
        let line = ''
        for (const [i, p] of parts.entries()) {
          const piece = i < parts.length - 1 ? `${p},` : p
          if (line !== '' && inner.length + line.length + 1 + piece.length > WIDTH) {
            lines.push(line)
            line = piece
          } else {
            line = line === '' ? piece : `${line} ${piece}`
          }
        }
        lines.push(line)
        return `[\n${lines.map((l) => inner + l).join('\n')}\n${indent}]`
      }
    }
    const body = items.map(
      (v, i) => inner + write(v, inner, inner.length, i < items.length - 1 ? 1 : 0),
    )
    return `[\n${body.join(',\n')}\n${indent}]`
  }
  const entries = Object.entries(value as { readonly [k: string]: Json }).filter(
    ([, v]) => v !== undefined,
  )
  if (entries.length === 0) return '{}'
  const body = entries.map(([k, v], i) => {
    const key = `${JSON.stringify(k)}: `
    return inner + key + write(v, inner, inner.length + key.length, i < entries.length - 1 ? 1 : 0)
  })
  return `{\n${body.join(',\n')}\n${indent}}`
}

/** `value` as formatted JSON text with a final newline; non-integers rounded to `digits` significant digits. */
export function formatJson(value: unknown, digits = 4): string {
  const plain = JSON.parse(
    JSON.stringify(value, (_k, v: unknown) =>
      typeof v === 'number' && !Number.isInteger(v) ? Number(v.toPrecision(digits)) : v,
    ),
  ) as Json
  return `${write(plain, '', 0, 0)}\n`
}
