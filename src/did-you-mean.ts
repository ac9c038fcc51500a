/** Levenshtein distance, case-insensitive, for "did you mean" hints on misspelt names. */
export function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i)
  for (let i = 1; i <= a.length; i++) {
    const row = [i]
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1]?.toLowerCase() === b[j - 1]?.toLowerCase() ? 0 : 1
      row.push(Math.min((row[j - 1] ?? 0) + 1, (prev[j] ?? 0) + 1, (prev[j - 1] ?? 0) + cost))
    }
    prev = row
  }
  return prev[b.length] ?? 0
}

/** The known name nearest to `name`, if it is within `max` edits; on a tie the longer (a plural unit). */
export function nearest(name: string, known: readonly string[], max = 3): string | undefined {
  let best: { k: string; d: number } | undefined
  for (const k of known) {
    const d = distance(name, k)
    if (best === undefined || d < best.d || (d === best.d && k.length > best.k.length))
      best = { k, d }
  }
  return best !== undefined && best.d <= max ? best.k : undefined
}
