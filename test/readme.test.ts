/**
 * The README's options tables are documentation users trust: every option is listed, nothing else
 * is, and each default stated there is the one the code applies.
 */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { it } from 'node:test'
import {
  APP_KEYS,
  type CacheConfig,
  defaultLogger,
  parseOptions,
  ROUTE_KEYS,
} from '../src/options.js'
import { MemoryStore } from '../src/store/memory.js'

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8')

/** Rows of the first Markdown table after `heading`: option name → default cell. */
function table(heading: string): Map<string, string> {
  const start = readme.indexOf(heading)
  assert.ok(start >= 0, `README has a "${heading}" section`)
  const rows = new Map<string, string>()
  let inTable = false
  for (const line of readme.slice(start).split('\n').slice(1)) {
    if (line.startsWith('|')) {
      inTable = true
      const cells = line.split(/(?<!\\)\|/).map((c) => c.trim())
      const name = /^`(\w+)`$/.exec(cells[1] ?? '')?.[1]
      if (name) rows.set(name, cells[3] ?? '')
    } else if (inTable) break
  }
  return rows
}

const seconds = (ms: number): string => `\`${ms / 1000}\``
const config: CacheConfig = parseOptions({ store: new MemoryStore() }, () => new MemoryStore())
const hotOn = parseOptions({ store: new MemoryStore(), hotCache: true }, () => new MemoryStore())
/** A list as the README writes it: `['a', 'b']`. */
const list = (items: Iterable<string>): string =>
  `\`[${[...items].map((i) => `'${i}'`).join(', ')}]\``

const expected: Record<(typeof APP_KEYS)[number], string> = {
  store: '`new MemcachedStore()`',
  ttl: seconds(config.ttlMs),
  grace: seconds(config.graceMs),
  staleIfError: seconds(config.staleIfErrorMs),
  lockTtl: `\`${config.lockTtlS}\``,
  waitTimeout: seconds(config.waitTimeoutMs),
  vary: `\`${JSON.stringify(config.vary)}\``,
  key: 'none',
  statuses: `\`[${[...config.statuses].join(', ')}]\``,
  maxBodySize: `\`${config.maxBodySize}\``,
  stripSetCookie: `\`${config.stripSetCookie}\``,
  responseTtl: `\`${config.responseTtl}\``,
  hitForMiss: seconds(config.hitForMissMs),
  enabled: `\`${config.enabled}\``,
  timeout: seconds(config.timeoutMs),
  pollInterval: seconds(config.pollIntervalMs),
  prefix: `\`'${config.prefix}'\``,
  logger:
    config.logger === defaultLogger() && config.logger.level === 'warn'
      ? 'pino at `warn` on stderr'
      : `level ${config.logger.level}`,
  debugHeaders: `\`${config.debugHeaders}\``,
  cacheName: `\`'${config.cacheName}'\``,
  honorClientNoCache: `\`${config.honorClientNoCache}\``,
  sessionCookies: `\`${JSON.stringify(config.sessionCookies)}\``,
  invalidateOnUnsafe: `\`${config.invalidateOnUnsafe}\``,
  servers: 'none',
  cookies: `\`'${config.cookies}'\``,
  ignoredCookies: list(config.ignoredCookies),
  tags: config.tags === undefined ? 'none' : 'a function',
  perRequestHeaders: [...config.perRequestHeaders].map((h) => `\`${h}\``).join(', '),
  hotCache: config.hotCache === undefined ? '`false`' : 'on',
  keepSurrogateKey: `\`${config.keepSurrogateKey}\``,
  invalidationPoll: seconds(config.invalidationPollMs),
  meterProvider: config.meterProvider === undefined ? 'the global one' : 'a provider',
}

it('lists every responseCache option, and only those, with the defaults the code applies', () => {
  const rows = table('### `responseCache(options)`')
  assert.deepEqual([...rows.keys()].sort(), [...APP_KEYS].sort())
  for (const name of APP_KEYS) assert.equal(rows.get(name), expected[name], `default of ${name}`)
})

it('states what `hotCache: true` means', () => {
  const row = readme.split('\n').find((l) => l.startsWith('| `hotCache` |')) ?? ''
  const maxBytes = hotOn.hotCache?.maxBytes ?? 0
  const ttl = (hotOn.hotCache?.ttlMs ?? 0) / 1000
  assert.ok(row.includes(`\`{ maxBytes: ${maxBytes}, ttl: ${ttl} }\``), row)
  assert.ok(row.includes(`${maxBytes / 1024 / 1024} MiB, ${ttl} s`), row)
})

it('names every per-route option in the cache.route() section', () => {
  const start = readme.indexOf('### `cache.route(options)`')
  const section = readme.slice(start, readme.indexOf('###', start + 5))
  for (const name of ROUTE_KEYS) assert.match(section, new RegExp(`\`${name}\``), name)
})

it('lists every MemcachedStore and MemoryStore option', async () => {
  const memcached = table('### `new MemcachedStore(options)`')
  assert.deepEqual([...memcached.keys()].sort(), [
    'connectTimeout',
    'cooldown',
    'failureThreshold',
    'itemSize',
    'keepAlive',
    'onEvent',
    'servers',
    'timeout',
  ])
  const memory = table('### `new MemoryStore(options)`')
  assert.deepEqual([...memory.keys()].sort(), ['maxBytes', 'maxValueBytes'])
  const store = new MemoryStore()
  assert.equal(memory.get('maxBytes'), `\`${store.maxBytes}\``)
  assert.equal(memory.get('maxValueBytes'), `\`${store.maxValueBytes(0)}\``)
})
