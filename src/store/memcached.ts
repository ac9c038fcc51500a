/**
 * MemcachedStore: the CacheStore for memcached, on memjs 1.3.2 (binary protocol).
 *
 * memjs is used only as a connection: one `memjs.Client` per server (its socket, pipelining and
 * response matching), driven through `Client#perform` with request frames built here. Everything
 * memjs gets wrong for a cache that must fail fast and recover by itself is handled in this file
 * (docs/memcached-and-memjs.md has the measurements behind each point):
 *
 * - Server choice: a consistent-hashing ring over the sorted list ({@link HashRing}), not memjs's
 *   `hashCode % n` (which moves 75% of keys when a server is added and depends on list order).
 *   `failover` stays off: two processes could otherwise take the same `add` lock on two servers.
 * - Configuration: the server list is parsed and validated here, and each Client gets exactly one
 *   'host:port', so memjs never falls back to MEMCACHIER_SERVERS / MEMCACHE_SERVERS / localhost.
 *   SASL credentials are cleared on every memjs Server after construction: memjs reads
 *   MEMCACHIER_USERNAME/PASSWORD and MEMCACHE_USERNAME/PASSWORD with `||`, so no option can turn
 *   that off (an empty `username` falls through to the environment).
 * - Expiry: every set/add frame carries an explicit expiration, clamped to [1, 2,592,000] s (memjs
 *   uses `expires || default`, and memcached reads > 30 days as an absolute time).
 * - Request ids: our own per-server counter, reset well before 2^31 (memjs's `seq` turns negative
 *   after 2^31 requests and every request then throws RangeError).
 * - Deadlines: every call is wrapped in {@link withDeadline}; memjs's timeouts are socket idle timers
 *   and some requests never call back (the server closed the connection; memjs #162/#172).
 * - Recovery: a Client is discarded at its first transport failure (error, close, deadline) and a
 *   fresh one built: memjs keeps unparsed bytes in its read buffer forever (after
 *   "ERROR Too many open connections" a Client never works again), keeps stale request deadlines
 *   across reconnects, and lets events of an old socket clobber a new one. Discarding destroys every
 *   socket the Client ever opened, including ones memjs itself lost track of (a connect timeout
 *   `end()`s a socket still in SYN-SENT and forgets it).
 * - Read path: memjs's per-chunk handler is replaced by a {@link FrameReader} (memjs copies its whole
 *   read buffer into a new zero-filled one per chunk: quadratic for a large value). A value that
 *   arrives in one chunk is resolved as a view of it, without a copy; a stream that is not binary
 *   protocol fails the connection at once.
 * - Circuit breaker per server: consecutive transport failures open it and calls are refused
 *   without touching the network. At the end of each cooldown the store sends a NOOP itself (an
 *   unref'd timer) rather than letting the next live request be the probe: otherwise, right after a
 *   server returns, every process refuses at least one request and renders it without the mint
 *   lock. The breaker thus closes within cooldown + one round trip of recovery, with no traffic.
 * - Keys and sizes are checked before sending: an over-long key makes memcached close the connection
 *   (failing every request pipelined on it), and a too-large SET is rejected *and deletes the item
 *   already stored under the key*.
 */
import type { Socket } from 'node:net'
import memjs from 'memjs'
import { type Duration, parseDuration } from '../duration.js'
import { type BreakerState, CircuitBreaker } from './breaker.js'
import {
  assertBuffer,
  assertCas,
  assertValidKey,
  clampTtl,
  readInteger,
  readOptions,
  StoreClosedError,
  StoreConnectionError,
  StoreResponseError,
  StoreUnavailableError,
  ValueTooLargeError,
} from './common.js'
import { DeadlineError, DeadlineQueue, withDeadline } from './deadline.js'
import { FrameReader, type Response } from './reader.js'
import { HashRing } from './ring.js'
import type { CacheStore } from './types.js'

export {
  InvalidKeyError,
  StoreClosedError,
  StoreConnectionError,
  type StoreErrorCode,
  StoreResponseError,
  StoreUnavailableError,
  ValueTooLargeError,
} from './common.js'
export { DeadlineError } from './deadline.js'

/** What {@link MemcachedStoreOptions.onEvent} receives. */
export interface MemcachedStoreEvent {
  /**
   * - `breaker-open`: the server failed `failureThreshold` times in a row; calls to it are refused
   *   until a probe succeeds. Once per outage (re-opening after a failed probe is not reported).
   *   Suggested log level: warn.
   * - `breaker-close`: a probe succeeded (the store's own NOOP at the end of a cooldown, or a call that
   *   got there first); the server is in use again. Suggested level: info.
   * - `client-rebuilt`: a connection failed and its memjs Client was replaced by a fresh one. Once per
   *   transport failure (so about once per cooldown during an outage). Suggested level: debug.
   */
  type: 'breaker-open' | 'breaker-close' | 'client-rebuilt'
  /** 'host:port' as normalised by the store. */
  server: string
  /** The failure behind the event (absent for `breaker-close`). */
  error?: unknown
}

export interface MemcachedStoreOptions {
  /**
   * 'host:port' entries (port defaults to 11211); a string may hold several, separated by commas or
   * whitespace. Hostnames or IPv4 addresses only (memjs cannot parse IPv6 literals). Every process
   * sharing the cache must list the same servers; order does not matter.
   * Default: `process.env.MEMCACHE_SERVERS`, then '127.0.0.1:11211'.
   */
  servers?: string | readonly string[]
  /** Hard deadline per operation: seconds, or a string such as '100ms', '2s'. Default '100ms'. */
  timeout?: Duration
  /**
   * Extra time allowed when an operation has to open a connection first (it then gets
   * `connectTimeout + timeout`); also memjs's connect timeout. Default: the value of `timeout`.
   */
  connectTimeout?: Duration
  /** Consecutive failures that mark a server down (open its circuit breaker). Default 5. */
  failureThreshold?: number
  /**
   * How long a server stays marked down before the store probes it (a NOOP, sent without waiting for
   * traffic; again every cooldown while it fails). Default '2s'.
   */
  cooldown?: Duration
  /**
   * memcached's item size limit in bytes (`memcached -I`), default 1048576 (1 MiB). Must match the
   * servers: values that would not fit are refused before sending (see `maxValueBytes`).
   */
  itemSize?: number
  /** TCP keep-alive on connections. Default true. */
  keepAlive?: boolean
  /** Observability hook (breaker transitions, client rebuilds). Exceptions thrown by it are ignored. */
  onEvent?: (event: MemcachedStoreEvent) => void
}

const OPTION_NAMES = [
  'servers',
  'timeout',
  'connectTimeout',
  'failureThreshold',
  'cooldown',
  'itemSize',
  'keepAlive',
  'onEvent',
] as const satisfies readonly (keyof MemcachedStoreOptions)[]

/** Per-item overhead memcached 1.6 counts against `-I` (item header 48 + CAS 8 + key NUL 1 + CRLF 2). */
export const MEMCACHED_ITEM_OVERHEAD_BYTES = 59
/**
 * Bytes kept free below memcached's exact limit, for overhead this store does not control: 4 bytes
 * of client flags should a future version store any, and headroom for a server build whose item
 * header is a little larger. Costs 64 bytes out of a megabyte.
 */
export const VALUE_SAFETY_MARGIN_BYTES = 64
const DEFAULT_ITEM_SIZE = 1_048_576
const DEFAULT_SERVER = '127.0.0.1:11211'
/** Request ids restart at 1 past this, far below 2^31 where memjs's own counter breaks. */
const SEQUENCE_RESET_AT = 2 ** 30

// memcached binary protocol (protocol_binary.h).
const OP_GET = 0x00
const OP_SET = 0x01
const OP_ADD = 0x02
const OP_DELETE = 0x04
const OP_NOOP = 0x0a
const STATUS_OK = 0x0000
const STATUS_KEY_NOT_FOUND = 0x0001
const STATUS_KEY_EXISTS = 0x0002
const STATUS_NOT_STORED = 0x0005
const STATUS_TEXT: Readonly<Record<number, string>> = {
  1: 'key not found',
  2: 'key exists',
  3: 'value too large',
  4: 'invalid arguments',
  5: 'item not stored',
  6: 'non-numeric value',
  8: 'authentication error',
  129: 'unknown command',
  130: 'out of memory',
  131: 'not supported',
  132: 'internal error',
  133: 'busy',
  134: 'temporary failure',
}

/** The parts of memjs 1.3.2 this store relies on (lib/memjs/memjs.js, server.js), beyond @types/memjs. */
type MemjsResponse = Response
interface MemjsServer {
  connected: boolean
  _socket?: Socket
  username?: string
  password?: string
  error(error: unknown): void
  respond(response: MemjsResponse): void
  /** Called by memjs with every chunk its socket reads; replaced, see {@link FrameReader}. */
  responseHandler(chunk: Buffer): void
}
interface MemjsClient {
  servers: MemjsServer[]
  perform(
    key: string,
    request: Buffer,
    seq: number,
    callback: (error: unknown, response: MemjsResponse | null) => void,
  ): void
}

const NOOP_LOGGER = { log(): void {} }

/** Sockets corked until the event loop's check phase (see #request). */
const corked = new WeakSet<Socket>()

interface Config {
  readonly servers: readonly string[]
  readonly timeoutMs: number
  readonly timeoutSeconds: number
  readonly connectTimeoutMs: number
  readonly connectTimeoutSeconds: number
  readonly failureThreshold: number
  readonly cooldownMs: number
  readonly itemSize: number
  readonly keepAlive: boolean
  readonly onEvent: ((event: MemcachedStoreEvent) => void) | undefined
}

/** One memjs Client and every socket it has opened. */
interface ClientHandle {
  readonly client: MemjsClient
  readonly server: MemjsServer
  readonly generation: number
  readonly sockets: Set<Socket>
}

/** Per-server state: the current Client, the breaker, the request-id counter. */
interface ServerState {
  readonly address: string
  readonly host: string
  readonly port: number
  readonly breaker: CircuitBreaker
  handle: ClientHandle
  seq: number
  lastError: unknown
  /**
   * The error every call refused by the open breaker rejects with: built once per failure, not per
   * call, since building an Error (its stack) was the largest cost of serving through an outage.
   */
  unavailable: StoreUnavailableError | undefined
  /** The pending active-recovery probe while the breaker is not closed. */
  probeTimer: NodeJS.Timeout | undefined
}

const HOSTNAME = /^[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?)*\.?$/i

function parseServerEntry(entry: string, source: string): string {
  const fix = `use 'host:port' with a hostname or IPv4 address, e.g. '127.0.0.1:11211'`
  if (entry.includes('@')) {
    throw new TypeError(
      `express-ft-cache: ${source} entry '${entry}' carries credentials; SASL is not supported, ${fix}`,
    )
  }
  if (entry.includes('://')) {
    throw new TypeError(
      `express-ft-cache: ${source} entry '${entry}' has a URL scheme; drop it and ${fix}`,
    )
  }
  if (entry.startsWith('[') || (entry.match(/:/g)?.length ?? 0) > 1) {
    throw new TypeError(
      `express-ft-cache: ${source} entry '${entry}' looks like an IPv6 literal, which memjs cannot ` +
        `parse (it splits on ':'); use a hostname or IPv4 address instead, e.g. 'cache1:11211'`,
    )
  }
  const [host = '', portText] = entry.split(':')
  let port = 11211
  if (portText !== undefined) {
    port = /^\d{1,5}$/.test(portText) ? Number(portText) : Number.NaN
    if (!(port >= 1 && port <= 65535)) {
      throw new TypeError(
        `express-ft-cache: ${source} entry '${entry}' has an invalid port (1-65535); ${fix}`,
      )
    }
  }
  if (!HOSTNAME.test(host) || host.length > 253) {
    throw new TypeError(`express-ft-cache: ${source} entry '${entry}' is not a valid host; ${fix}`)
  }
  return `${host.toLowerCase()}:${port}`
}

function parseServers(value: unknown, source: string): string[] {
  const parts: string[] = []
  if (typeof value === 'string') {
    parts.push(value)
  } else if (Array.isArray(value) && value.every((v) => typeof v === 'string')) {
    parts.push(...(value as string[]))
  } else {
    throw new TypeError(
      `express-ft-cache: ${source} must be a string such as 'cache1:11211,cache2:11211' or an array of 'host:port' strings (got ${typeof value})`,
    )
  }
  const entries = parts.flatMap((p) => p.split(/[\s,]+/)).filter((p) => p.length > 0)
  if (entries.length === 0) {
    throw new TypeError(
      `express-ft-cache: ${source} is empty; list at least one 'host:port' (omit the option to use MEMCACHE_SERVERS or 127.0.0.1:11211)`,
    )
  }
  const servers = entries.map((e) => parseServerEntry(e, source))
  const seen = new Set<string>()
  for (const server of servers) {
    if (seen.has(server)) {
      throw new TypeError(`express-ft-cache: ${source} lists ${server} twice`)
    }
    seen.add(server)
  }
  return servers
}

function readDuration(
  value: unknown,
  name: string,
  fallbackSeconds: number,
  maxSeconds: number,
): number {
  if (value === undefined) return fallbackSeconds
  const seconds = parseDuration(value as Duration, name)
  if (seconds <= 0) {
    throw new TypeError(
      `express-ft-cache: \`${name}\` must be greater than 0 (got ${String(value)})`,
    )
  }
  if (seconds > maxSeconds) {
    const hint =
      typeof value === 'number' ? `; numbers are seconds: did you mean '${value}ms'?` : ''
    throw new TypeError(
      `express-ft-cache: \`${name}\` must be at most ${maxSeconds} s (got ${String(value)})${hint}`,
    )
  }
  return seconds
}

function toMs(seconds: number): number {
  return Math.max(1, Math.round(seconds * 1000))
}

function resolveConfig(options: unknown): Config {
  const o = readOptions<MemcachedStoreOptions>(
    options,
    OPTION_NAMES,
    'MemcachedStore',
    "{ servers: 'cache1:11211,cache2:11211' }",
  )
  let servers: string[]
  if (o.servers !== undefined) {
    servers = parseServers(o.servers, '`servers`')
  } else {
    const env = process.env.MEMCACHE_SERVERS
    servers = env?.trim() ? parseServers(env, 'MEMCACHE_SERVERS') : [DEFAULT_SERVER]
  }
  const timeoutSeconds = readDuration(o.timeout, 'timeout', 0.1, 60)
  const connectTimeoutSeconds = readDuration(o.connectTimeout, 'connectTimeout', timeoutSeconds, 60)
  const cooldownSeconds = readDuration(o.cooldown, 'cooldown', 2, 3600)
  if (o.keepAlive !== undefined && typeof o.keepAlive !== 'boolean') {
    throw new TypeError(
      `express-ft-cache: \`keepAlive\` must be a boolean (got ${JSON.stringify(o.keepAlive)})`,
    )
  }
  if (o.onEvent !== undefined && typeof o.onEvent !== 'function') {
    throw new TypeError(
      `express-ft-cache: \`onEvent\` must be a function such as (event) => logger.warn(event) (got ${typeof o.onEvent})`,
    )
  }
  return Object.freeze({
    servers: Object.freeze(servers),
    timeoutSeconds,
    timeoutMs: toMs(timeoutSeconds),
    connectTimeoutSeconds,
    connectTimeoutMs: toMs(connectTimeoutSeconds),
    failureThreshold: readInteger(o.failureThreshold, 'failureThreshold', 5, 1, 1000),
    cooldownMs: toMs(cooldownSeconds),
    itemSize: readInteger(o.itemSize, 'itemSize', DEFAULT_ITEM_SIZE, 1024, 1024 * 1024 * 1024),
    keepAlive: o.keepAlive ?? true,
    onEvent: o.onEvent,
  })
}

/** A binary-protocol request frame (24-byte header, extras, key, value). Keys are ASCII (validated). */
function encodeRequest(
  opcode: number,
  key: string,
  opaque: number,
  extras?: Buffer,
  value?: Buffer,
  cas = 0n,
): Buffer {
  const extrasLength = extras?.length ?? 0
  const keyLength = key.length
  const valueLength = value?.length ?? 0
  const frame = Buffer.allocUnsafe(24 + extrasLength + keyLength + valueLength)
  frame.writeUInt8(0x80, 0) // request magic
  frame.writeUInt8(opcode, 1)
  frame.writeUInt16BE(keyLength, 2)
  frame.writeUInt8(extrasLength, 4)
  frame.writeUInt8(0, 5) // data type
  frame.writeUInt16BE(0, 6) // vbucket
  frame.writeUInt32BE(extrasLength + keyLength + valueLength, 8)
  frame.writeUInt32BE(opaque, 12)
  frame.writeBigUInt64BE(cas, 16) // 0: no CAS condition
  extras?.copy(frame, 24)
  frame.write(key, 24 + extrasLength, 'latin1')
  value?.copy(frame, 24 + extrasLength + keyLength)
  return frame
}

/** set/add extras: flags (always 0) and the relative expiration in seconds. */
function storageExtras(ttlSeconds: number): Buffer {
  const extras = Buffer.alloc(8)
  extras.writeUInt32BE(clampTtl(ttlSeconds), 4)
  return extras
}

/** The CAS from a response header (bytes 16-23, big-endian). */
function readCas(response: MemjsResponse): bigint {
  const cas = response.header.cas
  return cas?.length === 8 ? cas.readBigUInt64BE(0) : 0n
}

/** A short summary for the message; the full error stays in `cause` (pino prints both). */
function describeError(error: unknown): string {
  const code = (error as NodeJS.ErrnoException | null)?.code
  if (typeof code === 'string') return `connection failed (${code})`
  return error instanceof Error ? `connection failed (${error.name})` : 'connection failed'
}

export class MemcachedStore implements CacheStore {
  /** The servers in use, normalised ('host:port', lower-case host) and sorted. */
  readonly servers: readonly string[]
  readonly #config: Config
  readonly #ring: HashRing
  readonly #states: readonly ServerState[]
  #closed = false
  /** One timer for the deadlines of every call in flight (see DeadlineQueue). */
  readonly #deadlines = new DeadlineQueue()
  #warnedAboutHook = false

  constructor(options?: MemcachedStoreOptions) {
    this.#config = resolveConfig(options)
    this.#ring = new HashRing(this.#config.servers)
    this.servers = this.#ring.servers
    this.#states = this.servers.map((address) => this.#createState(address))
  }

  /**
   * The largest value `set` and `add` accept under a key of `keyBytes` bytes:
   * `itemSize - 59 - keyBytes - 64` (memcached's per-item overhead, then {@link VALUE_SAFETY_MARGIN_BYTES}).
   */
  maxValueBytes(keyBytes: number): number {
    if (typeof keyBytes !== 'number' || !(keyBytes >= 0)) {
      throw new TypeError(
        `express-ft-cache: maxValueBytes(keyBytes) needs a byte count >= 0 (got ${String(keyBytes)})`,
      )
    }
    return Math.max(
      0,
      this.#config.itemSize - MEMCACHED_ITEM_OVERHEAD_BYTES - keyBytes - VALUE_SAFETY_MARGIN_BYTES,
    )
  }

  /** The server ('host:port') that holds `key` (routed on the part before the first `~`). */
  serverFor(key: string): string {
    return this.#ring.serverFor(key)
  }

  /** Circuit-breaker state of each server, for health checks and tests. */
  breakerStates(): Record<string, BreakerState> {
    return Object.fromEntries(this.#states.map((s) => [s.address, s.breaker.state]))
  }

  /**
   * The value is a view of the bytes read from the socket, not a copy: a value that arrived in one
   * chunk shares that chunk's memory, so a caller that keeps small values for long (an in-process
   * tier) should copy them rather than pin up to a 64 KiB chunk per value.
   */
  get(key: string): Promise<Buffer | undefined> {
    try {
      assertValidKey(key)
    } catch (err) {
      return Promise.reject(err)
    }
    const state = this.#route(key)
    // Not async: the hit path's one store call saves a promise and a microtask turn.
    return this.#request(state, 'get', key, (seq) => encodeRequest(OP_GET, key, seq)).then(
      (response) => {
        switch (response.header.status) {
          case STATUS_OK:
            return response.val
          case STATUS_KEY_NOT_FOUND:
            return undefined
          default:
            throw this.#statusError(state, 'get', response.header.status)
        }
      },
    )
  }

  async set(key: string, value: Buffer, ttlSeconds: number): Promise<void> {
    assertValidKey(key)
    assertBuffer(value)
    const extras = storageExtras(ttlSeconds)
    this.#assertFits(key, value)
    const state = this.#route(key)
    const response = await this.#request(state, 'set', key, (seq) =>
      encodeRequest(OP_SET, key, seq, extras, value),
    )
    if (response.header.status !== STATUS_OK) {
      throw this.#statusError(state, 'set', response.header.status)
    }
  }

  /**
   * Stores only if absent; resolves the new item's CAS (from the ADD response header) when this call
   * stored it, `false` when the key exists. Sent once, never retried.
   */
  async add(key: string, value: Buffer, ttlSeconds: number): Promise<bigint | false> {
    assertValidKey(key)
    assertBuffer(value)
    const extras = storageExtras(ttlSeconds)
    this.#assertFits(key, value)
    const state = this.#route(key)
    const response = await this.#request(state, 'add', key, (seq) =>
      encodeRequest(OP_ADD, key, seq, extras, value),
    )
    switch (response.header.status) {
      case STATUS_OK: {
        const cas = readCas(response)
        if (cas === 0n)
          throw this.#statusError(state, 'add', STATUS_OK, 'stored, but without a CAS')
        return cas
      }
      case STATUS_KEY_EXISTS:
      case STATUS_NOT_STORED:
        return false
      default:
        throw this.#statusError(state, 'add', response.header.status)
    }
  }

  async delete(key: string): Promise<void> {
    assertValidKey(key)
    const state = this.#route(key)
    const response = await this.#request(state, 'delete', key, (seq) =>
      encodeRequest(OP_DELETE, key, seq),
    )
    const status = response.header.status
    if (status !== STATUS_OK && status !== STATUS_KEY_NOT_FOUND) {
      throw this.#statusError(state, 'delete', status)
    }
  }

  /**
   * Binary DELETE with the CAS in the request header: memcached deletes only if the item's CAS is
   * still `cas`. `true` when deleted; `false` on KEY_NOT_FOUND (absent, expired) or KEY_EXISTS
   * (changed since). Sent once, never retried.
   */
  async compareAndDelete(key: string, cas: bigint): Promise<boolean> {
    assertValidKey(key)
    assertCas(cas)
    const state = this.#route(key)
    const response = await this.#request(state, 'compareAndDelete', key, (seq) =>
      encodeRequest(OP_DELETE, key, seq, undefined, undefined, cas),
    )
    switch (response.header.status) {
      case STATUS_OK:
        return true
      case STATUS_KEY_NOT_FOUND:
      case STATUS_KEY_EXISTS:
        return false
      default:
        throw this.#statusError(state, 'compareAndDelete', response.header.status)
    }
  }

  /**
   * Closes every connection. Calls still in flight reject with a StoreClosedError, later calls too.
   * Resolves once the sockets are closed and the probe timers cleared, so the process can then exit.
   */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    const closing: Promise<void>[] = []
    for (const state of this.#states) {
      clearTimeout(state.probeTimer)
      state.probeTimer = undefined
      closing.push(this.#discard(state.handle, new StoreClosedError('MemcachedStore')))
    }
    await Promise.all(closing)
  }

  /**
   * Test-only: sets every server's request-id counter to `n`, to prove requests keep working across
   * the reset that keeps ids below 2^31.
   * @internal
   */
  _forceSequenceForTests(n: number): void {
    if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) {
      throw new RangeError('_forceSequenceForTests needs an integer in [0, 2^32 - 1]')
    }
    for (const state of this.#states) state.seq = n
  }

  #createState(address: string): ServerState {
    const [host = '', portText = ''] = address.split(':')
    const state: ServerState = {
      address,
      host,
      port: Number(portText),
      seq: 0,
      lastError: undefined,
      unavailable: undefined,
      probeTimer: undefined,
      breaker: new CircuitBreaker({
        failureThreshold: this.#config.failureThreshold,
        cooldownMs: this.#config.cooldownMs,
        onOpen: (error, reopened) => {
          // Every opening, a failed probe's included, schedules the next probe.
          this.#scheduleProbe(state, this.#config.cooldownMs)
          if (!reopened) this.#emit({ type: 'breaker-open', server: address, error })
        },
        onClose: () => this.#emit({ type: 'breaker-close', server: address }),
      }),
      // Replaced just below; a placeholder keeps the field non-optional.
      handle: undefined as unknown as ClientHandle,
    }
    state.handle = this.#createHandle(state, 0)
    return state
  }

  #createHandle(state: ServerState, generation: number): ClientHandle {
    const config = this.#config
    // A fresh options object each time: memjs merges its defaults into the object it is given.
    const client = memjs.Client.create(`${state.host}:${state.port}`, {
      retries: 1, // total attempts: never retried (an `add` must never be sent twice)
      retry_delay: 0,
      failover: false,
      expires: 0, // unused: every frame carries its own expiration
      logger: NOOP_LOGGER,
      // memjs's request timer is an idle-socket backstop; the hard limit is our deadline, which for
      // a call that connects first is timeout + connectTimeout: stay clearly beyond both.
      timeout: config.timeoutSeconds * 2 + config.connectTimeoutSeconds,
      conntimeout: config.connectTimeoutSeconds,
      keepAlive: config.keepAlive,
    }) as unknown as MemjsClient
    const server = client.servers?.[0]
    if (
      typeof client.perform !== 'function' ||
      client.servers.length !== 1 ||
      !server ||
      typeof server.error !== 'function' ||
      typeof server.respond !== 'function' ||
      typeof server.responseHandler !== 'function'
    ) {
      throw new Error(
        'express-ft-cache: this version of memjs is not supported (MemcachedStore needs memjs 1.3.x)',
      )
    }
    // memjs reads MEMCACHIER_USERNAME/PASSWORD and MEMCACHE_USERNAME/PASSWORD and would turn SASL on.
    server.username = undefined
    server.password = undefined
    // Our read path: no copy for a value that arrives in one chunk, one copy otherwise (memjs copies
    // its whole buffer per chunk), and a stream that is not binary protocol (memcached's text
    // "ERROR Too many open connections") fails the connection at once instead of wedging it.
    const reader = new FrameReader(
      config.itemSize + 1024,
      (response) => server.respond(response),
      (error) => server.error(error),
    )
    let readingFrom: Socket | undefined
    server.responseHandler = (chunk) => {
      if (server._socket !== readingFrom) {
        reader.reset()
        readingFrom = server._socket
      }
      reader.push(chunk)
    }
    return { client, server, generation, sockets: new Set() }
  }

  #route(key: string): ServerState {
    return this.#states[this.#ring.indexFor(key)]!
  }

  #assertFits(key: string, value: Buffer): void {
    const limit = this.maxValueBytes(key.length)
    if (value.length > limit) throw new ValueTooLargeError(value.length, limit)
  }

  #statusError(
    state: ServerState,
    operation: string,
    status: number,
    text = STATUS_TEXT[status] ?? 'unknown status',
  ): StoreResponseError {
    return new StoreResponseError(state.address, operation, status, text)
  }

  /** Sends one frame to the server through its breaker, deadline and current Client. */
  #request(
    state: ServerState,
    operation: string,
    key: string,
    frame: (seq: number) => Buffer,
  ): Promise<MemjsResponse> {
    if (this.#closed) return Promise.reject(new StoreClosedError('MemcachedStore'))
    const permit = state.breaker.acquire()
    if (permit === undefined) {
      state.unavailable ??= new StoreUnavailableError(state.address, state.lastError)
      return Promise.reject(state.unavailable)
    }
    state.seq = state.seq >= SEQUENCE_RESET_AT ? 1 : state.seq + 1
    const seq = state.seq
    // Cannot throw for validated keys and values (and if it did, a lost half-open permit is replaced
    // after another cooldown).
    const request = frame(seq)
    const handle = state.handle
    const { client, server } = handle
    // An operation that has to connect first gets the connect allowance on top of its timeout.
    const connected = server.connected && server._socket !== undefined
    const ms = connected
      ? this.#config.timeoutMs
      : this.#config.timeoutMs + this.#config.connectTimeoutMs

    // memjs writes each frame with its own socket.write: under load that is one syscall per get.
    // Cork the socket until the check phase (setImmediate), after every connection that was ready
    // in this loop turn has run: the gets of all those requests leave in one write, and memcached
    // answers them in one read. The wait is within the same loop turn: no timer, no added turn.
    const live = server._socket
    if (connected && live !== undefined && !corked.has(live)) {
      corked.add(live)
      live.cork()
      setImmediate(() => {
        corked.delete(live)
        live.uncork()
      })
    }
    const pending = new Promise<MemjsResponse>((resolve, reject) => {
      client.perform(key, request, seq, (error, response) => {
        if (error || !response) reject(error ?? new Error('memjs returned no response'))
        else resolve(response)
      })
    })
    // memjs opens sockets synchronously inside perform(); remember each one so that discarding this
    // Client can destroy it even if memjs has dropped its own reference.
    const socket = server._socket
    if (socket && !handle.sockets.has(socket)) {
      handle.sockets.add(socket)
      socket.once('close', () => handle.sockets.delete(socket))
    }

    return withDeadline(
      pending,
      ms,
      `memcached ${operation} on ${state.address}`,
      this.#deadlines,
    ).then(
      (response) => {
        // Any answer, even an error status, means the server and the connection work.
        if (handle.generation === state.handle.generation) state.breaker.success(permit)
        return response
      },
      (error: unknown) => {
        const failure =
          error instanceof DeadlineError ||
          error instanceof StoreConnectionError ||
          error instanceof StoreClosedError
            ? error
            : new StoreConnectionError(state.address, describeError(error), error)
        // Only the first failure of a Client counts: the ones it takes down with it (every request
        // pipelined on the same connection) are one incident, not many.
        if (!this.#closed && handle.generation === state.handle.generation) {
          state.lastError = failure
          state.unavailable = undefined
          state.breaker.failure(permit, failure)
          this.#rebuild(state, failure)
        }
        throw failure
      },
    )
  }

  #scheduleProbe(state: ServerState, delayMs: number): void {
    clearTimeout(state.probeTimer)
    state.probeTimer = undefined
    if (this.#closed) return
    state.probeTimer = setTimeout(() => {
      state.probeTimer = undefined
      this.#probe(state)
    }, delayMs)
    // A server that stays down must not keep the process alive.
    state.probeTimer.unref()
  }

  /**
   * Active recovery: a NOOP through the breaker as its half-open probe. Success closes the breaker
   * (`breaker-close`); failure re-opens it, which schedules the next probe a cooldown later.
   */
  #probe(state: ServerState): void {
    if (this.#closed || state.breaker.state === 'closed') return
    // Timers may fire a little before the breaker's clock says the cooldown is over.
    const wait = state.breaker.msUntilProbe()
    if (wait > 0) {
      this.#scheduleProbe(state, Math.ceil(wait))
      return
    }
    this.#request(state, 'noop', '', (seq) => encodeRequest(OP_NOOP, '', seq)).catch(() => {
      // Refused: a live request holds the half-open permit. Look again after a cooldown in case
      // that request never reports (a failure would already have scheduled the next probe).
      if (!this.#closed && state.breaker.state !== 'closed' && state.probeTimer === undefined) {
        this.#scheduleProbe(state, this.#config.cooldownMs)
      }
    })
  }

  /** Replaces the server's Client after a transport failure, discarding the old one. */
  #rebuild(state: ServerState, cause: unknown): void {
    const old = state.handle
    state.handle = this.#createHandle(state, old.generation + 1)
    void this.#discard(
      old,
      new StoreConnectionError(
        state.address,
        'connection discarded after a request on it failed',
        cause,
      ),
    )
    this.#emit({ type: 'client-rebuilt', server: state.address, error: cause })
  }

  /**
   * Fails whatever is still pending on a Client with `reason` and destroys every socket it opened.
   * Resolves when the sockets have closed.
   */
  #discard(handle: ClientHandle, reason: Error): Promise<void> {
    const closed: Promise<void>[] = []
    const sockets = new Set(handle.sockets)
    if (handle.server._socket) sockets.add(handle.server._socket)
    for (const socket of sockets) {
      if (!socket.closed) {
        closed.push(new Promise((resolve) => socket.once('close', () => resolve())))
      }
    }
    try {
      // Destroys memjs's current socket and calls every pending error callback with `reason`.
      handle.server.error(reason)
    } catch {
      // memjs internals threw while failing callbacks; the sockets are destroyed below regardless.
    }
    for (const socket of sockets) socket.destroy()
    handle.sockets.clear()
    return Promise.all(closed).then(() => undefined)
  }

  #emit(event: MemcachedStoreEvent): void {
    const hook = this.#config.onEvent
    if (!hook) return
    try {
      hook(event)
    } catch (error) {
      if (!this.#warnedAboutHook) {
        this.#warnedAboutHook = true
        process.emitWarning(
          `express-ft-cache: MemcachedStore onEvent hook threw (${describeError(error)}); its exceptions are ignored`,
          { code: 'EFTC_ONEVENT_THREW' },
        )
      }
    }
  }
}
