import assert from 'node:assert/strict'
import { type AddressInfo, createServer } from 'node:net'
import { after, before, describe, it } from 'node:test'
import type { Duration } from '../../src/duration.js'
import {
  MEMCACHED_ITEM_OVERHEAD_BYTES,
  MemcachedStore,
  type MemcachedStoreOptions,
  VALUE_SAFETY_MARGIN_BYTES,
} from '../../src/store/memcached.js'
import { type MemcachedProcess, startMemcached } from '../helpers/memcached.js'
import { runStoreConformance } from './conformance.js'

// memjs reads these by itself; the store must not depend on them, and tests must not either.
const MEMJS_ENV = [
  'MEMCACHIER_SERVERS',
  'MEMCACHIER_USERNAME',
  'MEMCACHIER_PASSWORD',
  'MEMCACHE_SERVERS',
  'MEMCACHE_USERNAME',
  'MEMCACHE_PASSWORD',
]
for (const name of MEMJS_ENV) delete process.env[name]

/** Runs `fn` with some environment variables set, restoring them afterwards. */
async function withEnv<T>(env: Record<string, string>, fn: () => T | Promise<T>): Promise<T> {
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]))
  Object.assign(process.env, env)
  try {
    return await fn()
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k]
      else process.env[k] = v
    }
  }
}

let memcached: MemcachedProcess
before(async () => {
  memcached = await startMemcached()
})
after(async () => {
  await memcached?.stop()
})

runStoreConformance('MemcachedStore', async () => {
  // A generous timeout: the suite checks behaviour, not speed, and CI machines stall.
  const store = new MemcachedStore({ servers: memcached.address, timeout: '2s' })
  return { store, cleanup: () => store.close() }
})

describe('MemcachedStore', () => {
  it('maxValueBytes = itemSize - 59 - key bytes - safety margin', () => {
    assert.equal(MEMCACHED_ITEM_OVERHEAD_BYTES, 59)
    const store = new MemcachedStore({ servers: '127.0.0.1:1' })
    assert.equal(store.maxValueBytes(10), 1_048_576 - 59 - 10 - VALUE_SAFETY_MARGIN_BYTES)
    const big = new MemcachedStore({ servers: '127.0.0.1:1', itemSize: 2 * 1_048_576 })
    assert.equal(big.maxValueBytes(250), 2 * 1_048_576 - 59 - 250 - VALUE_SAFETY_MARGIN_BYTES)
    assert.throws(() => store.maxValueBytes(-1), TypeError)
  })

  it('stores values up to a 2 MiB item size when the server runs with -I 2m', async () => {
    const server = await startMemcached({ itemSize: '2m' })
    const store = new MemcachedStore({
      servers: server.address,
      itemSize: 2 * 1_048_576,
      timeout: '2s',
    })
    try {
      const value = Buffer.alloc(store.maxValueBytes(3), 7)
      assert.ok(value.length > 1_048_576)
      await store.set('big', value, 60)
      assert.ok((await store.get('big'))?.equals(value))
    } finally {
      await store.close()
      await server.stop()
    }
  })

  it('never turns SASL on from MEMCACHIER_* / MEMCACHE_* credentials', async () => {
    // memjs would start every connection with a SASL "list mechanisms" request (opcode 0x20). Against
    // a memcached without SASL that still happens to work, so look at the wire: the first frame on a
    // connection must be the request itself.
    const firstFrames: Buffer[] = []
    const recorder = createServer((socket) => {
      socket.once('data', (chunk) => {
        firstFrames.push(chunk)
        socket.destroy()
      })
      socket.on('error', () => {})
    })
    await new Promise<void>((resolve) => recorder.listen(0, '127.0.0.1', resolve))
    const { port } = recorder.address() as AddressInfo
    try {
      await withEnv(
        {
          MEMCACHIER_USERNAME: 'user',
          MEMCACHIER_PASSWORD: 'secret',
          MEMCACHE_USERNAME: 'user',
          MEMCACHE_PASSWORD: 'secret',
        },
        async () => {
          const store = new MemcachedStore({ servers: `127.0.0.1:${port}`, timeout: '200ms' })
          try {
            await assert.rejects(store.get('sasl-off'))
          } finally {
            await store.close()
          }
          // And against real memcached the store works with those variables set.
          const real = new MemcachedStore({ servers: memcached.address, timeout: '1s' })
          try {
            await real.set('sasl-off', Buffer.from('ok'), 60)
            assert.equal((await real.get('sasl-off'))?.toString(), 'ok')
          } finally {
            await real.close()
          }
        },
      )
    } finally {
      await new Promise((resolve) => recorder.close(resolve))
    }
    assert.equal(firstFrames.length, 1)
    assert.equal(firstFrames[0]![0], 0x80, 'a binary-protocol request')
    assert.equal(firstFrames[0]![1], 0x00, 'opcode GET, not SASL list mechanisms (0x20)')
  })

  describe('servers', () => {
    it('accepts strings (comma or space separated) and arrays; normalises and sorts', () => {
      const store = new MemcachedStore({ servers: 'Cache-B:11212, cache-a:11211  10.0.0.1' })
      assert.deepEqual(store.servers, ['10.0.0.1:11211', 'cache-a:11211', 'cache-b:11212'])
      const fromArray = new MemcachedStore({ servers: ['cache-b:11212', '10.0.0.1', 'cache-a'] })
      assert.deepEqual(fromArray.servers, store.servers)
      assert.equal(fromArray.serverFor('some/key'), store.serverFor('some/key'))
    })

    it('falls back to MEMCACHE_SERVERS, then 127.0.0.1:11211, never to MEMCACHIER_SERVERS', async () => {
      assert.deepEqual(new MemcachedStore().servers, ['127.0.0.1:11211'])
      await withEnv({ MEMCACHIER_SERVERS: 'elsewhere:1' }, () => {
        assert.deepEqual(new MemcachedStore().servers, ['127.0.0.1:11211'])
      })
      await withEnv({ MEMCACHE_SERVERS: 'env-a:11211,env-b:11212' }, () => {
        assert.deepEqual(new MemcachedStore().servers, ['env-a:11211', 'env-b:11212'])
        assert.deepEqual(new MemcachedStore({ servers: 'explicit:1' }).servers, ['explicit:1'])
        assert.deepEqual(new MemcachedStore({ servers: undefined }).servers, [
          'env-a:11211',
          'env-b:11212',
        ])
      })
      await withEnv({ MEMCACHE_SERVERS: '::1' }, () => {
        assert.throws(() => new MemcachedStore(), /MEMCACHE_SERVERS entry '::1'.*IPv6/)
      })
    })

    it('rejects IPv6 literals with a fix', () => {
      for (const servers of ['::1', '[::1]:11211', 'fe80::1:11211', ['cache:1', '2001:db8::1']]) {
        assert.throws(
          () => new MemcachedStore({ servers }),
          (error: unknown) =>
            error instanceof TypeError && /use a hostname or IPv4 address/.test(error.message),
          String(servers),
        )
      }
    })

    it('rejects malformed entries, empty lists and duplicates', () => {
      const cases: Array<[MemcachedStoreOptions['servers'] | number, RegExp]> = [
        ['cache:abc', /invalid port/],
        ['cache:0', /invalid port/],
        ['cache:65536', /invalid port/],
        ['cache:', /invalid port/],
        [':11211', /not a valid host/],
        ['bad_host!:11211', /not a valid host/],
        ['user:pass@cache:11211', /credentials/],
        ['memcached://cache:11211', /URL scheme/],
        ['', /empty/],
        [' , ', /empty/],
        [[], /empty/],
        ['cache:11211,CACHE:11211', /twice/],
        ['cache,cache:11211', /twice/],
        [11211, /must be a string/],
      ]
      for (const [servers, message] of cases) {
        assert.throws(
          () => new MemcachedStore({ servers: servers as MemcachedStoreOptions['servers'] }),
          (error: unknown) => error instanceof TypeError && message.test(error.message),
          `${JSON.stringify(servers)} should fail with ${message}`,
        )
      }
    })
  })

  describe('options', () => {
    it('rejects unknown options with a "did you mean" hint', () => {
      assert.throws(
        () => new MemcachedStore({ timout: '1s' } as MemcachedStoreOptions),
        /unknown MemcachedStore option `timout`; did you mean `timeout`\?/,
      )
      assert.throws(
        () => new MemcachedStore({ server: 'a:1' } as MemcachedStoreOptions),
        /did you mean `servers`/,
      )
      assert.throws(
        () => new MemcachedStore({ retries: 3 } as MemcachedStoreOptions),
        /unknown MemcachedStore option `retries`.*Known options/,
      )
    })

    it('rejects a bare string with a hint to pass an options object', () => {
      assert.throws(
        () => new MemcachedStore('127.0.0.1:11211' as unknown as MemcachedStoreOptions),
        /takes an options object.*servers/,
      )
    })

    it('parses durations as seconds or with units, and validates them', () => {
      for (const timeout of [0.1, '100ms', '2s', ' 1.5 s '] as Duration[]) {
        assert.doesNotThrow(() => new MemcachedStore({ servers: 'a:1', timeout }))
      }
      assert.throws(
        () => new MemcachedStore({ servers: 'a:1', timeout: 100 }),
        /did you mean '100ms'/,
      )
      assert.throws(() => new MemcachedStore({ servers: 'a:1', timeout: 0 }), /greater than 0/)
      assert.throws(() => new MemcachedStore({ servers: 'a:1', timeout: '5 mins' }), TypeError)
      assert.throws(() => new MemcachedStore({ servers: 'a:1', connectTimeout: -1 }), TypeError)
      assert.throws(() => new MemcachedStore({ servers: 'a:1', cooldown: '2 hours' }), TypeError)
      assert.doesNotThrow(() => new MemcachedStore({ servers: 'a:1', cooldown: '500ms' }))
    })

    it('validates numbers, booleans and the hook; undefined means default', () => {
      const bad: MemcachedStoreOptions[] = [
        { failureThreshold: 0 },
        { failureThreshold: 2.5 },
        { itemSize: 100 },
        { itemSize: 1.5e6 + 0.5 },
        { keepAlive: 'yes' as unknown as boolean },
        { onEvent: 'log' as unknown as MemcachedStoreOptions['onEvent'] },
      ]
      for (const options of bad) {
        assert.throws(
          () => new MemcachedStore({ servers: 'a:1', ...options }),
          TypeError,
          JSON.stringify(options),
        )
      }
      const defaults = new MemcachedStore({
        servers: 'a:1',
        timeout: undefined,
        connectTimeout: undefined,
        failureThreshold: undefined,
        cooldown: undefined,
        itemSize: undefined,
        keepAlive: undefined,
        onEvent: undefined,
      })
      assert.equal(defaults.maxValueBytes(0), 1_048_576 - 59 - VALUE_SAFETY_MARGIN_BYTES)
    })

    it('does not mutate the caller’s options (frozen object, array included)', () => {
      const servers = Object.freeze(['cache-b:2', 'cache-a:1'])
      const options = Object.freeze({ servers, timeout: '50ms', cooldown: 1, keepAlive: false })
      const snapshot = JSON.stringify(options)
      const store = new MemcachedStore(options)
      assert.equal(JSON.stringify(options), snapshot)
      assert.deepEqual(store.servers, ['cache-a:1', 'cache-b:2'])
    })
  })
})
