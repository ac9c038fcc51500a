/**
 * The load generator, run as a child process (forked by ./load.ts) so that it never shares an
 * event loop with the server under test.
 *
 * A minimal HTTP/1.1 client on raw keep-alive sockets: one request in flight per connection, a
 * fixed number of connections (closed loop). It reads only the status line, `Content-Length` and
 * `X-Cache`, and counts body bytes without copying them, so it stays cheap next to the server (an
 * Agent-based loop spends more CPU per request than the cache HIT path it measures). Latencies
 * are kept as floats in milliseconds (autocannon 9 records whole milliseconds in its histogram,
 * too coarse for sub-millisecond cache hits).
 *
 * Jobs arrive over IPC; each reply carries the raw latencies of the measured window.
 */
import { connect, type Socket } from 'node:net'

export interface LoadJob {
  readonly kind: 'load'
  readonly port: number
  readonly method: 'GET' | 'POST'
  /**
   * `{n}` is replaced by a run-unique counter (for MISS-heavy workloads), `{k<N>}` by the next of
   * 0..N-1 in a cycle (many URLs, each requested again and again).
   */
  readonly path: string
  readonly headers?: Readonly<Record<string, string>>
  readonly concurrency: number
  readonly warmupMs: number
  readonly durationMs: number
}

export interface BurstJob {
  readonly kind: 'burst'
  /** Connections are spread round-robin over these ports. */
  readonly ports: readonly number[]
  readonly n: number
  readonly path: string
  readonly headers?: Readonly<Record<string, string>>
}

export type Job = LoadJob | BurstJob

export interface JobResult {
  /** Responses completed inside the measured window. */
  readonly completed: number
  readonly errors: number
  readonly firstError: string | undefined
  /** Measured window in ms. */
  readonly windowMs: number
  /** Latencies (ms) of the responses completed in the window, in completion order. */
  readonly latencies: number[]
  readonly statuses: Record<string, number>
  /** X-Cache header values ('-' when absent). */
  readonly cache: Record<string, number>
  readonly bodyBytes: number
}

const REQUEST_TIMEOUT_MS = 15_000
let unique = 0
let cycle = 0
const CYCLE = /\{k(\d+)\}/
const runTag = `${process.pid.toString(36)}${Date.now().toString(36)}`

function requestBytes(
  method: string,
  port: number,
  path: string,
  headers: Readonly<Record<string, string>> | undefined,
): Buffer {
  let target = path.includes('{n}') ? path.replaceAll('{n}', `${runTag}-${unique++}`) : path
  target = target.replace(CYCLE, (_, n: string) => String(cycle++ % Number(n)))
  let head = `${method} ${target} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n`
  if (method === 'POST') head += 'Content-Length: 0\r\n'
  for (const [name, value] of Object.entries(headers ?? {})) head += `${name}: ${value}\r\n`
  return Buffer.from(`${head}\r\n`, 'latin1')
}

const CONTENT_LENGTH = /\r\ncontent-length:[ \t]*(\d+)/i
const X_CACHE = /\r\nx-cache:[ \t]*([^\r]*)/i
const CRLFCRLF = Buffer.from('\r\n\r\n')

interface Response {
  status: number
  cache: string
  bodyBytes: number
}

/**
 * One keep-alive connection that sends a request and parses its response. `onResponse` gets the
 * parsed response; `onError` is called once for a failed connection.
 */
class Connection {
  readonly socket: Socket
  private head: Buffer | undefined
  private remaining = -1
  private status = 0
  private cache = '-'
  private bodyBytes = 0
  private timer: NodeJS.Timeout | undefined
  private failed = false
  sentAt = 0

  constructor(
    port: number,
    onConnect: (c: Connection) => void,
    private readonly onResponse: (c: Connection, r: Response) => void,
    private readonly onError: (c: Connection, e: Error) => void,
  ) {
    this.socket = connect({ host: '127.0.0.1', port })
    this.socket.setNoDelay(true)
    this.socket.once('connect', () => onConnect(this))
    this.socket.on('data', (chunk: Buffer) => this.data(chunk))
    this.socket.on('error', (e) => this.fail(e))
    this.socket.once('close', () => this.fail(new Error('connection closed by the server')))
  }

  send(request: Buffer): void {
    if (this.failed) return
    this.head = undefined
    this.remaining = -1
    this.sentAt = performance.now()
    this.timer = setTimeout(
      () => this.fail(new Error(`no response within ${REQUEST_TIMEOUT_MS} ms`)),
      REQUEST_TIMEOUT_MS,
    )
    this.socket.write(request)
  }

  close(): void {
    this.failed = true
    clearTimeout(this.timer)
    this.socket.destroy()
  }

  private fail(e: Error): void {
    if (this.failed) return
    this.failed = true
    clearTimeout(this.timer)
    this.socket.destroy()
    this.onError(this, e)
  }

  private data(chunk: Buffer): void {
    if (this.remaining < 0) {
      this.head = this.head === undefined ? chunk : Buffer.concat([this.head, chunk])
      const end = this.head.indexOf(CRLFCRLF)
      if (end === -1) return
      const text = this.head.toString('latin1', 0, end)
      this.status = Number(text.slice(9, 12))
      const length = CONTENT_LENGTH.exec(text)
      this.cache = X_CACHE.exec(text)?.[1] ?? '-'
      if (length === null) {
        this.fail(new Error(`response without Content-Length: ${text.split('\r\n')[0]}`))
        return
      }
      this.bodyBytes = Number(length[1])
      this.remaining = this.bodyBytes - (this.head.length - end - 4)
      this.head = undefined
    } else {
      this.remaining -= chunk.length
    }
    if (this.remaining === 0) {
      clearTimeout(this.timer)
      this.remaining = -1
      this.onResponse(this, { status: this.status, cache: this.cache, bodyBytes: this.bodyBytes })
    } else if (this.remaining < 0) {
      this.fail(new Error('more bytes than Content-Length (pipelining is not used)'))
    }
  }
}

function emptyResult(): {
  completed: number
  errors: number
  firstError: string | undefined
  latencies: number[]
  statuses: Record<string, number>
  cache: Record<string, number>
  bodyBytes: number
} {
  return {
    completed: 0,
    errors: 0,
    firstError: undefined,
    latencies: [],
    statuses: {},
    cache: {},
    bodyBytes: 0,
  }
}

/** Closed loop: `concurrency` connections, each sending its next request as soon as one completes. */
function runLoad(job: LoadJob): Promise<JobResult> {
  return new Promise((resolve) => {
    const r = emptyResult()
    const start = performance.now()
    const measureFrom = start + job.warmupMs
    const stopAt = measureFrom + job.durationMs
    let open = 0
    const next = (c: Connection): void => {
      if (performance.now() >= stopAt) {
        c.close()
        closed()
        return
      }
      c.send(requestBytes(job.method, job.port, job.path, job.headers))
    }
    const closed = (): void => {
      if (--open === 0) resolve({ ...r, windowMs: job.durationMs })
    }
    const onResponse = (c: Connection, res: Response): void => {
      const now = performance.now()
      if (now >= measureFrom && now < stopAt) {
        r.completed++
        r.latencies.push(now - c.sentAt)
        r.statuses[res.status] = (r.statuses[res.status] ?? 0) + 1
        r.cache[res.cache] = (r.cache[res.cache] ?? 0) + 1
        r.bodyBytes += res.bodyBytes
      }
      next(c)
    }
    const onError = (_c: Connection, e: Error): void => {
      r.errors++
      r.firstError ??= e.message
      // Replace the connection while the run lasts, so concurrency stays fixed.
      if (performance.now() < stopAt) {
        open++
        new Connection(job.port, next, onResponse, onError)
      }
      closed()
    }
    for (let i = 0; i < job.concurrency; i++) {
      open++
      new Connection(job.port, next, onResponse, onError)
    }
  })
}

/** `n` connections opened first, then `n` requests written in the same tick. */
function runBurst(job: BurstJob): Promise<JobResult> {
  return new Promise((resolve) => {
    const r = emptyResult()
    const connections: Connection[] = []
    let connected = 0
    let settled = 0
    let started = 0
    const requests = Array.from({ length: job.n }, (_, i) =>
      requestBytes('GET', job.ports[i % job.ports.length]!, job.path, job.headers),
    )
    const settle = (): void => {
      if (++settled < job.n) return
      for (const c of connections) c.close()
      resolve({ ...r, windowMs: performance.now() - started })
    }
    const onConnect = (): void => {
      if (++connected < job.n) return
      started = performance.now()
      for (const [i, c] of connections.entries()) c.send(requests[i]!)
    }
    const onResponse = (c: Connection, res: Response): void => {
      r.completed++
      r.latencies.push(performance.now() - c.sentAt)
      r.statuses[res.status] = (r.statuses[res.status] ?? 0) + 1
      r.cache[res.cache] = (r.cache[res.cache] ?? 0) + 1
      r.bodyBytes += res.bodyBytes
      settle()
    }
    const onError = (_c: Connection, e: Error): void => {
      r.errors++
      r.firstError ??= e.message
      // A connection that failed before the burst started still counts as ready (it sends nothing).
      if (started === 0) onConnect()
      settle()
    }
    for (let i = 0; i < job.n; i++) {
      connections.push(
        new Connection(job.ports[i % job.ports.length]!, onConnect, onResponse, onError),
      )
    }
  })
}

process.on('message', (message: { id: number; job: Job }) => {
  const run = message.job.kind === 'load' ? runLoad(message.job) : runBurst(message.job)
  run.then(
    (result) => process.send?.({ id: message.id, result }),
    (error: unknown) => process.send?.({ id: message.id, error: String(error) }),
  )
})
process.on('disconnect', () => process.exit(0))
process.send?.({ ready: true })
