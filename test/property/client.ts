/**
 * A raw HTTP/1.1 client over a TCP socket: it sees exactly what went on the wire, which node's own
 * client hides (body bytes after a HEAD response, a body shorter than its Content-Length). Every
 * request says `Connection: close`, so a response ends when the server closes the socket.
 */
import { connect } from 'node:net'

export interface Answer {
  /** `response`: a status line and head arrived. `closed`: the socket closed before that. */
  readonly kind: 'response' | 'closed' | 'timeout'
  readonly status: number
  /** Lower-case names; repeated fields keep every value. */
  readonly headers: ReadonlyMap<string, readonly string[]>
  readonly body: Buffer
  /** The framing (Content-Length or the last chunk) was satisfied. */
  readonly complete: boolean
  /** Bytes after the message as framed: a body on HEAD, 204 or 304, or more than Content-Length. */
  readonly extra: number
}

export interface Outgoing {
  readonly method: string
  readonly path: string
  readonly headers: Readonly<Record<string, string>>
}

export function send(port: number, req: Outgoing, timeoutMs: number): Promise<Answer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = []
    const socket = connect({ host: '127.0.0.1', port })
    let timedOut = false
    const timer = setTimeout(() => {
      timedOut = true
      socket.destroy()
    }, timeoutMs)
    socket.on('data', (c: Buffer) => chunks.push(c))
    // A reset (the handler destroyed the response) is an ending like any other: 'close' follows.
    socket.on('error', () => undefined)
    socket.on('close', () => {
      clearTimeout(timer)
      const answer = parse(req.method, Buffer.concat(chunks))
      resolve(timedOut ? { ...answer, kind: 'timeout' } : answer)
    })
    const lines = [`${req.method} ${req.path} HTTP/1.1`, `host: 127.0.0.1:${port}`]
    lines.push('connection: close')
    for (const [name, value] of Object.entries(req.headers)) lines.push(`${name}: ${value}`)
    if (req.method === 'POST') lines.push('content-length: 0')
    socket.write(`${lines.join('\r\n')}\r\n\r\n`)
  })
}

const NO_HEAD: Answer = {
  kind: 'closed',
  status: 0,
  headers: new Map(),
  body: Buffer.alloc(0),
  complete: false,
  extra: 0,
}

export function parse(method: string, raw: Buffer): Answer {
  const end = raw.indexOf('\r\n\r\n')
  if (end === -1) return NO_HEAD
  const [statusLine = '', ...fields] = raw.subarray(0, end).toString('latin1').split('\r\n')
  const status = Number(statusLine.split(' ')[1])
  const headers = new Map<string, string[]>()
  for (const field of fields) {
    const colon = field.indexOf(':')
    const name = field.slice(0, colon).trim().toLowerCase()
    headers.set(name, [...(headers.get(name) ?? []), field.slice(colon + 1).trim()])
  }
  const rest = raw.subarray(end + 4)
  const base = { kind: 'response' as const, status, headers }
  // RFC 9112 §6.3: responses to HEAD, and 1xx, 204 and 304 responses, end with the head.
  if (method === 'HEAD' || status === 204 || status === 304 || status < 200) {
    return { ...base, body: Buffer.alloc(0), complete: true, extra: rest.length }
  }
  if (headers.get('transfer-encoding')?.join(',').toLowerCase().includes('chunked')) {
    return { ...base, ...dechunk(rest) }
  }
  const length = headers.get('content-length')?.[0]
  if (length !== undefined) {
    const n = Number(length)
    return {
      ...base,
      body: rest.subarray(0, n),
      complete: rest.length >= n,
      extra: Math.max(0, rest.length - n),
    }
  }
  // Close-delimited: whatever arrived is the body.
  return { ...base, body: rest, complete: true, extra: 0 }
}

function dechunk(data: Buffer): { body: Buffer; complete: boolean; extra: number } {
  const parts: Buffer[] = []
  let at = 0
  for (;;) {
    const eol = data.indexOf('\r\n', at)
    if (eol === -1) break
    const size = Number.parseInt(data.subarray(at, eol).toString('latin1').split(';')[0] ?? '', 16)
    if (Number.isNaN(size)) break
    if (size === 0) {
      // Trailer section (none expected), then the final CRLF.
      const last = data.indexOf('\r\n\r\n', eol)
      const extra = last === -1 ? 0 : data.length - (last + 4)
      return { body: Buffer.concat(parts), complete: true, extra }
    }
    const start = eol + 2
    if (data.length < start + size + 2) {
      parts.push(data.subarray(start))
      break
    }
    parts.push(data.subarray(start, start + size))
    at = start + size + 2
  }
  return { body: Buffer.concat(parts), complete: false, extra: 0 }
}
