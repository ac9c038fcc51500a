import type { OutgoingHttpHeader, OutgoingHttpHeaders, ServerResponse } from 'node:http'

/** What a handler produced. `body` is undefined when it was not kept (too large, or not wanted). */
export interface Captured {
  readonly status: number
  readonly headers: OutgoingHttpHeaders
  readonly body: Buffer | undefined
  /** False when the client went away before the response finished. */
  readonly finished: boolean
  /** Body bytes the handler wrote (counted even when not kept). */
  readonly size: number
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
   * Called exactly once. Normally after 'finish' (the response is out, so storing never delays it)
   * or 'close' (aborted). For a diverted response it is called when the handler ends, before
   * anything was sent, and `reply` must be used to answer: it writes beneath any wrapper installed
   * after capture (such as compression mounted later), since the stored bytes are already final.
   */
  onDone(result: Captured, reply: Replier | undefined): void
}

/** Response fields as [name, value] pairs; several lines of one field are one pair with an array. */
export type HeaderPairs = readonly (readonly [name: string, value: string | readonly string[]])[]

/** Answers a diverted response: status, its header fields, body. Never throws. */
export type Replier = (status: number, headers: HeaderPairs, body: Buffer | undefined) => void

type Callback = (error?: Error | null) => void
type Chunk = string | Uint8Array

/** Always a copy: a handler may legally refill its buffer once a write has been flushed. */
const toBuffer = (chunk: Chunk, encoding: BufferEncoding | undefined): Buffer =>
  typeof chunk === 'string' ? Buffer.from(chunk, encoding ?? 'utf8') : Buffer.from(chunk)

/**
 * Records status, headers and body however the handler writes them: res.send/json, write + end,
 * streams piped into res, res.sendFile (all end in writeHead/write/end). Patches writeHead, write,
 * end and flushHeaders on this response only; after the response is done they pass straight through.
 *
 * Invariants: nothing here throws out of a `res` method because of the cache; once the head has
 * gone out the handler's response passes untouched; `onDone` runs once whatever happens.
 * `keepOnReply` names fields set on `res` before the handler ran (request ids, trace context) that
 * a diverted answer keeps.
 */
export function captureResponse(
  res: ServerResponse,
  hooks: CaptureHooks,
  keepOnReply: ReadonlySet<string>,
): void {
  const origWriteHead = res.writeHead as (
    this: ServerResponse,
    code: number,
    message?: string | OutgoingHttpHeader[],
    headers?: OutgoingHttpHeader[],
  ) => ServerResponse
  const origWrite = res.write
  const origEnd = res.end as (this: ServerResponse, chunk?: Chunk) => ServerResponse
  const origFlushHeaders = res.flushHeaders
  let mode: 'capture' | 'divert' | 'off' = 'capture'
  let keep = true
  let status = 200
  let headers: OutgoingHttpHeaders = {}
  const chunks: Buffer[] = []
  let size = 0
  let kept = 0
  let done = false

  const drop = (): void => {
    keep = false
    chunks.length = 0
    kept = 0
  }
  const collect = (chunk: Chunk | undefined, encoding: BufferEncoding | undefined): void => {
    if (chunk === undefined || chunk === null || chunk.length === 0) return
    const length = typeof chunk === 'string' ? Buffer.byteLength(chunk, encoding) : chunk.length
    size += length
    if (!keep) return
    if (kept + length > hooks.maxBytes) {
      drop()
      return
    }
    chunks.push(toBuffer(chunk, encoding))
    kept += length
  }
  const result = (finished: boolean): Captured => ({
    status,
    headers,
    body: keep ? Buffer.concat(chunks, kept) : undefined,
    finished,
    size,
  })
  const settle = (finished: boolean, reply: Replier | undefined): void => {
    if (done) return
    done = true
    mode = 'off'
    hooks.onDone(result(finished), reply)
  }
  const reply: Replier = (s, list, body) => {
    try {
      if (res.headersSent) {
        // Cannot happen through this wrapper (a diverted head is held), but a handler may have
        // written to the socket some other way: finish what is there rather than throw.
        origEnd.call(res)
        return
      }
      for (const name of res.getHeaderNames()) if (!keepOnReply.has(name)) res.removeHeader(name)
      for (const [name, value] of list) res.setHeader(name, value)
      origWriteHead.call(res, s)
      origEnd.call(res, body)
    } catch {
      res.destroy()
    }
  }
  /** The head is going out: decide, then send it (unless diverted). */
  const head = (self: ServerResponse, code: number, message: string | undefined): void => {
    status = code
    headers = res.getHeaders()
    const decision = hooks.onHead(status, headers)
    if (decision === 'divert') {
      mode = 'divert'
      return
    }
    if (decision === 'skip') drop()
    origWriteHead.call(self, code, message)
    if (keep && !hooks.afterHead(res.getHeaders())) drop()
  }

  res.writeHead = function writeHead(this: ServerResponse, code: number, ...rest: unknown[]) {
    if (mode === 'off') return origWriteHead.apply(this, [code, ...rest] as never)
    const fields = rest.find((a) => typeof a === 'object' && a !== null) as
      | OutgoingHttpHeaders
      | OutgoingHttpHeader[]
      | undefined
    // A second writeHead after the head went out: Node would throw ERR_HTTP_HEADERS_SENT. The head
    // is final; ignore it rather than crash on a handler the cache only watches.
    if (res.headersSent) return this
    // Fold headers passed to writeHead into the response first, as Node does, so the snapshot is
    // whole (and a diverted head, which is never sent, keeps them for the record).
    if (fields !== undefined) applyHeaders(res, fields)
    if (mode === 'divert') {
      status = code
      headers = res.getHeaders()
      return this
    }
    head(this, code, typeof rest[0] === 'string' ? rest[0] : undefined)
    return this
  } as ServerResponse['writeHead']

  res.flushHeaders = function flushHeaders(this: ServerResponse) {
    if (mode === 'off') return origFlushHeaders.call(this)
    // A diverted head must not go out: the cache answers instead (its head is held until then).
    if (mode === 'divert') return
    if (!res.headersSent) res.writeHead(res.statusCode)
    if (mode === 'capture') origFlushHeaders.call(this)
  }

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
      if (cb) res.once('finish', () => cb())
      settle(true, reply)
      return this
    }
    return origEnd.apply(this, args as never)
  } as ServerResponse['end']

  res.once('finish', () => settle(true, undefined))
  res.once('close', () => {
    // A diverted response whose client left before the handler ended: nothing to answer.
    settle(res.writableFinished, undefined)
  })
  // The client may have gone while the cache was still reading the store: 'close' has fired
  // already and will not fire again, so settle now (this releases locks and waiters).
  if (res.destroyed || res.socket?.destroyed === true)
    queueMicrotask(() => settle(false, undefined))
}

/**
 * Applies headers given to writeHead. Raw arrays come as [[name, value], …] or as a flat
 * [name, value, name, value, …], where a value may itself be an array (several field lines):
 * repeated names accumulate and multi-values stay separate lines.
 */
function applyHeaders(
  res: ServerResponse,
  fields: OutgoingHttpHeaders | OutgoingHttpHeader[],
): void {
  if (!Array.isArray(fields)) {
    for (const [name, value] of Object.entries(fields))
      if (value !== undefined) res.setHeader(name, value)
    return
  }
  const pairs: [unknown, unknown][] = Array.isArray(fields[0])
    ? (fields as unknown as [unknown, unknown][])
    : Array.from({ length: fields.length >> 1 }, (_, i) => [fields[2 * i], fields[2 * i + 1]])
  const grouped = new Map<string, string[]>()
  for (const [name, value] of pairs) {
    const key = String(name).toLowerCase()
    const list = grouped.get(key) ?? []
    if (Array.isArray(value)) for (const v of value) list.push(String(v))
    else list.push(String(value))
    grouped.set(key, list)
  }
  for (const [name, values] of grouped)
    res.setHeader(name, values.length === 1 ? (values[0] as string) : values)
}
