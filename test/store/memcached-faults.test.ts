/**
 * MemcachedStore under faults, against real memcached processes (see test/helpers/memcached.ts).
 * Timings are asserted with generous slack: what matters is "fails fast and bounded, then recovers
 * by itself", not exact numbers.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { createConnection, type Socket } from 'node:net'
import { after, afterEach, describe, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath, pathToFileURL } from 'node:url'
import memjs from 'memjs'
import {
  MemcachedStore,
  type MemcachedStoreEvent,
  type MemcachedStoreOptions,
} from '../../src/store/memcached.js'
import { blackholeServer, freePort, startMemcached } from '../helpers/memcached.js'

for (const name of [
  'MEMCACHIER_SERVERS',
  'MEMCACHIER_USERNAME',
  'MEMCACHIER_PASSWORD',
  'MEMCACHE_SERVERS',
  'MEMCACHE_USERNAME',
  'MEMCACHE_PASSWORD',
]) {
  delete process.env[name]
}

// Nothing may escape the store: no unhandled rejections, no uncaught 'error' events.
const escaped: unknown[] = []
process.on('unhandledRejection', (reason) => escaped.push(reason))
process.on('uncaughtException', (error) => escaped.push(error))

const cleanups: Array<() => Promise<unknown>> = []
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.()
})
after(() => {
  assert.deepEqual(escaped, [], 'no unhandled rejection or uncaught exception escaped')
})

interface Harness {
  store: MemcachedStore
  events: MemcachedStoreEvent[]
}

function makeStore(options: MemcachedStoreOptions): Harness {
  const events: MemcachedStoreEvent[] = []
  const store = new MemcachedStore({ onEvent: (e) => events.push(e), ...options })
  cleanups.push(() => store.close())
  return { store, events }
}

async function memcached(opts?: Parameters<typeof startMemcached>[0]) {
  const server = await startMemcached(opts)
  cleanups.push(() => server.stop())
  return server
}

function codeOf(error: unknown): unknown {
  return (error as { code?: unknown } | null)?.code
}

/** Runs `call`, expecting a rejection; returns its code and how long it took. */
async function failure(
  call: () => Promise<unknown>,
): Promise<{ code: unknown; ms: number; error: unknown }> {
  const start = performance.now()
  try {
    await call()
  } catch (error) {
    return { code: codeOf(error), ms: performance.now() - start, error }
  }
  assert.fail('expected the call to reject')
}

/** Polls `check` until it resolves true or `timeoutMs` passes; returns how long it took. */
async function eventually(
  check: () => Promise<boolean>,
  timeoutMs: number,
  what: string,
): Promise<number> {
  const start = performance.now()
  while (performance.now() - start < timeoutMs) {
    if (await check().catch(() => false)) return performance.now() - start
    await sleep(50)
  }
  assert.fail(`${what} did not happen within ${timeoutMs} ms`)
}

const TRANSPORT_CODES = ['ETIMEDOUT_DEADLINE', 'ESTORE_CONNECTION']

describe('MemcachedStore faults', () => {
  it('fails fast when the server refuses connections', async () => {
    const port = await freePort()
    const { store } = makeStore({ servers: `127.0.0.1:${port}`, timeout: '100ms' })
    const first = await failure(() => store.get('k'))
    assert.equal(first.code, 'ESTORE_CONNECTION')
    assert.equal(codeOf((first.error as Error).cause), 'ECONNREFUSED')
    assert.ok(first.ms < 500, `took ${first.ms} ms`)
  })

  it('a paused server (SIGSTOP): every call rejects within the deadline, then recovers after SIGCONT', async () => {
    const server = await memcached()
    const { store, events } = makeStore({
      servers: server.address,
      timeout: '100ms',
      cooldown: '300ms',
    })
    await store.set('k', Buffer.from('v'), 60)

    await server.pause()
    const concurrent = await Promise.all(
      Array.from({ length: 20 }, () => failure(() => store.get('k'))),
    )
    for (const { code, ms } of concurrent) {
      assert.ok(TRANSPORT_CODES.includes(String(code)), String(code))
      assert.ok(ms < 1000, `a call took ${ms} ms`)
    }
    for (let i = 0; i < 8; i++) {
      const { code, ms } = await failure(() => store.get('k'))
      assert.ok([...TRANSPORT_CODES, 'ESTORE_UNAVAILABLE'].includes(String(code)), String(code))
      assert.ok(ms < 1000, `a call took ${ms} ms`)
    }
    assert.equal(store.breakerStates()[server.address], 'open')
    assert.ok(events.some((e) => e.type === 'client-rebuilt'))
    assert.ok(events.some((e) => e.type === 'breaker-open'))

    await server.resume()
    await eventually(
      async () => (await store.get('k'))?.toString() === 'v',
      5000,
      'recovery after SIGCONT',
    )
    assert.equal(store.breakerStates()[server.address], 'closed')
    assert.ok(events.some((e) => e.type === 'breaker-close'))
  })

  it('a server that never answers: calls end at the deadline; the breaker opens and short-circuits without network', async () => {
    const hole = await blackholeServer()
    cleanups.push(() => hole.close())
    const { store, events } = makeStore({
      servers: hole.address,
      timeout: '100ms',
      failureThreshold: 3,
      cooldown: '30s',
    })
    for (let i = 0; i < 3; i++) {
      const { code, ms } = await failure(() => store.get('k'))
      assert.equal(code, 'ETIMEDOUT_DEADLINE')
      assert.ok(ms >= 90 && ms < 1000, `took ${ms} ms`)
    }
    assert.equal(store.breakerStates()[hole.address], 'open')
    const connections = hole.connections
    assert.ok(connections >= 1 && connections <= 3, `${connections} connections`)

    const start = performance.now()
    const refused = await Promise.all(
      Array.from({ length: 50 }, () => failure(() => store.set('k', Buffer.from('v'), 60))),
    )
    const elapsed = performance.now() - start
    for (const r of refused) {
      assert.equal(r.code, 'ESTORE_UNAVAILABLE')
      assert.equal(
        codeOf((r.error as Error).cause),
        'ETIMEDOUT_DEADLINE',
        'cause: the last failure',
      )
    }
    assert.ok(elapsed < 200, `50 refused calls took ${elapsed} ms`)
    await sleep(50)
    assert.equal(hole.connections, connections, 'no new connection while open')
    assert.deepEqual(
      events.filter((e) => e.type === 'breaker-open').map((e) => e.server),
      [hole.address],
    )
  })

  it('active recovery: probes a down server every cooldown with no traffic, closes the breaker once it answers', async () => {
    // A server that is down (refusing), and will come back on the same port.
    const server = await memcached()
    await server.stop()
    const address = server.address
    const { store, events } = makeStore({
      servers: address,
      timeout: '200ms',
      failureThreshold: 1,
      cooldown: '300ms',
    })
    assert.equal((await failure(() => store.get('k'))).code, 'ESTORE_CONNECTION')
    assert.equal((await failure(() => store.get('k'))).code, 'ESTORE_UNAVAILABLE')
    const rebuilt = () => events.filter((e) => e.type === 'client-rebuilt').length
    assert.equal(rebuilt(), 1)

    // No traffic: the store's own probes fail (each one discards its Client) and re-open it.
    await eventually(async () => rebuilt() >= 3, 5000, 'two failed probes')
    assert.equal(store.breakerStates()[address], 'open')
    assert.equal(
      events.filter((e) => e.type === 'breaker-open').length,
      1,
      'an outage is reported once',
    )
    assert.equal(events.filter((e) => e.type === 'breaker-close').length, 0)

    // The server comes back; still no traffic: a probe closes the breaker within a cooldown + a
    // round trip (bounded here with ample slack).
    await server.restart()
    await eventually(
      async () => store.breakerStates()[address] === 'closed',
      3000,
      'the breaker closing without traffic',
    )
    assert.equal(events.filter((e) => e.type === 'breaker-close').length, 1)
    assert.equal(await store.get('k'), undefined, 'the first live call is served')
  })

  it('while the own probe of the store is out, live calls are refused without network; close() stops probing', async () => {
    const hole = await blackholeServer()
    cleanups.push(() => hole.close())
    const { store, events } = makeStore({
      servers: hole.address,
      timeout: '400ms',
      connectTimeout: '400ms',
      failureThreshold: 1,
      cooldown: '200ms',
    })
    assert.equal((await failure(() => store.get('k'))).code, 'ETIMEDOUT_DEADLINE')
    assert.equal(hole.connections, 1)
    // The probe goes out at the end of the cooldown and hangs (the hole never answers).
    await eventually(async () => hole.connections === 2, 3000, 'the probe connecting')
    const refused = await Promise.all(
      Array.from({ length: 10 }, () => failure(() => store.get('k'))),
    )
    assert.deepEqual(
      refused.map((r) => r.code),
      Array(10).fill('ESTORE_UNAVAILABLE'),
      'the probe holds the half-open permit',
    )
    assert.equal(hole.connections, 2, 'no connection for the refused calls')
    // The probe fails at its deadline, the breaker re-opens, and a cooldown later probes again.
    await eventually(async () => hole.connections >= 3, 5000, 'the next probe')
    assert.equal(events.filter((e) => e.type === 'breaker-open').length, 1)

    await store.close()
    const after = hole.connections
    await sleep(700)
    assert.equal(hole.connections, after, 'no probe after close()')
  })

  it('recovers by itself after a restart on the same port, and after stop + restart', async () => {
    const server = await memcached()
    const { store, events } = makeStore({
      servers: server.address,
      timeout: '100ms',
      failureThreshold: 2,
      cooldown: '300ms',
    })
    await store.set('k', Buffer.from('v1'), 60)
    await server.restart()
    await eventually(
      async () => {
        await store.set('k', Buffer.from('v2'), 60)
        return (await store.get('k'))?.toString() === 'v2'
      },
      5000,
      'recovery after restart',
    )

    await server.stop()
    for (let i = 0; i < 4; i++) await failure(() => store.get('k'))
    assert.equal(store.breakerStates()[server.address], 'open')
    await server.restart()
    await eventually(
      async () => (await store.get('k')) === undefined,
      5000,
      'recovery after stop + restart',
    )
    assert.ok(events.some((e) => e.type === 'client-rebuilt'))
    assert.ok(events.some((e) => e.type === 'breaker-close'))
  })

  it('connection limit ("ERROR Too many open connections"): recovers once slots are free, same store', async () => {
    const server = await memcached({ maxConnections: 64 })
    // Hold every connection slot with idle raw sockets; memcached answers the surplus ones with the
    // text line "ERROR Too many open connections" and closes them.
    const held: Socket[] = []
    let refused = 0
    await Promise.all(
      Array.from(
        { length: 100 },
        () =>
          new Promise<void>((resolve) => {
            const socket = createConnection({ host: '127.0.0.1', port: server.port })
            socket.on('error', () => {})
            socket.once('connect', () => {
              held.push(socket)
              resolve()
            })
            socket.on('data', (data) => {
              if (String(data).includes('Too many open connections')) refused++
            })
          }),
      ),
    )
    cleanups.push(async () => {
      for (const s of held) s.destroy()
    })
    await eventually(async () => refused > 0, 3000, 'the connection limit being reached')

    const { store, events } = makeStore({
      servers: server.address,
      timeout: '100ms',
      cooldown: '300ms',
    })
    for (let i = 0; i < 6; i++) {
      const { code, ms } = await failure(() => store.set('k', Buffer.from('v'), 60))
      assert.ok([...TRANSPORT_CODES, 'ESTORE_UNAVAILABLE'].includes(String(code)), String(code))
      assert.ok(ms < 1000, `took ${ms} ms`)
    }
    assert.ok(events.some((e) => e.type === 'client-rebuilt'))

    for (const s of held) s.destroy()
    const ms = await eventually(
      async () => {
        await store.set('k', Buffer.from('v'), 60)
        return (await store.get('k'))?.toString() === 'v'
      },
      5000,
      'recovery after the slots were freed',
    )
    assert.ok(ms < 5000)
  })

  it('refuses an oversized value before sending, so the existing item survives', async () => {
    const server = await memcached()
    const { store } = makeStore({ servers: server.address, timeout: '2s' })
    await store.set('page', Buffer.from('existing'), 60)
    const tooBig = Buffer.alloc(store.maxValueBytes('page'.length) + 1)
    assert.equal((await failure(() => store.set('page', tooBig, 60))).code, 'EVALUE_TOO_LARGE')
    assert.equal((await store.get('page'))?.toString(), 'existing')

    // Why it matters: a store configured with a larger itemSize than the server's -I sends the value,
    // memcached refuses it *and deletes the item that was there*.
    const { store: misconfigured } = makeStore({
      servers: server.address,
      timeout: '2s',
      itemSize: 2 * 1024 * 1024,
    })
    const rejected = await failure(() => misconfigured.set('page', Buffer.alloc(1_500_000), 60))
    assert.equal(rejected.code, 'ESTORE_RESPONSE')
    assert.equal((rejected.error as { status?: number }).status, 0x0003)
    assert.equal(await misconfigured.get('page'), undefined, 'memcached deleted the existing item')
    assert.equal(
      misconfigured.breakerStates()[server.address],
      'closed',
      'an answer is not a fault',
    )
  })

  it('out of memory (-M): set rejects with the server status, gets keep working, breaker stays closed', async () => {
    const server = await memcached({ memoryMb: 8, noEvict: true })
    const { store, events } = makeStore({ servers: server.address, timeout: '2s' })
    const value = Buffer.alloc(100 * 1024, 1)
    let outOfMemory: unknown
    for (let i = 0; i < 500 && outOfMemory === undefined; i++) {
      await store.set(`fill-${i}`, value, 600).catch((error: unknown) => {
        outOfMemory = error
      })
    }
    assert.equal(codeOf(outOfMemory), 'ESTORE_RESPONSE')
    assert.equal((outOfMemory as { status?: number }).status, 0x0082)
    assert.ok((await store.get('fill-0'))?.equals(value))
    assert.equal(store.breakerStates()[server.address], 'closed')
    assert.deepEqual(events, [])
  })

  it('rejects over-long and whitespace keys without sending them or breaking the connection', async () => {
    const server = await memcached()
    const { store, events } = makeStore({ servers: server.address, timeout: '2s' })
    await store.set('good', Buffer.from('v'), 60)
    const results = await Promise.allSettled([
      store.get('good'),
      store.get('k'.repeat(251)),
      store.set('has space', Buffer.from('x'), 60),
      store.add('k'.repeat(300), Buffer.from('x'), 60),
      store.delete('line\nbreak'),
      store.get('good'),
    ])
    assert.deepEqual(
      results.map((r) => (r.status === 'fulfilled' ? r.value?.toString() : codeOf(r.reason))),
      ['v', 'EINVALID_KEY', 'EINVALID_KEY', 'EINVALID_KEY', 'EINVALID_KEY', 'v'],
    )
    assert.deepEqual(events, [], 'the connection was never dropped')
  })

  it('keeps working when the request counter is forced near 2^31 (memjs breaks there)', async () => {
    const server = await memcached()
    const { store } = makeStore({ servers: server.address, timeout: '2s' })
    for (const start of [2 ** 30 - 5, 2 ** 31 - 3, 2 ** 32 - 2]) {
      store._forceSequenceForTests(start)
      for (let i = 0; i < 10; i++) {
        await store.set(`seq-${i}`, Buffer.from(`${start}-${i}`), 60)
        assert.equal((await store.get(`seq-${i}`))?.toString(), `${start}-${i}`)
      }
    }
    // The hazard being avoided: memjs's own counter goes negative past 2^31 and requests throw.
    const raw = memjs.Client.create(server.address, { retries: 1, logger: { log() {} } })
    try {
      ;(raw as unknown as { seq: number }).seq = 2 ** 31 - 1
      await assert.rejects(raw.get('k'), RangeError)
    } finally {
      raw.close()
    }
  })

  it('three servers on a ring: one stopped, only its share of keys fails', async () => {
    const servers = await Promise.all([memcached(), memcached(), memcached()])
    const { store } = makeStore({
      servers: servers.map((s) => s.address),
      timeout: '200ms',
      failureThreshold: 2,
    })
    const keys = Array.from({ length: 300 }, (_, i) => `ring-${i}`)
    await Promise.all(keys.map((k) => store.set(k, Buffer.from(k), 60)))

    // Each key lives on the server the ring names, and only there.
    const perServer = new Map(servers.map((s) => [s.address, 0]))
    const direct = servers.map((s) => ({
      address: s.address,
      store: makeStore({ servers: s.address, timeout: '2s' }).store,
    }))
    for (const k of keys.slice(0, 60)) {
      const home = store.serverFor(k)
      for (const d of direct) {
        const got = await d.store.get(k)
        assert.equal(got !== undefined, d.address === home, `${k} on ${d.address}`)
      }
    }
    for (const k of keys) {
      const home = store.serverFor(k)
      perServer.set(home, (perServer.get(home) ?? 0) + 1)
    }
    for (const [address, count] of perServer) assert.ok(count > 30, `${address} holds ${count}`)

    const down = servers[1]!
    await down.stop()
    const results = await Promise.allSettled(keys.map((k) => store.get(k)))
    results.forEach((r, i) => {
      const k = keys[i]!
      if (store.serverFor(k) === down.address) {
        assert.equal(r.status, 'rejected', `${k} on the stopped server`)
      } else {
        assert.equal(r.status === 'fulfilled' ? r.value?.toString() : r.reason, k)
      }
    })
    // A burst of calls pipelined on one dead connection counts as one failure; more calls open it.
    const downKey = keys.find((k) => store.serverFor(k) === down.address)!
    for (let i = 0; i < 3; i++) await failure(() => store.get(downKey))
    const states = store.breakerStates()
    assert.equal(states[down.address], 'open')
    for (const s of servers) if (s !== down) assert.equal(states[s.address], 'closed')
  })

  it('an onEvent hook that throws changes nothing (warned once)', async () => {
    const warnings: Error[] = []
    const onWarning = (w: Error) => warnings.push(w)
    process.on('warning', onWarning)
    cleanups.push(async () => process.off('warning', onWarning))
    const port = await freePort()
    const store = new MemcachedStore({
      servers: `127.0.0.1:${port}`,
      failureThreshold: 2,
      onEvent: () => {
        throw new Error('hook failure')
      },
    })
    cleanups.push(() => store.close())
    for (let i = 0; i < 4; i++) await failure(() => store.get('k'))
    assert.equal(store.breakerStates()[`127.0.0.1:${port}`], 'open')
    await sleep(10)
    assert.equal(warnings.filter((w) => /onEvent hook threw/.test(w.message)).length, 1)
  })

  it('close() rejects in-flight calls and lets the process exit by itself', async () => {
    const server = await memcached()
    const hole = await blackholeServer()
    cleanups.push(() => hole.close())
    const down = `127.0.0.1:${await freePort()}`
    const moduleUrl = pathToFileURL(
      fileURLToPath(new URL('../../src/store/memcached.ts', import.meta.url)),
    ).href
    const script = `
      const { MemcachedStore } = await import(${JSON.stringify(moduleUrl)})
      const store = new MemcachedStore({ servers: process.env.REAL, timeout: '1s' })
      await store.set('k', Buffer.from('v'), 60)
      const got = await store.get('k')
      await store.close()
      // Never closed, breaker open: its probe timer must not keep the process alive.
      const down = new MemcachedStore({ servers: process.env.DOWN, failureThreshold: 1, cooldown: '50ms' })
      await down.get('k').catch(() => {})
      const stuck = new MemcachedStore({ servers: process.env.HOLE, timeout: '30s' })
      const pending = stuck.get('k').then(() => 'resolved', (e) => e.code)
      await new Promise((r) => setTimeout(r, 100))
      await stuck.close()
      console.log(String(got), await pending)
    `
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', script],
      {
        cwd: fileURLToPath(new URL('../..', import.meta.url)),
        env: { ...process.env, REAL: server.address, HOLE: hole.address, DOWN: down },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    )
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => {
      stdout += d
    })
    child.stderr.on('data', (d) => {
      stderr += d
    })
    const exit = new Promise<number | null>((resolve) =>
      child.once('exit', (code) => resolve(code)),
    )
    const outcome = await Promise.race([exit, sleep(15_000, 'timeout' as const, { ref: false })])
    if (outcome === 'timeout') child.kill('SIGKILL')
    assert.notEqual(outcome, 'timeout', `the child did not exit by itself; stderr: ${stderr}`)
    assert.equal(outcome, 0, stderr)
    assert.equal(stdout.trim(), 'v ESTORE_CLOSED')
  })
})
