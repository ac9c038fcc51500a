import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { DeadlineError, DeadlineQueue, withDeadline } from '../../src/store/deadline.js'

const escaped: unknown[] = []
process.on('unhandledRejection', (reason) => escaped.push(reason))
after(() => assert.deepEqual(escaped, [], 'no unhandled rejection'))

/**
 * The deadline timer is unref()ed, so a test awaiting only a deadline needs something else keeping
 * the event loop alive (in real use: the memjs socket, the HTTP server).
 */
async function keepingAlive<T>(fn: () => Promise<T>): Promise<T> {
  const timer = setInterval(() => {}, 1000)
  try {
    return await fn()
  } finally {
    clearInterval(timer)
  }
}

describe('withDeadline', () => {
  it('settles like the promise when it is on time', async () => {
    assert.equal(await withDeadline(Promise.resolve(7), 1000, 'op'), 7)
    await assert.rejects(withDeadline(Promise.reject(new Error('own')), 1000, 'op'), /own/)
  })

  it('rejects with a DeadlineError when the promise is late', async () => {
    const start = performance.now()
    const late = keepingAlive(() => withDeadline(new Promise(() => {}), 50, 'memcached get on a:1'))
    await assert.rejects(
      late,
      (error: unknown) =>
        error instanceof DeadlineError &&
        error.code === 'ETIMEDOUT_DEADLINE' &&
        error.ms === 50 &&
        /memcached get on a:1 did not finish within 50 ms/.test(error.message),
    )
    const elapsed = performance.now() - start
    assert.ok(elapsed >= 45 && elapsed < 1000, `${elapsed} ms`)
  })

  it('a late rejection never becomes an unhandled rejection', async () => {
    const late = sleep(80).then(() => {
      throw new Error('late failure')
    })
    await assert.rejects(
      keepingAlive(() => withDeadline(late, 20, 'op')),
      DeadlineError,
    )
    await sleep(150) // let the late rejection happen; `after` checks nothing escaped
  })

  it('never keeps the process alive (the timer is unref()ed)', async () => {
    const { spawnSync } = await import('node:child_process')
    const moduleUrl = new URL('../../src/store/deadline.ts', import.meta.url).href
    const script = `
      const { withDeadline } = await import(${JSON.stringify(moduleUrl)})
      withDeadline(new Promise(() => {}), 60_000, 'op').catch(() => {})
    `
    const start = performance.now()
    const result = spawnSync(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', script],
      { cwd: new URL('../..', import.meta.url), timeout: 20_000, encoding: 'utf8' },
    )
    assert.equal(result.status, 0, result.stderr)
    assert.ok(performance.now() - start < 20_000)
  })

  it('rejects a negative or non-finite deadline', () => {
    assert.throws(() => withDeadline(Promise.resolve(1), -1, 'op'), RangeError)
    assert.throws(() => withDeadline(Promise.resolve(1), Number.NaN, 'op'), RangeError)
  })
})

describe('withDeadline on a shared DeadlineQueue', () => {
  it('settles on time, and fails the late calls at their own deadlines, in any order added', async () => {
    const queue = new DeadlineQueue()
    const started = performance.now()
    const failedAt = (ms: number) =>
      withDeadline(new Promise(() => {}), ms, `op ${ms}`, queue).catch((e: unknown) => {
        assert.ok(e instanceof DeadlineError && e.ms === ms)
        return performance.now() - started
      })
    const outcomes = await keepingAlive(() =>
      Promise.all([
        failedAt(150),
        failedAt(40),
        withDeadline(
          sleep(10).then(() => 'on time'),
          100,
          'op',
          queue,
        ),
        failedAt(90),
      ]),
    )
    const [slow, fast, onTime, middle] = outcomes as [number, number, string, number]
    assert.equal(onTime, 'on time')
    assert.ok(fast >= 35 && fast < middle && middle < slow, `${fast} ${middle} ${slow}`)
    assert.ok(slow >= 145 && slow < 2000, `${slow}`)
  })

  it('a call that settled never fires: its deadline is skipped', async () => {
    const queue = new DeadlineQueue()
    let fired = 0
    const first = queue.add(Date.now() + 20, () => fired++)
    queue.add(Date.now() + 40, () => fired++)
    first.fire = undefined
    await keepingAlive(() => sleep(80))
    assert.equal(fired, 1)
  })

  it('never keeps the process alive', async () => {
    const { spawnSync } = await import('node:child_process')
    const moduleUrl = new URL('../../src/store/deadline.ts', import.meta.url).href
    const script = `
      const { withDeadline, DeadlineQueue } = await import(${JSON.stringify(moduleUrl)})
      withDeadline(new Promise(() => {}), 60_000, 'op', new DeadlineQueue()).catch(() => {})
    `
    const result = spawnSync(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', script],
      { cwd: new URL('../..', import.meta.url), timeout: 20_000, encoding: 'utf8' },
    )
    assert.equal(result.status, 0, result.stderr)
  })
})
