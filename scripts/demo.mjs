#!/usr/bin/env node
// `npm run demo`: runs demo/server.ts with tsx (a devDependency, so `npm ci` first). Signals are
// forwarded to the server and its exit code (or signal) becomes ours.
import { spawn } from 'node:child_process'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')

try {
  createRequire(join(root, 'package.json')).resolve('tsx')
} catch {
  console.error('The demo needs tsx (a devDependency): run `npm ci` (or `npm install`) first.')
  process.exit(1)
}

const child = spawn(process.execPath, ['--import', 'tsx', join('demo', 'server.ts')], {
  cwd: root,
  stdio: 'inherit',
})

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP']
const forward = (signal) => {
  if (child.exitCode === null && child.signalCode === null) child.kill(signal)
}
for (const signal of SIGNALS) process.on(signal, forward)

// `kill <npm pid>` signals only npm's `sh -c`, which dies without passing the signal on: when our
// parent goes away, stop the server instead of leaving it running orphaned.
const parent = process.ppid
const watchdog = setInterval(() => {
  if (process.ppid !== parent) forward('SIGTERM')
}, 500)
watchdog.unref()

child.on('error', (err) => {
  console.error(`could not start the demo: ${err.message}`)
  process.exit(1)
})

child.on('exit', (code, signal) => {
  for (const s of SIGNALS) process.off(s, forward)
  if (signal !== null) {
    // Die the same way, so a parent shell sees the signal.
    process.kill(process.pid, signal)
    return
  }
  process.exit(code ?? 1)
})
