import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { FrameReader, type Response } from '../../src/store/reader.js'

/** A response frame: header, extras, key, value. */
function frame(
  opaque: number,
  value: Buffer,
  opts: { key?: string; extras?: Buffer } = {},
): Buffer {
  const extras = opts.extras ?? Buffer.alloc(0)
  const key = Buffer.from(opts.key ?? '')
  const f = Buffer.alloc(24 + extras.length + key.length + value.length)
  f[0] = 0x81
  f[1] = 0x00
  f.writeUInt16BE(key.length, 2)
  f[4] = extras.length
  f.writeUInt32BE(extras.length + key.length + value.length, 8)
  f.writeUInt32BE(opaque, 12)
  f.writeBigUInt64BE(BigInt(opaque) + 1000n, 16)
  extras.copy(f, 24)
  key.copy(f, 24 + extras.length)
  value.copy(f, 24 + extras.length + key.length)
  return f
}

function collect(maxBody = 1 << 20) {
  const frames: Response[] = []
  const errors: Error[] = []
  const reader = new FrameReader(
    maxBody,
    (r) => frames.push(r),
    (e) => errors.push(e),
  )
  return { reader, frames, errors }
}

describe('FrameReader', () => {
  it('a frame inside one chunk is a view of it, not a copy; pipelined frames all come out', () => {
    const { reader, frames, errors } = collect()
    const chunk = Buffer.concat([
      frame(1, Buffer.from('one'), { extras: Buffer.alloc(4, 9) }),
      frame(2, Buffer.from('two'), { key: 'k' }),
    ])
    reader.push(chunk)
    assert.deepEqual(errors, [])
    assert.equal(frames.length, 2)
    const [a, b] = frames as [Response, Response]
    assert.equal(a.val.toString(), 'one')
    assert.equal(a.val.buffer, chunk.buffer, 'zero-copy')
    assert.equal(a.extras.length, 4)
    assert.equal(a.header.opaque, 1)
    assert.equal(a.header.cas.readBigUInt64BE(0), 1001n)
    assert.equal(b.val.toString(), 'two')
    assert.equal(b.key.toString(), 'k')
  })

  it('reassembles a frame split anywhere, the header included, byte by byte too', () => {
    const value = Buffer.from(Array.from({ length: 3000 }, (_, i) => i % 256))
    const whole = Buffer.concat([frame(7, value), frame(8, Buffer.alloc(0))])
    for (const step of [1, 5, 23, 24, 25, 1000, 2999]) {
      const { reader, frames, errors } = collect()
      for (let i = 0; i < whole.length; i += step) reader.push(whole.subarray(i, i + step))
      assert.deepEqual(errors, [])
      assert.equal(frames.length, 2, `step ${step}`)
      assert.ok(frames[0]?.val.equals(value), `step ${step}`)
      assert.equal(frames[1]?.val.length, 0)
      assert.equal(frames[1]?.header.opaque, 8)
    }
  })

  it('fails on a stream that is not binary protocol, or a body larger than any item', () => {
    const text = collect()
    text.reader.push(Buffer.from('ERROR Too many open connections\r\n'))
    assert.equal(text.frames.length, 0)
    assert.equal(text.errors.length, 1)
    assert.match(text.errors[0]!.message, /ERROR Too many/)

    const huge = collect(1024)
    huge.reader.push(frame(1, Buffer.alloc(2048)).subarray(0, 100))
    assert.equal(huge.errors.length, 1)

    // After reset (a new connection), frames are read again.
    text.reader.reset()
    text.reader.push(frame(3, Buffer.from('ok')))
    assert.equal(text.frames[0]?.val.toString(), 'ok')
  })
})
