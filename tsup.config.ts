import { readFileSync } from 'node:fs'
import { defineConfig } from 'tsup'

const { version } = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string }

// Builds exactly what package.json's `exports` map names: dist/index.js (ESM) with dist/index.d.ts,
// and dist/index.cjs (CJS) with dist/index.d.cts. The package is "type": "module", so tsup names
// the ESM output .js and the CJS output .cjs. Dependencies and peer dependencies (memjs, pino,
// express) stay external: tsup never bundles what package.json lists there.
export default defineConfig({
  entry: { index: 'src/index.ts' },
  format: ['esm', 'cjs'],
  dts: true,
  target: 'node20',
  platform: 'node',
  sourcemap: true,
  clean: true,
  splitting: false,
  treeshake: false,
  minify: false,
  shims: false,
  removeNodeProtocol: false,
  outDir: 'dist',
  tsconfig: 'tsconfig.build.json',
  // The version the OpenTelemetry meter reports (src/middleware.ts).
  define: { __VERSION__: JSON.stringify(version) },
})
