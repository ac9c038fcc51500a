/**
 * Splits a memcached binary-protocol byte stream into response frames.
 *
 * It replaces memjs's read path, which copies everything buffered so far into a new zero-filled
 * buffer on every chunk (quadratic in the size of a value that arrives in many chunks). Here chunks
 * are kept as received: a frame inside one chunk is a view of it (no copy), a frame spread over
 * several chunks is copied once into a buffer of exactly its size.
 */

/** Response magic byte (protocol_binary.h). */
const RESPONSE_MAGIC = 0x81
const HEADER_BYTES = 24

export interface ResponseHeader {
  magic: number
  opcode: number
  keyLength: number
  extrasLength: number
  dataType: number
  status: number
  totalBodyLength: number
  opaque: number
  /** The CAS field (8 bytes, big-endian), as memjs's own parser gives it. */
  cas: Buffer
}

/** The shape memjs's `Server#respond` expects (memjs lib/memjs/utils.js `parseMessage`). */
export interface Response {
  header: ResponseHeader
  key: Buffer
  extras: Buffer
  val: Buffer
}

export class FrameReader {
  readonly #chunks: Buffer[] = []
  #buffered = 0

  constructor(
    /** Largest body accepted: a bigger length is a corrupt stream, not a slow one. */
    private readonly maxBodyBytes: number,
    private readonly onFrame: (response: Response) => void,
    /** Called once when the stream is not binary protocol (e.g. the text line memcached sends at its connection limit). */
    private readonly onError: (error: Error) => void,
  ) {}

  push(chunk: Buffer): void {
    this.#chunks.push(chunk)
    this.#buffered += chunk.length
    while (this.#buffered >= HEADER_BYTES) {
      const head = this.#peekHeader()
      const bodyLength = head.readUInt32BE(8)
      if (
        head[0] !== RESPONSE_MAGIC ||
        bodyLength > this.maxBodyBytes ||
        head.readUInt16BE(2) + head[4]! > bodyLength
      ) {
        this.#fail(head)
        return
      }
      if (this.#buffered < HEADER_BYTES + bodyLength) return
      this.onFrame(parse(this.#take(HEADER_BYTES + bodyLength)))
    }
  }

  /** Drops buffered bytes (a new connection starts a new stream). */
  reset(): void {
    this.#chunks.length = 0
    this.#buffered = 0
  }

  #fail(head: Buffer): void {
    this.reset()
    const text = head.toString('latin1').replace(/[^\x20-\x7e]/g, '?')
    this.onError(
      new Error(`invalid binary-protocol response from memcached (starts ${JSON.stringify(text)})`),
    )
  }

  /** The first 24 bytes, contiguous (a copy only when the header straddles chunks). */
  #peekHeader(): Buffer {
    const first = this.#chunks[0]!
    if (first.length >= HEADER_BYTES) return first
    const head = Buffer.allocUnsafe(HEADER_BYTES)
    let filled = 0
    for (const chunk of this.#chunks) {
      filled += chunk.copy(head, filled, 0, Math.min(chunk.length, HEADER_BYTES - filled))
      if (filled === HEADER_BYTES) break
    }
    return head
  }

  /** Removes and returns the next `n` bytes: a view when they lie in one chunk, else one copy. */
  #take(n: number): Buffer {
    this.#buffered -= n
    const first = this.#chunks[0]!
    if (first.length >= n) {
      if (first.length === n) this.#chunks.shift()
      else this.#chunks[0] = first.subarray(n)
      return first.subarray(0, n)
    }
    const frame = Buffer.allocUnsafe(n)
    let filled = 0
    while (filled < n) {
      const chunk = this.#chunks[0]!
      const used = Math.min(chunk.length, n - filled)
      chunk.copy(frame, filled, 0, used)
      filled += used
      if (used === chunk.length) this.#chunks.shift()
      else this.#chunks[0] = chunk.subarray(used)
    }
    return frame
  }
}

function parse(frame: Buffer): Response {
  const keyLength = frame.readUInt16BE(2)
  const extrasLength = frame[4]!
  const header: ResponseHeader = {
    magic: frame[0]!,
    opcode: frame[1]!,
    keyLength,
    extrasLength,
    dataType: frame[5]!,
    status: frame.readUInt16BE(6),
    totalBodyLength: frame.readUInt32BE(8),
    opaque: frame.readUInt32BE(12),
    cas: frame.subarray(16, HEADER_BYTES),
  }
  const keyStart = HEADER_BYTES + extrasLength
  const valueStart = keyStart + keyLength
  return {
    header,
    extras: frame.subarray(HEADER_BYTES, keyStart),
    key: frame.subarray(keyStart, valueStart),
    val: frame.subarray(valueStart),
  }
}
