/**
 * Shutdown: `cache.close()` drains writes and closes every socket, so a process that closes its
 * server and its cache exits by itself, with no unhandled rejection or stray 'error' event.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { after, before, it } from 'node:test'
import { type MemcachedProcess, startMemcached } from './helpers/memcached.js'

let mc: MemcachedProcess
before(async () => {
  mc = await startMemcached()
})
after(async () => {
  await mc.stop()
})

const SCRIPT = `
import express from 'express'
import { MemcachedStore, responseCache } from './src/index.ts'
process.on('unhandledRejection', (e) => { console.error('UNHANDLED', e); process.exitCode = 3 })
const servers = process.env.SERVERS.split(',')
const cache = responseCache({ store: new MemcachedStore({ servers, timeout: '100ms', cooldown: '200ms' }) })
const app = express()
app.use(cache)
app.get('/x/:n', (req, res) => { res.send('x' + req.params.n) })
const server = app.listen(0, '127.0.0.1', async () => {
  const base = 'http://127.0.0.1:' + server.address().port
  const replies = await Promise.all(Array.from({ length: 30 }, (_, i) => fetch(base + '/x/' + (i % 5)).then((r) => r.text())))
  if (replies.some((r, i) => r !== 'x' + (i % 5))) process.exitCode = 4
  server.close()
  await cache.close()
  console.log('closed')
})
`

function runChild(servers: string): Promise<{ code: number | null; out: string; ms: number }> {
  return new Promise((resolve) => {
    const started = Date.now()
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', SCRIPT],
      {
        cwd: new URL('..', import.meta.url).pathname,
        env: { ...process.env, SERVERS: servers },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    )
    let out = ''
    child.stdout.on('data', (d) => (out += d))
    child.stderr.on('data', (d) => (out += d))
    const killer = setTimeout(() => child.kill('SIGKILL'), 20_000)
    child.on('exit', (code) => {
      clearTimeout(killer)
      resolve({ code, out, ms: Date.now() - started })
    })
  })
}

it('a process exits by itself after server.close() and cache.close()', async () => {
  const r = await runChild(mc.address)
  assert.equal(r.code, 0, r.out)
  assert.match(r.out, /closed/)
})

it('also when a server of the cluster is down, and without any unhandled rejection', async () => {
  const down = await startMemcached()
  await down.stop()
  const r = await runChild(`${mc.address},${down.address}`)
  assert.equal(r.code, 0, r.out)
  // The store warnings the default logger writes (JSON lines) are expected; a crash is not.
  const crashes = r.out.split('\n').filter((line) => !line.startsWith('{'))
  assert.doesNotMatch(crashes.join('\n'), /UNHANDLED|Error/)
})
