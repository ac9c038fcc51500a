// Classifies cache-tests results with the suite's own determineTestResult() (dependencies honoured,
// as on cache-tests.fyi): a count per group, every required test that did not pass, and a Markdown
// table of every test for docs/conformance.md.
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'

const cell = (s) => String(s).replaceAll('|', '\\|').replaceAll('\n', ' ')

export async function summarize(suite, results) {
  const load = (p) => import(pathToFileURL(join(suite, p)).href)
  const tests = (await load('tests/index.mjs')).default
  const { determineTestResult, resultTypes } = await load('test-engine/lib/results.mjs')
  const names = Object.fromEntries(Object.entries(resultTypes).map(([k, v]) => [v[2], k]))
  const groups = []
  const misses = []
  const rows = ['| group | test | kind | result | detail |', '| --- | --- | --- | --- | --- |']
  let required = 0
  let passed = 0
  for (const group of tests) {
    const count = {}
    for (const t of group.tests) {
      if (t.browser_only) continue
      const result = names[determineTestResult(tests, t.id, results, true)[2]]
      const kind = t.kind ?? 'required'
      count[result] = (count[result] ?? 0) + 1
      const raw = results[t.id]
      const detail = Array.isArray(raw) && typeof raw[1] === 'string' ? raw[1] : ''
      const depends = t.depends_on ? ` (depends on ${t.depends_on.join(', ')})` : ''
      rows.push(`| ${group.id} | ${t.id} | ${kind} | ${result} | ${cell(detail + depends)} |`)
      if (kind === 'required') {
        required++
        if (result === 'pass') passed++
        else
          misses.push(
            `${group.id.padEnd(18)} ${t.id.padEnd(48)} ${result.padEnd(16)} ${detail}${depends}`,
          )
      }
    }
    groups.push(
      `${group.id.padEnd(18)} ${Object.entries(count)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')}`,
    )
  }
  const text = [
    groups.join('\n'),
    '',
    'required tests that did not pass:',
    misses.join('\n'),
    '',
    `required passed: ${passed}/${required}`,
  ].join('\n')
  return { text, markdown: `${rows.join('\n')}\n`, required, passed }
}
