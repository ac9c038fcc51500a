import type { OutgoingHttpHeader, OutgoingHttpHeaders, ServerResponse } from 'node:http'

/** What a handler produced. `body` is undefined when it was not kept (too large, or not wanted). */
export interface Captured {
  readonly status: number
  readonly headers: OutgoingHttpHeaders
  readonly body: Buffer | undefined
  /** False when the client went away before the response finished. */
  readonly finished: boolean
}

/**
 * At head time: 'keep' buffers the body while it streams to the client; 'skip' streams without
 * buffering; 'divert' holds everything back (nothing reaches the client) so the cache can answer
 * instead — with a stale copy for a 5xx (RFC 5861 stale-if-error) or a 304 for a conditional request.
 */
export type HeadDecision = 'keep' | 'skip' | 'divert'

export interface CaptureHooks {
  /** Read at every chunk, so a route adopted after capture started can still change it. */
  readonly maxBytes: number
  onHead(status: number, headers: OutgoingHttpHeaders): HeadDecision
  /**
   * After a kept head went out: the headers as finally sent. Middleware mounted before the cache
   * may add fields inside writeHead (on-headers: session cookies, `private`); return false when
   * those make the response unstorable, and nothing more is buffered.
   */
  afterHead(headers: OutgoingHttpHeaders): boolean
  /**
   * Called once. Normally after 'finish' (the response is out, so storing never delays it) or
   * 'close' (aborted). For a diverted response it is called when the handler ends, before anything was
   * sent, and `reply` must be used to answer: it writes beneath any wrapper installed after capture
   * (such as compression mounted later), since the stored bytes are already final.
   */
  onDone(result: Captured, reply: Replier | undefined): void
}

export type Replier = (
  status: number,
  headers: OutgoingHttpHeaders,
  body: Buffer | undefined,
) => void

type Callback = (error?: Error | null) => void
type Chunk = string | Uint8Array

/** Always a copy: a handler may legally refill its buffer once a write has been flushed. */
const toBuffer = (chunk: Chunk, encoding: BufferEncoding | undefined): Buffer =>
  typeof chunk === 'string' ? Buffer.from(chunk, encoding ?? 'utf8') : Buffer.from(chunk)

/**
 * Records status, headers and body however the handler writes them: res.send/json, write + end,
 * streams piped into res, res.sendFile (all end in writeHead/write/end). Patches those three methods
 * on this response only; after the response is done they pass straight through.
 */
export function captureResponse(res: ServerResponse, hooks: CaptureHooks): void {
  const origWriteHead = res.writeHead as (
    this: ServerResponse,
    code: number,
    message?: string,
  ) => ServerResponse
  const origWrite = res.write
  const origEnd = res.end as (this: ServerResponse, chunk?: Chunk) => ServerResponse
  let mode: 'capture' | 'divert' | 'off' = 'capture'
  let keep = true
  let status = 200
  let headers: OutgoingHttpHeaders = {}
  const chunks: Buffer[] = []
  let size = 0
  let done = false

  const collect = (chunk: Chunk | undefined, encoding: BufferEncoding | undefined): void => {
    if (!keep || chunk === undefined || chunk === null || chunk.length === 0) return
    const b = toBuffer(chunk, encoding)
    size += b.length
    if (size > hooks.maxBytes) {
      keep = false
      chunks.length = 0
    } else chunks.push(b)
  }
  const result = (finished: boolean): Captured => ({
    status,
    headers,
    body: keep ? Buffer.concat(chunks, size) : undefined,
    finished,
  })
  const finish = (finished: boolean): void => {
    if (done) return
    done = true
    mode = 'off'
    hooks.onDone(result(finished), undefined)
  }
  const reply: Replier = (s, h, body) => {
    for (const name of res.getHeaderNames()) res.removeHeader(name)
    for (const [name, value] of Object.entries(h))
      if (value !== undefined) res.setHeader(name, value)
    origWriteHead.call(res, s)
    origEnd.call(res, body)
  }

  res.writeHead = function writeHead(this: ServerResponse, code: number, ...rest: unknown[]) {
    if (mode !== 'capture' || res.headersSent)
      return origWriteHead.apply(this, [code, ...rest] as never)
    // Fold headers passed to writeHead into the response first, as Node does, so the snapshot is whole.
    const fields = rest.find((a) => typeof a === 'object' && a !== null) as
      | OutgoingHttpHeaders
      | OutgoingHttpHeader[]
      | undefined
    if (fields !== undefined) applyHeaders(res, fields)
    const message = typeof rest[0] === 'string' ? rest[0] : undefined
    status = code
    headers = res.getHeaders()
    const decision = hooks.onHead(status, headers)
    if (decision === 'divert') {
      mode = 'divert'
      return this
    }
    if (decision === 'skip') {
      keep = false
      chunks.length = 0
    }
    const sent = origWriteHead.call(this, code, message)
    if (keep && !hooks.afterHead(res.getHeaders())) {
      keep = false
      chunks.length = 0
    }
    return sent
  } as ServerResponse['writeHead']

  res.write = function write(this: ServerResponse, chunk: Chunk, ...rest: unknown[]) {
    if (mode === 'off') return origWrite.apply(this, [chunk, ...rest] as never)
    if (!res.headersSent && mode === 'capture') res.writeHead(res.statusCode)
    const encoding = typeof rest[0] === 'string' ? (rest[0] as BufferEncoding) : undefined
    collect(chunk, encoding)
    if (mode === 'divert') {
      const cb = rest.find((a) => typeof a === 'function') as Callback | undefined
      if (cb) process.nextTick(cb, null)
      return true
    }
    return origWrite.apply(this, [chunk, ...rest] as never)
  } as ServerResponse['write']

  res.end = function end(this: ServerResponse, ...args: unknown[]) {
    if (mode === 'off') return origEnd.apply(this, args as never)
    const cb = args.find((a) => typeof a === 'function') as Callback | undefined
    const chunk = typeof args[0] === 'function' ? undefined : (args[0] as Chunk | undefined)
    const encoding = typeof args[1] === 'string' ? (args[1] as BufferEncoding) : undefined
    if (!res.headersSent && mode === 'capture') res.writeHead(res.statusCode)
    collect(chunk ?? undefined, encoding)
    if (mode === 'divert') {
      done = true
      mode = 'off'
      if (cb) res.once('finish', () => cb())
      hooks.onDone(result(true), reply)
      return this
    }
    return origEnd.apply(this, args as never)
  } as ServerResponse['end']

  res.once('finish', () => finish(true))
  res.once('close', () => finish(res.writableFinished))
  // The client may have gone while the cache was still reading the store: 'close' has fired
  // already and will not fire again, so settle now (this releases locks and waiters).
  if (res.destroyed || res.socket?.destroyed === true) queueMicrotask(() => finish(false))
}

function applyHeaders(
  res: ServerResponse,
  fields: OutgoingHttpHeaders | OutgoingHttpHeader[],
): void {
  if (!Array.isArray(fields)) {
    for (const [name, value] of Object.entries(fields))
      if (value !== undefined) res.setHeader(name, value)
    return
  }
  // Raw arrays: [[name, value], …] or [name, value, name, value, …]; repeated names accumulate.
  const pairs: [string, string][] = Array.isArray(fields[0])
    ? (fields as unknown as [string, string][])
    : Array.from({ length: fields.length >> 1 }, (_, i) => [
        String(fields[2 * i]),
        String(fields[2 * i + 1]),
      ])
  const grouped = new Map<string, string[]>()
  for (const [name, value] of pairs) {
    const list = grouped.get(name.toLowerCase()) ?? []
    list.push(value)
    grouped.set(name.toLowerCase(), list)
  }
  for (const [name, values] of grouped)
    res.setHeader(name, values.length === 1 ? (values[0] as string) : values)
}
