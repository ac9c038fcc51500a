/**
 * `npm run demo` end to end (scripts/demo.mjs -> demo/server.ts): the store it picks and says it
 * picked, its own memcached started and stopped with it (even when left paused), a clean exit.
 */
import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const started: ChildProcess[] = []

after(() => {
  for (const child of started) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  }
})

interface Demo {
  child: ChildProcess
  url: string
  output: () => string
  exited: Promise<number | null>
}

/** Starts `node scripts/demo.mjs` on a free port and resolves once it prints its URL. */
async function startDemo(env: Record<string, string>): Promise<Demo> {
  const child = spawn(process.execPath, [join(ROOT, 'scripts', 'demo.mjs')], {
    cwd: ROOT,
    // MEMCACHE_SERVERS empty: a developer's own setting must not pick the store.
    env: { ...process.env, PORT: '0', MEMCACHE_SERVERS: '', LOG_FORMAT: '', NO_COLOR: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  started.push(child)
  let output = ''
  child.stdout?.on('data', (chunk: Buffer) => {
    output += chunk
  })
  child.stderr?.on('data', (chunk: Buffer) => {
    output += chunk
  })
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => resolve(code)),
  )
  const deadline = Date.now() + 30_000
  let url: string | undefined
  while (url === undefined) {
    url = /demo on (http:\/\/127\.0\.0\.1:\d+)\//.exec(output)?.[1]
    if (child.exitCode !== null) assert.fail(`the demo exited early:\n${output}`)
    if (Date.now() > deadline) assert.fail(`the demo printed no URL within 30 s:\n${output}`)
    await new Promise((r) => setTimeout(r, 100))
  }
  return { child, url, output: () => output, exited }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

interface Status {
  store: string
  memcached: { pid: number; address: string; paused: boolean } | null
}

describe('npm run demo', () => {
  it('starts its own memcached, says so, and stops it on SIGTERM even when paused', async () => {
    const demo = await startDemo({ DEMO_MEMCACHED: 'own' })
    const status = (await (await fetch(`${demo.url}/_demo/stats`)).json()) as Status
    assert.ok(status.memcached !== null, demo.output())
    const { pid, address } = status.memcached
    assert.match(demo.output(), new RegExp(`started \\S*memcached on ${address} \\(pid ${pid}\\)`))
    assert.match(status.store, /started by the demo/)
    assert.ok(alive(pid))

    const slow = await fetch(`${demo.url}/slow`)
    assert.equal(slow.headers.get('x-cache'), 'MISS')
    await slow.text()
    const paused = await fetch(`${demo.url}/_demo/memcached/pause`, { method: 'POST' })
    assert.deepEqual(await paused.json(), { paused: true })

    demo.child.kill('SIGTERM')
    assert.equal(await demo.exited, 0, demo.output())
    assert.equal(alive(pid), false, `memcached pid ${pid} outlived the demo`)
  })

  it('DEMO_MEMCACHED=memory: the embedded MemoryStore, nothing to pause', async () => {
    const demo = await startDemo({ DEMO_MEMCACHED: 'memory' })
    assert.match(demo.output(), /using the embedded MemoryStore/)
    const status = (await (await fetch(`${demo.url}/_demo/stats`)).json()) as Status
    assert.equal(status.memcached, null)
    assert.match(status.store, /MemoryStore/)
    demo.child.kill('SIGTERM')
    assert.equal(await demo.exited, 0, demo.output())
  })
})
